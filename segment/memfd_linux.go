package segment

import (
	"errors"
	"fmt"
	"github.com/shmkit/shmkit/internal/memfd"
	"os"

	"golang.org/x/sys/unix"
)

func createMemfd(name string, size int64, h *header, opts *Options) (*Segment, error) {
	create := memfd.Create
	if opts.HugePages {
		create = memfd.CreateHuge
		hp := hugePageSize()
		size = (size + hp - 1) / hp * hp
	}
	f, err := create(Prefix+name, size)
	if err != nil {
		if opts.HugePages {
			return nil, hugeErr(err)
		}
		return nil, err
	}
	fd := int(f.Fd())
	fail := func(err error) (*Segment, error) { return nil, errors.Join(err, f.Close()) }
	if err := memfd.Seal(f); err != nil {
		return fail(err)
	}
	mem, err := mmapFd(fd, size, false)
	if err != nil {
		if opts.HugePages {
			return fail(hugeErr(err))
		}
		return fail(err)
	}
	m := &fdMapping{mem: mem, file: f}
	if err := setup(mem, opts, true); err != nil {
		return nil, errors.Join(err, m.unmap())
	}
	s := newSegment(mem, h, m)
	s.file = f
	return s, nil
}

// OpenMemfd attaches the Memfd segment behind f, typically a descriptor
// received through cmd.ExtraFiles (os.NewFile(3, "segment")) or SCM_RIGHTS.
// It duplicates the descriptor, so the caller keeps owning f and may close
// it. The memfd must be sealed against shrinking (ErrNotSealed otherwise),
// so no peer can truncate it into a SIGBUS; the header is validated as
// Open does.
func OpenMemfd(f *os.File, opts *Options) (*Segment, error) {
	opts = opts.orDefault()
	s, err := openMemfd(f, opts)
	if err != nil {
		return nil, fmt.Errorf("open memfd segment %s: %w", f.Name(), err)
	}
	return s, nil
}

func openMemfd(f *os.File, opts *Options) (*Segment, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	fd := -1
	var dupErr error
	if err := rc.Control(func(old uintptr) {
		fd, dupErr = unix.FcntlInt(old, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return nil, err
	}
	if dupErr != nil {
		return nil, fmt.Errorf("dup: %w", dupErr)
	}
	nf := os.NewFile(uintptr(fd), f.Name())
	fail := func(err error) (*Segment, error) { return nil, errors.Join(err, nf.Close()) }
	sealed, err := memfd.Sealed(nf)
	if err != nil {
		return fail(fmt.Errorf("%w: %w (not a memfd?)", ErrNotSealed, err))
	}
	if !sealed {
		return fail(fmt.Errorf("%w: %s", ErrNotSealed, nf.Name()))
	}
	size, err := objectSize(nf)
	if err != nil {
		return fail(err)
	}
	mem, err := mmapFd(fd, size, opts.ReadOnly)
	if err != nil {
		return fail(err)
	}
	s, err := attach(mem, size, Memfd, "", opts.ReadOnly, &fdMapping{mem: mem, file: nf})
	if err != nil {
		return nil, err // attach unmapped and closed nf
	}
	s.file = nf
	if err := setup(s.mem, opts, !opts.ReadOnly); err != nil {
		return nil, errors.Join(err, s.Close())
	}
	return s, nil
}
