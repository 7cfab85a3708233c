package segment

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// fdMapping is a mapping of a file descriptor (POSIX, Memfd) made with
// unix.Mmap; file, when set, is closed with it.
type fdMapping struct {
	mem  []byte
	file *os.File
	path string // POSIX: for describe
}

func (m *fdMapping) unmap() error {
	err := unix.Munmap(m.mem)
	m.mem = nil
	if m.file != nil {
		err = errors.Join(err, m.file.Close())
		m.file = nil
	}
	return err
}

func (m *fdMapping) flush() error { return nil }

func (m *fdMapping) describe(info *Info) {
	var st unix.Stat_t
	var err error
	switch {
	case m.path != "":
		err = unix.Stat(m.path, &st)
	case m.file != nil:
		err = unix.Fstat(int(m.file.Fd()), &st)
	default:
		return
	}
	if err == nil {
		info.Mode = os.FileMode(st.Mode & 0o777)
	}
}

func mmapFd(fd int, size int64, readOnly bool) ([]byte, error) {
	prot := unix.PROT_READ | unix.PROT_WRITE
	if readOnly {
		prot = unix.PROT_READ
	}
	mem, err := unix.Mmap(fd, 0, int(size), prot, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap %d bytes: %w", size, osErr(err))
	}
	return mem, nil
}

// reserve allocates size bytes of backing store for f, so that touching the
// mapping later cannot SIGBUS on a full file system: fallocate, or writing
// zeros where the file system lacks fallocate.
func reserve(f *os.File, size int64) error {
	err := unix.Fallocate(int(f.Fd()), 0, 0, size)
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) {
		return writeZeros(f, size)
	}
	if err != nil {
		return fmt.Errorf("reserve %d bytes (fallocate): %w", size, err)
	}
	return nil
}

// setup applies the Prefault and Lock options to a fresh mapping.
func setup(mem []byte, opts *Options, write bool) error {
	if opts.Prefault {
		advice := unix.MADV_POPULATE_READ
		if write {
			advice = unix.MADV_POPULATE_WRITE
		}
		if err := unix.Madvise(mem, advice); err != nil {
			if !errors.Is(err, unix.EINVAL) { // EINVAL: kernel older than 5.14
				return fmt.Errorf("prefault: %w", err)
			}
			touch(mem, write)
		}
	}
	if opts.Lock {
		if err := unix.Mlock(mem); err != nil {
			return fmt.Errorf("mlock %d bytes (RLIMIT_MEMLOCK or CAP_IPC_LOCK needed): %w", len(mem), osErr(err))
		}
	}
	return nil
}

// hugePageSize returns the default huge page size from /proc/meminfo
// (2 MiB when it cannot be read).
func hugePageSize() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err == nil {
		var kb int64
		for _, line := range splitLines(string(b)) {
			if n, _ := fmt.Sscanf(line, "Hugepagesize: %d kB", &kb); n == 1 && kb > 0 {
				return kb << 10
			}
		}
	}
	return 2 << 20
}

func hugeErr(err error) error {
	return fmt.Errorf("%w: none free (reserve some via /proc/sys/vm/nr_hugepages): %w", ErrHugePages, err)
}
