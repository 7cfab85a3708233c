package segment

import (
	"fmt"
	"runtime/debug"
)

// Guard runs f with memory faults on the calling goroutine turned into an
// error wrapping ErrFault: a POSIX or File segment truncated by someone
// with write access makes the next access to the pages past the new end
// raise SIGBUS, which would otherwise kill the process. Any other panic
// passes through. f must not start goroutines that touch the mapping (the
// setting is per goroutine). It costs a few nanoseconds per call (see
// docs/security.md for the measurement).
func Guard(f func() error) (err error) {
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			if fe, ok := r.(interface{ Addr() uintptr }); ok {
				err = fmt.Errorf("%w: address %#x: %v", ErrFault, fe.Addr(), r)
				return
			}
			panic(r)
		}
	}()
	return f()
}
