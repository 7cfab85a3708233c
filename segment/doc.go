// Package segment creates, attaches, lists and removes shared memory
// segments, and gives checked access to the bytes and atomic words inside
// them.
//
// One API covers four backends: POSIX shared memory (/dev/shm/shmkit.NAME),
// SysV shared memory (key derived from the name, see SysVKey), a mapped
// file at any path (github.com/edsrzf/mmap-go) and an anonymous memfd shared
// by passing its descriptor (Segment.File, OpenMemfd). Off Linux only the
// File backend exists; the others fail with ErrUnsupported.
//
// Every segment starts with a versioned header (docs/segment-layout.md):
// magic, layout version, sizes, backend, creator pid and start time,
// creation time, name, a CRC-32C over all of that, and a table of contents
// of named regions (name, kind, offset, length, alignment) that the creator
// extends with AddRegion while others are attached. Open validates all of
// it and returns ErrBadMagic, ErrNotReady, ErrVersion or ErrCorrupt rather
// than trusting a peer; shared memory is untrusted input.
//
// Accessors (Bytes, RegionBytes, Uint32, Uint64, LoadUint32, LoadUint64,
// ReadAt) check bounds and alignment and return errors, never panic. The
// slices and *atomic.Uint32/*atomic.Uint64 they return point into the
// shared mapping and stay valid until Close. Touch shared words only through
// the atomic types; the race detector cannot see mapped memory.
// MapReadOnly maps part of the data area a second time, PROT_READ, for
// memory handed to code that must not write it (a write faults); Close
// unmaps it with the segment.
//
// Segment names and SysV keys outlive processes: remove what you create.
//
// Who may have written it (docs/security.md): a read-write Open refuses,
// with ErrUntrusted naming owner and mode, a segment owned (SysV: or
// created) by a uid other than the caller's and Options.Owners, or writable
// by others or by a group not in Options.Groups. Read-only opens (Stat,
// List, tools) read anyone's segment the kernel allows. Create sets
// Options.Mode and Options.Group exactly, whatever the umask.
//
// What validation cannot prevent: a peer with write access to a POSIX or
// File segment can truncate the file under every mapping, and the next
// touch of a lost page raises SIGBUS. Every read this package makes of a
// mapping (attach, the table of contents, ReadAt) runs under Guard, which
// turns the fault into ErrFault; memory handed out (Bytes, RegionBytes,
// the atomic words) is the caller's to guard, where OthersMayTruncate says
// another uid could do it. Memfd segments are sealed against shrinking
// (F_SEAL_SHRINK), and OpenMemfd refuses unsealed ones; SysV segments cannot
// shrink. Creation reserves the memory, so a full /dev/shm is an ENOSPC
// error from Create, not a SIGBUS later. RemoveName unlinks a name only
// while it still names the object the handle maps.
//
//	s, err := segment.Create(segment.POSIX, "orders", 1<<20, nil)
//	...
//	defer segment.Remove(segment.POSIX, "orders", nil)
//	defer s.Close()
//	r, err := s.AddRegion("requests", segment.FourCC("SPSC"), 64<<10, 4096)
//	ring, err := s.Bytes(r.Offset, r.Length)
package segment
