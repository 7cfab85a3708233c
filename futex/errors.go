package futex

import "errors"

// Sentinel errors. Callers test for them with errors.Is; the package wraps
// them with context.
var (
	// ErrTimeout is returned by Wait when the time-out elapsed before a wake-up.
	ErrTimeout = errors.New("futex: timed out")
	// ErrUnaligned is returned when a word is not 4-byte aligned or a region
	// is too small to hold the words asked for.
	ErrUnaligned = errors.New("futex: word not 4-byte aligned or out of range")
)

// errNoWaitv is returned by waitv where the kernel has no futex_waitv
// (before Linux 5.16, or off Linux); WaitAny then falls back.
var errNoWaitv = errors.New("futex: futex_waitv unavailable")
