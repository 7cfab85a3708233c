package segment

import (
	"errors"
	"os"

	"github.com/shmkit/shmkit/internal/errs"
)

// Sentinel errors. Every error returned by this package that a caller may act
// on wraps one of these (test with errors.Is); where an operating-system error
// caused it, the errno is wrapped too, so errors.Is(err, unix.ENOSPC) or
// errors.Is(err, fs.ErrPermission) also work.
var (
	// ErrExist: Create found a segment (or another object) under that name.
	ErrExist = errors.New("segment: already exists")
	// ErrNotExist: no segment under that name.
	ErrNotExist = errors.New("segment: does not exist")
	// ErrPermission: the operating system refused access (mode, owner).
	ErrPermission = errors.New("segment: permission denied")
	// ErrInvalidName: a name outside [A-Za-z0-9._-]{1,200} or containing "..";
	// region names are limited to 1–32 characters of the same set.
	ErrInvalidName = errors.New("segment: invalid name")
	// ErrInvalidSize: a zero, negative, too small or absurdly large size.
	ErrInvalidSize = errors.New("segment: invalid size")
	// ErrInvalidOption: an option value out of range (mode bits, backend,
	// table-of-contents capacity, alignment, SysV key).
	ErrInvalidOption = errors.New("segment: invalid option")
	// ErrBadMagic: the object does not start with the shmkit magic: it is
	// not a shmkit segment.
	ErrBadMagic = errors.New("segment: bad magic (not a shmkit segment)")
	// ErrNotReady: the object is a segment whose creator has not finished
	// writing its header yet (or died while doing so). Retry, or remove it.
	ErrNotReady = errors.New("segment: header not yet published")
	// ErrVersion: the header has a layout version this code does not read.
	ErrVersion = errors.New("segment: unsupported layout version")
	// ErrCorrupt: the header or table of contents fails validation
	// (checksum, sizes, entries out of range, unaligned or overlapping).
	ErrCorrupt = errors.New("segment: corrupt")
	// ErrClosed: the segment was closed; its memory is unmapped. It
	// matches os.ErrClosed.
	ErrClosed = errs.New("segment: closed", os.ErrClosed)
	// ErrReadOnly: a write access (or a writable slice or atomic pointer) was
	// asked of a read-only attachment.
	ErrReadOnly = errors.New("segment: attached read-only")
	// ErrNotCreator: only the handle returned by Create may add regions.
	ErrNotCreator = errors.New("segment: only the creating handle may add regions")
	// ErrOutOfRange: an offset or length outside the segment's data area.
	ErrOutOfRange = errors.New("segment: offset out of range")
	// ErrUnaligned: an atomic word asked for at an unaligned offset.
	ErrUnaligned = errors.New("segment: offset not aligned")
	// ErrNoRegion: no region of that name in the table of contents.
	ErrNoRegion = errors.New("segment: no such region")
	// ErrTOCFull: the table of contents has no free entry.
	ErrTOCFull = errors.New("segment: table of contents full")
	// ErrNoRoom: the data area has no room left for a region of that size.
	ErrNoRoom = errors.New("segment: no room left")
	// ErrHugePages: huge pages were asked for and could not be had.
	ErrHugePages = errors.New("segment: huge pages unavailable")
	// ErrNotSealed: a memfd handed over for attach is not sealed against
	// shrinking, so a peer could truncate it under us (SIGBUS).
	ErrNotSealed = errors.New("segment: memfd not sealed against shrinking")
	// ErrUnsupported: the backend or operation does not exist on this
	// operating system (or for this backend).
	ErrUnsupported = errors.New("segment: not supported")
)

// Sentinels of the sharing model (docs/security.md).
var (
	// ErrUntrusted: Open found a segment it must not join read-write: owned
	// (or, SysV, created) by a uid other than the caller's and those named
	// in Options.Owners, or with write permission for a group not named in
	// Options.Groups or for others. A squatter could read what the caller
	// publishes and truncate the segment under it. The error names the
	// owner and the mode.
	ErrUntrusted = errors.New("segment: owned or writable by someone not trusted")
	// ErrFault: a read of the mapping faulted (SIGBUS/SIGSEGV turned into an
	// error): someone with write access truncated the object under it.
	ErrFault = errors.New("segment: memory fault reading the mapping (object truncated?)")
)
