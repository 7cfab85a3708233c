package futex

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"
	"unsafe"
)

// EventSize is the number of bytes an Event occupies in shared memory.
// An Event must start at a 4-byte aligned offset; give a hot Event its own
// 64-byte cache line.
const EventSize = 8

// Event is a wait point in shared memory. Its layout is fixed:
//
//	offset 0: seq      uint32  futex word: bit 0 "armed" (a waiter parks on
//	                           this value), bits 1-31 a counter that Notify
//	                           bumps (clearing bit 0) before it wakes
//	offset 4: sleepers uint32  number of waiters parked or about to park
//
// An Event is never created by value in Go memory that other processes see;
// obtain one over shared bytes with EventAt. The zero value is ready to use.
type Event struct {
	seq      atomic.Uint32
	sleepers atomic.Uint32
}

// EventAt returns the Event stored in the first EventSize bytes of b.
// b must be at least EventSize long and 4-byte aligned; otherwise EventAt
// returns an error wrapping ErrUnaligned. The Event is valid for as long as
// the memory behind b stays mapped.
func EventAt(b []byte) (*Event, error) {
	if len(b) < EventSize {
		return nil, fmt.Errorf("event needs %d bytes, have %d: %w", EventSize, len(b), ErrUnaligned)
	}
	p := unsafe.Pointer(unsafe.SliceData(b))
	if uintptr(p)%4 != 0 {
		return nil, fmt.Errorf("event at %p: %w", p, ErrUnaligned)
	}
	return (*Event)(p), nil
}

// Sleepers reports how many waiters are parked (or about to park) on e.
// A waiter that died while parked stays counted; Notify then makes a wake
// system call that finds nobody, which costs time but loses nothing.
func (e *Event) Sleepers() uint32 { return e.sleepers.Load() }

// Notify wakes every waiter parked on e. Call it after making the condition
// the waiters check true (with an atomic store). It costs one atomic load
// when nobody sleeps, and a futex wake system call only when someone has
// parked since the last wake: a waiter arms seq (sets bit 0) before it
// parks, and the Notify that wakes it disarms seq, so the notifies that
// follow while the woken waiter is still on its way back to the CPU (tens of
// microseconds in a VM) make no system call. It reports whether a system
// call was made.
func (e *Event) Notify() bool {
	if e.sleepers.Load() == 0 {
		return false
	}
	for {
		v := e.seq.Load()
		if v&1 == 0 {
			return false // nobody armed since the last wake
		}
		if e.seq.CompareAndSwap(v, v+1) { // odd to the next even value
			if notifyHook != nil {
				notifyHook() // tests only: die between the disarm and the wake
			}
			_, _ = Wake(&e.seq, math.MaxInt32)
			return true
		}
	}
}

// notifyHook, when set (only by this package's tests), runs in Notify
// between the compare-and-swap that disarms seq and the wake system call:
// the window in which a notifier that dies strands the parked waiters. It
// sits on the path that makes a system call anyway.
var notifyHook func()

// bump moves seq to the next even value, disarming it, and wakes everyone
// parked on it.
func (e *Event) bump() {
	for {
		v := e.seq.Load()
		if e.seq.CompareAndSwap(v, (v|1)+1) {
			break
		}
	}
	_, _ = Wake(&e.seq, math.MaxInt32)
}

// arm sets bit 0 of seq, if no other waiter has, and returns the armed
// value to park on.
func (e *Event) arm() uint32 {
	for {
		v := e.seq.Load()
		if v&1 != 0 || e.seq.CompareAndSwap(v, v|1) {
			return v | 1
		}
	}
}

// Strategy says how a Waiter waits for a condition to become true.
type Strategy uint8

const (
	// SpinThenPark polls the condition for a bounded spin budget, then parks
	// on the futex. It is the default: fast when the other side answers
	// quickly, and costs no CPU when it does not.
	SpinThenPark Strategy = iota
	// BusySpin polls without ever parking. Lowest latency while each side
	// has a core of its own; ruinous when they share one.
	BusySpin
	// Yield polls and gives the processor away (sched_yield) between polls.
	Yield
	// Park parks on the futex as soon as the condition is false.
	Park
)

func (s Strategy) String() string {
	switch s {
	case SpinThenPark:
		return "spin-then-park"
	case BusySpin:
		return "spin"
	case Yield:
		return "yield"
	case Park:
		return "park"
	}
	return fmt.Sprintf("Strategy(%d)", uint8(s))
}

// ParseStrategy maps the names printed by Strategy.String back to values.
func ParseStrategy(name string) (Strategy, error) {
	for s := SpinThenPark; s <= Park; s++ {
		if s.String() == name {
			return s, nil
		}
	}
	return 0, fmt.Errorf("futex: unknown wait strategy %q (want spin-then-park, spin, yield or park)", name)
}

// DefaultSpin is the spin budget of SpinThenPark when Waiter.Spin is zero.
// A futex round trip between two cores of a small VM costs 60-90µs, so
// spinning for a fraction of that first is cheap insurance.
const DefaultSpin = 20 * time.Microsecond

// DefaultRecheck is how long a parked waiter sleeps at most before it
// re-checks its condition when Waiter.Recheck is zero. It bounds what a
// lost wake-up costs: a notifier killed between disarming the Event and its
// wake system call (see Notify) leaves parked waiters asleep with their
// condition true, and only their own re-check ends that. At this interval
// an idle waiter wakes ten times a second, a few microseconds of CPU each
// (docs/futex.md has the measurement and the command).
const DefaultRecheck = 100 * time.Millisecond

// Waiter waits for conditions on Events. The zero value spins for
// DefaultSpin and then parks, re-checking every DefaultRecheck. A Waiter
// holds no state between calls and may be shared by goroutines.
type Waiter struct {
	Strategy Strategy
	// Spin is the time SpinThenPark polls before parking; zero means
	// DefaultSpin.
	Spin time.Duration
	// Recheck bounds one futex sleep: a parked waiter wakes after at most
	// this long, re-checks its condition and parks again. Zero means
	// DefaultRecheck; a negative value sleeps until woken (a lost wake-up
	// then costs the rest of the caller's context).
	Recheck time.Duration
}

// pollsPerClockCheck is how many condition polls run between reads of the
// clock and of ctx while spinning.
const pollsPerClockCheck = 64

// Wait returns nil as soon as cond reports true, or ctx.Err() once ctx is
// done (ctx may be canceled while parked: the wait ends promptly). cond must
// read shared state with atomic loads and be cheap; it is called many times.
// The side that makes cond true must call e.Notify afterwards.
func (w Waiter) Wait(ctx context.Context, e *Event, cond func() bool) error {
	if cond() {
		return nil
	}
	done := ctx.Done()
	switch w.Strategy {
	case BusySpin, Yield:
		for i := 1; ; i++ {
			if cond() {
				return nil
			}
			if w.Strategy == Yield {
				osYield()
			}
			if i%pollsPerClockCheck == 0 && done != nil {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
		}
	case SpinThenPark:
		spin := w.Spin
		if spin <= 0 {
			spin = DefaultSpin
		}
		start := time.Now()
		for i := 1; ; i++ {
			if cond() {
				return nil
			}
			if i%pollsPerClockCheck == 0 {
				if time.Since(start) >= spin {
					break
				}
				if done != nil {
					if err := ctx.Err(); err != nil {
						return err
					}
				}
			}
		}
	}
	recheck := w.Recheck
	if recheck == 0 {
		recheck = DefaultRecheck
	}
	return e.park(ctx, cond, recheck)
}

// park sleeps on the futex until cond holds or ctx is done, re-checking
// cond at least every recheck (never, if recheck < 0).
func (e *Event) park(ctx context.Context, cond func() bool, recheck time.Duration) error {
	if ctx.Done() != nil {
		// Cancellation must reach a thread asleep in the kernel: bump seq and
		// wake everyone. Other sleepers see a spurious wake-up and re-check.
		stop := context.AfterFunc(ctx, e.bump)
		defer stop()
	}
	for {
		e.sleepers.Add(1)
		seq := e.arm()
		if cond() {
			e.sleepers.Add(^uint32(0))
			return nil
		}
		if err := ctx.Err(); err != nil {
			e.sleepers.Add(^uint32(0))
			return err
		}
		timeout, bounded := recheck, recheck >= 0
		dl, hasDeadline := ctx.Deadline()
		if hasDeadline {
			if left := max(time.Until(dl), 0); !bounded || left < timeout {
				timeout, bounded = left, false
			}
		}
		if !bounded && !hasDeadline {
			timeout = -1
		}
		err := Wait(&e.seq, seq, timeout)
		e.sleepers.Add(^uint32(0))
		if cond() {
			return nil
		}
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if errors.Is(err, ErrTimeout) {
			if bounded {
				// A re-check, not the deadline: the loop re-arms seq, so
				// a wake lost to a dead notifier costs at most recheck.
				continue
			}
			// The deadline passed; ctx's own timer may fire a moment later.
			return context.DeadlineExceeded
		}
		if err != nil {
			return err
		}
	}
}
