package proctest

import (
	"fmt"
	"os"
	"testing"

	"github.com/shmkit/shmkit/internal/memfd"
	"golang.org/x/sys/unix"
)

// Memfd creates an anonymous memfd of size bytes, sealed against shrinking
// and growing, and maps it shared and writable. Pass the file to children in
// cmd.ExtraFiles (ExtraFiles[0] is fd 3 in the child, which maps it with
// MapFD). The mapping and the file are released when the test ends; a memfd
// leaves nothing behind in /dev/shm. The test is skipped where memfd_create
// is unavailable.
func Memfd(tb testing.TB, size int) ([]byte, *os.File) {
	tb.Helper()
	f, err := memfd.Create(fmt.Sprintf("shmkit-test-%d", os.Getpid()), int64(size))
	if err != nil {
		tb.Skipf("proctest: %v", err)
	}
	fail := func(err error) {
		f.Close()
		tb.Fatalf("proctest: %v", err)
	}
	if err := memfd.Seal(f); err != nil {
		fail(err)
	}
	mem, err := memfd.Map(f, size, true)
	if err != nil {
		fail(err)
	}
	tb.Cleanup(func() {
		_ = memfd.Unmap(mem)
		_ = f.Close()
	})
	return mem, f
}

// MapFD maps the first size bytes of the file descriptor fd (3 for the
// parent's ExtraFiles[0]) shared and writable, in a child process. The
// mapping lives until the process exits.
func MapFD(fd, size int) ([]byte, error) {
	mem, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("map fd %d: %w", fd, err)
	}
	return mem, nil
}
