//go:build !linux

package segment

import (
	"fmt"
	"os"
	"runtime"
	"syscall"
)

// ProcessStart returns the start time of process pid on Linux; elsewhere
// it fails with ErrUnsupported and headers record 0.
func ProcessStart(pid int) (uint64, error) {
	return 0, fmt.Errorf("%w: process start time on %s", ErrUnsupported, runtime.GOOS)
}

// ProcessAlive reports whether process pid runs. Without start times (off
// Linux) a reused pid cannot be told apart, so this is a best effort: the
// process exists and start is 0 as recorded here.
func ProcessAlive(pid int, start uint64) bool {
	if pid <= 0 || start != 0 {
		return false
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	if runtime.GOOS == "windows" { // FindProcess opened it, so it exists
		_ = p.Release()
		return true
	}
	return p.Signal(syscall.Signal(0)) == nil
}
