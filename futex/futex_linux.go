//go:build linux

package futex

import (
	"fmt"
	"math"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Operation codes from <linux/futex.h>. golang.org/x/sys/unix has the system
// call number but not these. FUTEX_PRIVATE_FLAG (128) is deliberately never
// used: the words are shared between processes.
const (
	opWait = 0 // FUTEX_WAIT
	opWake = 1 // FUTEX_WAKE
)

// Wait blocks the calling goroutine's thread while *word == expected, until a
// Wake on the same word, a spurious wake-up, or the time-out. A negative
// timeout waits without limit. It returns nil when woken or when the word did
// not hold expected (EAGAIN), and an error wrapping ErrTimeout when the
// time-out elapsed. Interrupted waits (EINTR) are retried with the time that
// remains. The word must be 4-byte aligned (a *atomic.Uint32 always is).
func Wait(word *atomic.Uint32, expected uint32, timeout time.Duration) error {
	addr := unsafe.Pointer(word)
	if uintptr(addr)%4 != 0 {
		return ErrUnaligned
	}
	var deadline time.Time
	if timeout >= 0 {
		deadline = time.Now().Add(timeout)
	}
	for {
		var tsp unsafe.Pointer
		var ts unix.Timespec
		if timeout >= 0 {
			left := time.Until(deadline)
			if left <= 0 {
				return fmt.Errorf("futex wait %v: %w", timeout, ErrTimeout)
			}
			ts = unix.NsecToTimespec(int64(left))
			tsp = unsafe.Pointer(&ts)
		}
		// Syscall6, not RawSyscall6: the wait blocks, and the runtime must
		// know this thread is in a system call so it can run other goroutines
		// and stop the world for GC.
		_, _, errno := unix.Syscall6(unix.SYS_FUTEX, uintptr(addr), opWait,
			uintptr(expected), uintptr(tsp), 0, 0)
		switch errno {
		case 0, unix.EAGAIN:
			return nil
		case unix.EINTR:
			continue
		case unix.ETIMEDOUT:
			return fmt.Errorf("futex wait %v: %w", timeout, ErrTimeout)
		default:
			return fmt.Errorf("futex wait: %w", errno)
		}
	}
}

// Wake wakes up to n sleepers waiting on word, in this or any other process
// that maps the same memory, and returns how many it woke. n <= 0 wakes none;
// use math.MaxInt32 (or WakeAll) to wake every sleeper.
func Wake(word *atomic.Uint32, n int) (int, error) {
	addr := unsafe.Pointer(word)
	if uintptr(addr)%4 != 0 {
		return 0, ErrUnaligned
	}
	if n <= 0 {
		return 0, nil
	}
	if n > math.MaxInt32 {
		n = math.MaxInt32
	}
	// FUTEX_WAKE never blocks, so the raw form is safe and cheaper.
	r, _, errno := unix.RawSyscall6(unix.SYS_FUTEX, uintptr(addr), opWake,
		uintptr(n), 0, 0, 0)
	if errno != 0 {
		return 0, fmt.Errorf("futex wake: %w", errno)
	}
	return int(r), nil
}

// osYield gives up the processor to another thread (sched_yield).
func osYield() {
	unix.RawSyscall(unix.SYS_SCHED_YIELD, 0, 0, 0)
}
