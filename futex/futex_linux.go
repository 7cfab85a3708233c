//go:build linux

package futex

import (
	"fmt"
	"math"
	"runtime"
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

// MaxWaitAny is the most words one futex_waitv call parks on (the kernel's
// FUTEX_WAITV_MAX); WaitAny falls back above it.
const MaxWaitAny = 128

// futexWaitv is struct futex_waitv (linux/futex.h).
type futexWaitv struct {
	val      uint64
	uaddr    uint64
	flags    uint32
	reserved uint32
}

const futex2SizeU32 = 0x02 // FUTEX2_SIZE_U32; shared (no FUTEX2_PRIVATE)

// noWaitv records that the kernel said ENOSYS once.
var noWaitv atomic.Bool

// waitv blocks the thread while *words[i] == vals[i] for every i, until a
// Wake on any of them, a spurious wake-up or the time-out (negative: none).
// It returns nil when woken or when a word no longer held its value, an
// error wrapping ErrTimeout, or errNoWaitv where the kernel lacks
// futex_waitv. The words must be 4-byte aligned.
func waitv(words []*atomic.Uint32, vals []uint32, timeout time.Duration) error {
	if noWaitv.Load() || len(words) > MaxWaitAny {
		return errNoWaitv
	}
	var wv [MaxWaitAny]futexWaitv
	for i, w := range words {
		wv[i] = futexWaitv{val: uint64(vals[i]), uaddr: uint64(uintptr(unsafe.Pointer(w))), flags: futex2SizeU32}
	}
	var tsp unsafe.Pointer
	var abs unix.Timespec
	if timeout >= 0 {
		// futex_waitv takes an absolute time on the given clock.
		var now unix.Timespec
		if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &now); err != nil {
			return fmt.Errorf("futex waitv: clock: %w", err)
		}
		abs = unix.NsecToTimespec(now.Nano() + int64(timeout))
		tsp = unsafe.Pointer(&abs)
	}
	for {
		_, _, errno := unix.Syscall6(unix.SYS_FUTEX_WAITV, uintptr(unsafe.Pointer(&wv[0])), uintptr(len(words)),
			0, uintptr(tsp), unix.CLOCK_MONOTONIC, 0)
		runtime.KeepAlive(words)
		switch errno {
		case 0, unix.EAGAIN:
			return nil
		case unix.EINTR:
			continue // the absolute time-out needs no adjusting
		case unix.ETIMEDOUT:
			return fmt.Errorf("futex waitv %v: %w", timeout, ErrTimeout)
		case unix.ENOSYS:
			noWaitv.Store(true)
			return errNoWaitv
		default:
			return fmt.Errorf("futex waitv: %w", errno)
		}
	}
}
