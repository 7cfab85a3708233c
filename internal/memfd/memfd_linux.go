package memfd

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Create makes a memfd named name (shown in /proc/PID/fd and maps, at most
// 249 bytes), close-on-exec and sealable, sized to size bytes with the
// memory reserved (fallocate: a full tmpfs fails here with ENOSPC, not with
// a SIGBUS on first touch). The caller owns the returned file.
func Create(name string, size int64) (*os.File, error) {
	return create(name, size, 0)
}

// CreateHuge is Create backed by huge pages (MFD_HUGETLB); size must be a
// multiple of the huge page size. It fails (ENOMEM/ENOSPC, wrapped) where
// no huge pages are reserved.
func CreateHuge(name string, size int64) (*os.File, error) {
	return create(name, size, unix.MFD_HUGETLB)
}

func create(name string, size int64, flags int) (*os.File, error) {
	if size <= 0 {
		return nil, fmt.Errorf("memfd: create %q: size %d must be positive", name, size)
	}
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING|flags)
	if err != nil {
		return nil, fmt.Errorf("memfd: create %q: %w", name, err)
	}
	f := os.NewFile(uintptr(fd), "memfd:"+name)
	if err := unix.Ftruncate(fd, size); err != nil {
		return nil, errors.Join(fmt.Errorf("memfd: size %q to %d bytes: %w", name, size, err), f.Close())
	}
	if err := unix.Fallocate(fd, 0, 0, size); err != nil {
		return nil, errors.Join(fmt.Errorf("memfd: reserve %d bytes for %q (fallocate): %w", size, name, err), f.Close())
	}
	return f, nil
}

// Seal seals f against shrinking, growing and further sealing, so its size
// is fixed for everyone who maps it.
func Seal(f *os.File) error {
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_SEAL); err != nil {
		return fmt.Errorf("memfd: seal %s: %w", f.Name(), err)
	}
	return nil
}

// Sealed reports whether f is a memfd sealed against shrinking.
func Sealed(f *os.File) (bool, error) {
	seals, err := unix.FcntlInt(f.Fd(), unix.F_GET_SEALS, 0)
	if err != nil {
		return false, fmt.Errorf("memfd: F_GET_SEALS on %s: %w", f.Name(), err)
	}
	return seals&unix.F_SEAL_SHRINK != 0, nil
}

// Size returns the size of the file behind f.
func Size(f *os.File) (int64, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return 0, fmt.Errorf("memfd: fstat %s: %w", f.Name(), err)
	}
	return st.Size, nil
}

// Map maps the first size bytes of f shared, read-write or read-only. The
// mapping stays valid after f is closed, until Unmap.
func Map(f *os.File, size int, writable bool) ([]byte, error) {
	prot := unix.PROT_READ
	if writable {
		prot |= unix.PROT_WRITE
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, size, prot, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("memfd: map %d bytes of %s: %w", size, f.Name(), err)
	}
	return mem, nil
}

// Unmap releases a mapping returned by Map (the exact slice).
func Unmap(mem []byte) error {
	if err := unix.Munmap(mem); err != nil {
		return fmt.Errorf("memfd: unmap: %w", err)
	}
	return nil
}
