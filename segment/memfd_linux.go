package segment

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

func createMemfd(name string, size int64, h *header, opts *Options) (*Segment, error) {
	flags := unix.MFD_CLOEXEC | unix.MFD_ALLOW_SEALING
	if opts.HugePages {
		flags |= unix.MFD_HUGETLB
		hp := hugePageSize()
		size = (size + hp - 1) / hp * hp
	}
	fd, err := unix.MemfdCreate(Prefix+name, flags)
	if err != nil {
		if opts.HugePages {
			return nil, hugeErr(err)
		}
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "memfd:"+Prefix+name)
	fail := func(err error) (*Segment, error) { return nil, errors.Join(err, f.Close()) }
	if err := unix.Fallocate(fd, 0, 0, size); err != nil {
		if opts.HugePages {
			return fail(hugeErr(err))
		}
		return fail(fmt.Errorf("reserve %d bytes (fallocate): %w", size, err))
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_SEAL); err != nil {
		return fail(fmt.Errorf("seal memfd: %w", err))
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
	seals, err := unix.FcntlInt(uintptr(fd), unix.F_GET_SEALS, 0)
	if err != nil {
		return fail(fmt.Errorf("%w: F_GET_SEALS: %w (not a memfd?)", ErrNotSealed, err))
	}
	if seals&unix.F_SEAL_SHRINK == 0 {
		return fail(fmt.Errorf("%w: seals %#x", ErrNotSealed, seals))
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
