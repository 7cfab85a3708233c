//go:build !linux

package futex

import (
	"fmt"
	"math"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"
)

// pollInterval is how often the portable Wait re-reads the word.
const pollInterval = 50 * time.Microsecond

// Wait is the portable fallback: it polls the word every 50µs until it no
// longer holds expected or the time-out elapses. It has the same contract as
// the Linux version (callers re-check their condition), without the speed.
func Wait(word *atomic.Uint32, expected uint32, timeout time.Duration) error {
	if uintptr(unsafe.Pointer(word))%4 != 0 {
		return ErrUnaligned
	}
	var deadline time.Time
	if timeout >= 0 {
		deadline = time.Now().Add(timeout)
	}
	for word.Load() == expected {
		if timeout >= 0 && !time.Now().Before(deadline) {
			return fmt.Errorf("futex wait %v: %w", timeout, ErrTimeout)
		}
		time.Sleep(pollInterval)
	}
	return nil
}

// Wake is a no-op in the portable fallback: pollers see the word change on
// their own. It reports zero sleepers woken.
func Wake(word *atomic.Uint32, n int) (int, error) {
	if uintptr(unsafe.Pointer(word))%4 != 0 {
		return 0, ErrUnaligned
	}
	_ = n
	_ = math.MaxInt32
	return 0, nil
}

func osYield() { runtime.Gosched() }

// MaxWaitAny is the most events WaitAny parks on with one system call on
// Linux; here WaitAny always uses its fallback.
const MaxWaitAny = 128

func waitv(words []*atomic.Uint32, vals []uint32, timeout time.Duration) error { return errNoWaitv }
