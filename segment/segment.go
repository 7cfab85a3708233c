package segment

import (
	"errors"
	"fmt"
	"github.com/shmkit/shmkit/internal/word"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Segment is one process's attachment to a shared memory segment. Its
// methods are safe for concurrent use. Memory handed out by its accessors
// (slices, atomic pointers) stays valid until Close; using it after Close
// faults.
type Segment struct {
	mu       sync.Mutex
	mem      []byte         // the whole mapping; nil once closed
	count    *atomic.Uint32 // TOC count word inside mem; nil once closed
	hdr      header
	m        mapping
	readOnly bool
	creator  bool
	toc      []Region       // validated TOC entries (private copies)
	tocIndex map[string]int // region name -> index in toc

	path     string    // POSIX and File: the file's path
	dev, ino uint64    // POSIX and File: the identity of the file mapped
	others   bool      // POSIX and File: another uid may write (shrink) the file
	id       int       // SysV: shmid
	file     *os.File  // Memfd: the memfd
	views    []mapping // MapReadOnly's mappings, unmapped by Close
}

// mapping is what a backend keeps for a live attachment.
type mapping interface {
	unmap() error // unmap and release descriptors; called once
	flush() error // make writes durable (File); a no-op elsewhere
}

// Create makes a new segment of size bytes (header included) on backend b
// and attaches it read-write. It fails with ErrExist if the name is taken.
// The memory is reserved up front (fallocate on POSIX, Memfd and File), so
// a full /dev/shm fails here with an error wrapping ENOSPC rather than
// with SIGBUS later. For File, name is a path whose base name must be a
// valid name; for Memfd, name only labels the memfd.
//
// The returned handle is the segment's creator: only it may AddRegion.
func Create(b Backend, name string, size int64, opts *Options) (*Segment, error) {
	s, err := create(b, name, size, opts.orDefault())
	if err != nil {
		return nil, fmt.Errorf("create %v segment %q: %w", b, name, err)
	}
	return s, nil
}

func create(b Backend, name string, size int64, opts *Options) (*Segment, error) {
	base, err := nameFor(b, name)
	if err != nil {
		return nil, err
	}
	capacity, err := opts.tocCap()
	if err != nil {
		return nil, err
	}
	if _, err := opts.mode(); err != nil {
		return nil, err
	}
	hs := headerSize(capacity)
	if size <= hs || size > MaxSize || uint64(size) > math.MaxInt {
		return nil, fmt.Errorf("%w: %d bytes; a segment with %d TOC entries needs more than %d bytes and at most %d",
			ErrInvalidSize, size, capacity, hs, int64(MaxSize))
	}
	start, err := ProcessStart(os.Getpid())
	if err != nil {
		start = 0 // unknown on this OS; liveness then rests on the pid alone
	}
	h := &header{
		version: Version, headerSize: hs, backend: b, tocCap: capacity,
		creatorPID: os.Getpid(), creatorStart: start, created: time.Now(), name: base,
	}
	var s *Segment
	switch b {
	case File:
		s, err = createFile(name, size, h, opts)
	case POSIX:
		s, err = createPOSIX(name, size, h, opts)
	case SysV:
		s, err = createSysV(name, size, h, opts)
	case Memfd:
		s, err = createMemfd(name, size, h, opts)
	default:
		return nil, fmt.Errorf("%w: backend %d", ErrInvalidOption, uint32(b))
	}
	return s, err
}

// Open attaches the existing segment name on backend b and validates its
// header and table of contents. It fails with ErrNotExist, ErrPermission,
// ErrBadMagic, ErrNotReady, ErrVersion or ErrCorrupt. Memfd segments are
// attached with OpenMemfd instead.
func Open(b Backend, name string, opts *Options) (*Segment, error) {
	opts = opts.orDefault()
	var s *Segment
	_, err := nameFor(b, name)
	switch {
	case err != nil:
	case b == File:
		s, err = openFile(name, opts)
	case b == POSIX:
		s, err = openPOSIX(name, opts)
	case b == SysV:
		s, err = openSysV(name, opts)
	case b == Memfd:
		err = fmt.Errorf("%w: memfd segments have no name; attach with OpenMemfd", ErrUnsupported)
	default:
		err = fmt.Errorf("%w: backend %d", ErrInvalidOption, uint32(b))
	}
	if err != nil {
		return nil, fmt.Errorf("open %v segment %q: %w", b, name, err)
	}
	return s, nil
}

// Remove deletes the segment name on backend b: unlink for POSIX and File,
// IPC_RMID for SysV. Processes still attached keep their mappings until they
// Close. A SysV key is only removed when it holds a shmkit segment of that
// name (or an unpublished one). Memfd segments have no name: ErrUnsupported.
func Remove(b Backend, name string, opts *Options) error {
	opts = opts.orDefault()
	_, err := nameFor(b, name)
	switch {
	case err != nil:
	case b == File:
		err = removeFile(name)
	case b == POSIX:
		err = removePOSIX(name)
	case b == SysV:
		err = removeSysV(name, opts)
	case b == Memfd:
		err = fmt.Errorf("%w: memfd segments have no name; close every descriptor instead", ErrUnsupported)
	default:
		err = fmt.Errorf("%w: backend %d", ErrInvalidOption, uint32(b))
	}
	if err != nil {
		return fmt.Errorf("remove %v segment %q: %w", b, name, err)
	}
	return nil
}

// Stat attaches the segment read-only, describes it and detaches.
func Stat(b Backend, name string, opts *Options) (Info, error) {
	o := *opts.orDefault()
	o.ReadOnly, o.Prefault, o.Lock = true, false, false
	s, err := Open(b, name, &o)
	if err != nil {
		return Info{Name: name, Backend: b, Err: err}, err
	}
	defer s.Close()
	info := s.Info()
	return info, info.Err
}

// nameFor checks name for backend b and returns the name to record in the
// header: the base name of the path for File, name itself otherwise.
func nameFor(b Backend, name string) (string, error) {
	if b != File {
		return name, checkName(name)
	}
	base := baseName(name)
	if !ValidName(base) {
		return "", fmt.Errorf("%w: path %q: its base name must be 1-%d characters of [A-Za-z0-9._-], no \"..\"",
			ErrInvalidName, name, MaxNameLen)
	}
	return base, nil
}

func baseName(path string) string {
	for i := len(path) - 1; i >= 0; i-- {
		if os.IsPathSeparator(path[i]) {
			return path[i+1:]
		}
	}
	return path
}

// newSegment initialises a fresh, zeroed mapping as a segment: it writes the
// header and publishes the magic last, so a concurrent Open sees either
// ErrNotReady or a complete header.
func newSegment(mem []byte, h *header, m mapping) *Segment {
	h.totalSize = int64(len(mem))
	hb := encodeHeader(h)
	copy(mem[len(Magic):hdrFixedSize], hb[len(Magic):])
	word64(mem, hdrMagic).Store(le.Uint64(hb[hdrMagic:]))
	return &Segment{mem: mem, count: word32(mem, hdrTOCCount), hdr: *h, m: m, creator: true}
}

// attach validates a mapping of an existing segment of objSize bytes.
// On error it unmaps m.
func attach(mem []byte, objSize int64, b Backend, wantName string, readOnly bool, m mapping) (*Segment, error) {
	fail := func(err error) (*Segment, error) {
		return nil, errors.Join(err, m.unmap())
	}
	if int64(len(mem)) != objSize {
		return fail(fmt.Errorf("%w: mapped %d bytes of a %d-byte object", ErrCorrupt, len(mem), objSize))
	}
	snap := make([]byte, min(len(mem), hdrFixedSize))
	if err := Guard(func() error {
		if len(mem) >= 8 {
			le.PutUint64(snap, word64(mem, hdrMagic).Load()) // acquire: pairs with newSegment's store
			copy(snap[8:], mem[8:])
		} else {
			copy(snap, mem)
		}
		return nil
	}); err != nil {
		return fail(err)
	}
	h, err := parseHeader(snap, objSize)
	if err != nil {
		return fail(err)
	}
	if h.backend != b {
		return fail(fmt.Errorf("%w: header says backend %v, attached as %v", ErrCorrupt, h.backend, b))
	}
	if wantName != "" && h.name != wantName {
		return fail(fmt.Errorf("%w: header names the segment %q, not %q", ErrCorrupt, h.name, wantName))
	}
	s := &Segment{mem: mem, count: word32(mem, hdrTOCCount), hdr: h, m: m, readOnly: readOnly}
	if _, err := s.regions(); err != nil {
		return fail(err)
	}
	return s, nil
}

func word32(mem []byte, off int) *atomic.Uint32 { return word.U32(mem, off) }
func word64(mem []byte, off int) *atomic.Uint64 { return word.U64(mem, off) }

// Close unmaps the segment and releases its descriptors. It does not remove
// the segment (see Remove). Every slice and atomic pointer obtained from s
// becomes invalid, and so does every MapReadOnly view. Close is
// idempotent; later calls return nil and other methods return ErrClosed.
func (s *Segment) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mem == nil {
		return nil
	}
	s.mem, s.count, s.toc, s.tocIndex = nil, nil, nil, nil
	err := errors.Join(s.unmapViews(), s.m.unmap())
	s.m, s.file = nil, nil
	return err
}

// Flush writes a File segment's dirty pages to its file (msync MS_SYNC) for
// durability. For other backends it does nothing and returns nil.
func (s *Segment) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mem == nil {
		return ErrClosed
	}
	return s.m.flush()
}

// Name returns the name recorded in the header (the base name for File).
func (s *Segment) Name() string { return s.hdr.name }

// Backend returns the backend holding the segment.
func (s *Segment) Backend() Backend { return s.hdr.backend }

// Size returns the segment's total size in bytes, header included.
func (s *Segment) Size() int64 { return s.hdr.totalSize }

// DataOffset returns the first offset after the header and TOC: the data
// area is [DataOffset(), Size()).
func (s *Segment) DataOffset() int64 { return s.hdr.headerSize }

// Creator reports whether s is the handle Create returned, the only one
// that may AddRegion.
func (s *Segment) Creator() bool { return s.creator }

// ReadOnly reports whether s was attached read-only.
func (s *Segment) ReadOnly() bool { return s.readOnly }

// Path returns the file path of a POSIX or File segment, "" otherwise.
func (s *Segment) Path() string { return s.path }

// File returns the memfd of a Memfd segment, for cmd.ExtraFiles or
// unix.UnixRights; nil for other backends. It stays owned by s and is
// closed by Close; the receiving process attaches with OpenMemfd.
func (s *Segment) File() *os.File {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.file
}

// RemoveName removes the name s was created or opened under, but only
// while it still names the object s maps: a POSIX or File name is
// unlinked if its device and inode are the ones s mapped, a SysV segment
// is removed by its shmid (a segment created later under the same key has
// another). When the name is gone or names another object (a successor
// created after a Remove), it is left alone and the error wraps
// ErrNotExist. Memfd segments have no name (ErrUnsupported).
//
// Between the check and the unlink another process could remove the name
// and create a new object under it; callers that need more hold a marker
// (the channel header's removing word) that makes such a creator wait.
func (s *Segment) RemoveName() error {
	s.mu.Lock()
	b, path, dev, ino, id := s.hdr.backend, s.path, s.dev, s.ino, s.id
	s.mu.Unlock()
	switch b {
	case POSIX, File:
		d, i, err := pathID(path)
		if err != nil {
			return fmt.Errorf("remove %v segment %q: %w", b, path, osErr(err))
		}
		if d != dev || i != ino {
			return fmt.Errorf("remove %v segment %q: %w: the name now holds another object (inode %d, not %d); left alone",
				b, path, ErrNotExist, i, ino)
		}
		if err := osErr(os.Remove(path)); err != nil {
			return fmt.Errorf("remove %v segment %q: %w", b, path, err)
		}
		return nil
	case SysV:
		if err := rmidErr(id); err != nil {
			if errors.Is(err, errGone) {
				err = fmt.Errorf("%w: %w", ErrNotExist, err)
			}
			return fmt.Errorf("remove sysv segment %q: %w", s.hdr.name, err)
		}
		return nil
	}
	return fmt.Errorf("remove %v segment: %w: it has no name", b, ErrUnsupported)
}

// OthersMayTruncate reports whether a process of another uid may be able
// to shrink the object under s's mapping: a POSIX or File segment owned by
// another uid or writable by a group or by others. Accesses to such a
// mapping should run under Guard. SysV segments cannot shrink, and memfd
// segments are sealed against it. (A process of the caller's own uid can
// truncate the caller's files, but it can also kill or trace the caller:
// docs/security.md does not count it as an attacker.)
func (s *Segment) OthersMayTruncate() bool { return s.others }
