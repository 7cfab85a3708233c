//go:build !linux

package segment

import (
	"fmt"
	"os"
	"runtime"
)

// Off Linux only the File backend exists (through mmap-go); the others fail
// with ErrUnsupported.

func unsupported(what string) error {
	return fmt.Errorf("%w: %s on %s", ErrUnsupported, what, runtime.GOOS)
}

func createPOSIX(string, int64, *header, *Options) (*Segment, error) {
	return nil, unsupported("the posix backend")
}
func openPOSIX(string, *Options) (*Segment, error) { return nil, unsupported("the posix backend") }
func removePOSIX(string) error                     { return unsupported("the posix backend") }
func listPOSIX() []Info                            { return nil }

func createSysV(string, int64, *header, *Options) (*Segment, error) {
	return nil, unsupported("the sysv backend")
}
func openSysV(string, *Options) (*Segment, error) { return nil, unsupported("the sysv backend") }
func removeSysV(string, *Options) error           { return unsupported("the sysv backend") }
func listSysV() []Info                            { return nil }

func createMemfd(string, int64, *header, *Options) (*Segment, error) {
	return nil, unsupported("the memfd backend")
}

// OpenMemfd attaches a Memfd segment; memfds exist only on Linux.
func OpenMemfd(f *os.File, opts *Options) (*Segment, error) {
	return nil, unsupported("the memfd backend")
}

func checkHugetlbfs(string) error {
	return fmt.Errorf("%w: %v", ErrHugePages, unsupported("huge pages"))
}

// reserve writes zeros: without fallocate that is what allocates the blocks.
func reserve(f *os.File, size int64) error { return writeZeros(f, size) }

func setup(mem []byte, opts *Options, write bool) error {
	if opts.Lock {
		return unsupported("locking segments in memory")
	}
	if opts.Prefault {
		touch(mem, write)
	}
	return nil
}

var errGone = ErrUnsupported

func rmidErr(int) error { return unsupported("the sysv backend") }
