//go:build !linux

package bench

import (
	"context"
	"fmt"
	"os"
	"runtime"
)

// Run needs Linux (memfd, futexes, POSIX and SysV message queues); here it
// returns an error wrapping ErrUnsupported.
func Run(ctx context.Context, cfg Config) ([]Result, error) {
	return nil, fmt.Errorf("%w: %s", ErrUnsupported, runtime.GOOS)
}

// Cells returns the number of steps cfg would run on Linux.
func Cells(cfg Config) int { return 0 }

// IsChild reports whether this process was started as a benchmark child.
func IsChild() bool { return false }

// ChildMain fails: there are no benchmark children off Linux.
func ChildMain() int {
	fmt.Fprintf(os.Stderr, "bench child: %v\n", ErrUnsupported)
	return 2
}
