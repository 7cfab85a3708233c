package shmkit

import (
	"fmt"
	"runtime/debug"

	"github.com/shmkit/shmkit/segment"
)

// A process with write access to a POSIX or File channel's segment (a
// member of Config.Group on a group-writable channel, or the owner) can
// truncate it; the next access to the lost pages raises SIGBUS, which
// kills a Go program. Every exported call that touches the mapping starts
// with one line,
//
//	defer catchFault(&err, guardFaults())
//
// as its first defer (so it runs last, after the call's other defers have
// released what they hold), which turns such a fault into an error
// wrapping ErrFault for the caller. Memory handed to the caller (Sample
// bytes, Loan slices) is the caller's to touch: segment.Guard does for it
// what this does here. docs/security.md gives the measured cost.

// guardFaults makes a memory fault on this goroutine a panic that
// catchFault can recover, and returns the previous setting.
func guardFaults() bool { return debug.SetPanicOnFault(true) }

// catchFault restores the setting guardFaults changed and turns a fault
// panic into *err; any other panic goes on.
func catchFault(err *error, old bool) {
	debug.SetPanicOnFault(old)
	if r := recover(); r != nil {
		if _, ok := r.(interface{ Addr() uintptr }); !ok {
			panic(r)
		}
		*err = fmt.Errorf("%w: %v", ErrFault, r)
	}
}

// faultSafe runs f, under segment.Guard when another uid may truncate the
// channel's segment (Close: a fault while leaving must not skip the unmap).
func (ch *Channel) faultSafe(f func() error) error {
	if !ch.guard {
		return f()
	}
	return segment.Guard(f)
}
