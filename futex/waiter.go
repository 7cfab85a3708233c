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
	// Fence, when set, is called by a parking waiter after it has counted
	// itself as a sleeper on its Events and armed them, when cond is false,
	// before it checks cond once more and sleeps: the waiter's half of an
	// asymmetric fence (package ring), which then costs nothing while the
	// waiter spins, nor when cond already holds. False reports that the
	// fence failed: the wait ends as if cond held (a spurious wake-up).
	Fence func() bool
}

// pollsPerClockCheck is how many condition polls run between reads of the
// clock and of ctx while spinning.
const pollsPerClockCheck = 64

// Wait returns nil as soon as cond reports true, or ctx.Err() once ctx is
// done (ctx may be canceled while parked: the wait ends promptly). cond must
// read shared state with atomic loads and be cheap; it is called many times.
// The side that makes cond true must call e.Notify afterwards.
func (w Waiter) Wait(ctx context.Context, e *Event, cond func() bool) error {
	return w.wait(ctx, e, cond, time.Time{})
}

// WaitUntil is Wait with a deadline that ends the wait without an error:
// it reports expired when until passes before cond holds. The waiter reads
// the clock itself (every pollsPerClockCheck polls while spinning, at each
// wake-up while parked, and it sleeps no longer than until), so cond stays
// a pure check of shared state. Unlike a context deadline it needs no timer
// and no goroutine: a caller that waits in bounded slices (to look for dead
// peers between them, say) uses it in a loop.
func (w Waiter) WaitUntil(ctx context.Context, e *Event, cond func() bool, until time.Time) (expired bool, err error) {
	return expiredOf(w.wait(ctx, e, cond, until))
}

// WaitAnyUntil is WaitUntil over several Events, as WaitAny is Wait.
func (w Waiter) WaitAnyUntil(ctx context.Context, evs []*Event, cond func() bool, until time.Time) (expired bool, err error) {
	return expiredOf(w.waitAny(ctx, evs, cond, until))
}

// errExpired ends a wait whose until passed; WaitUntil turns it into its
// expired result.
var errExpired = errors.New("futex: wait deadline passed")

func expiredOf(err error) (bool, error) {
	if err == errExpired {
		return true, nil
	}
	return false, err
}

// passed reports whether the deadline until (zero: none) has passed.
func passed(until time.Time) bool { return !until.IsZero() && !time.Now().Before(until) }

func (w Waiter) wait(ctx context.Context, e *Event, cond func() bool, until time.Time) error {
	if done, err := w.spin(ctx, cond, until); done || err != nil {
		return err
	}
	return e.park(ctx, cond, w.armed(cond), w.recheck(), until)
}

// armed is the check a parking waiter makes once counted as a sleeper and
// armed: cond, and while it is false the Fence and cond again (a true
// cond needs no fence: what it saw is there).
func (w Waiter) armed(cond func() bool) func() bool {
	if w.Fence == nil {
		return cond
	}
	fence := w.Fence
	return func() bool {
		if cond() {
			return true
		}
		return !fence() || cond()
	}
}

// WaitAny is Wait over several Events: it returns nil as soon as cond
// reports true, and the side that makes cond true calls Notify on any one
// of evs. Parked, one thread sleeps on every Event's futex word at once
// with futex_waitv (Linux 5.16, up to MaxWaitAny events); where the kernel
// lacks it, or for more events, one goroutine parks on each. The same
// Recheck bound and ctx handling as Wait apply.
func (w Waiter) WaitAny(ctx context.Context, evs []*Event, cond func() bool) error {
	return w.waitAny(ctx, evs, cond, time.Time{})
}

func (w Waiter) waitAny(ctx context.Context, evs []*Event, cond func() bool, until time.Time) error {
	switch len(evs) {
	case 0:
		return fmt.Errorf("futex: WaitAny on no events: %w", ErrUnaligned)
	case 1:
		return w.wait(ctx, evs[0], cond, until)
	}
	if done, err := w.spin(ctx, cond, until); done || err != nil {
		return err
	}
	armed := w.armed(cond)
	err := parkAny(ctx, evs, cond, armed, w.recheck(), until)
	if errors.Is(err, errNoWaitv) {
		return parkEach(ctx, evs, cond, armed, w.recheck(), until)
	}
	return err
}

func (w Waiter) recheck() time.Duration {
	if w.Recheck == 0 {
		return DefaultRecheck
	}
	return w.Recheck
}

// spin runs the strategy's polling phase: done reports that cond held;
// err is ctx's error, or errExpired once until (zero: none) has passed.
// BusySpin and Yield never return otherwise.
func (w Waiter) spin(ctx context.Context, cond func() bool, until time.Time) (done bool, err error) {
	if cond() {
		return true, nil
	}
	ctxDone := ctx.Done()
	switch w.Strategy {
	case BusySpin, Yield:
		for i := 1; ; i++ {
			if cond() {
				return true, nil
			}
			if w.Strategy == Yield {
				osYield()
			} else {
			}
			if i%pollsPerClockCheck == 0 {
				if ctxDone != nil {
					if err := ctx.Err(); err != nil {
						return false, err
					}
				}
				if passed(until) {
					return false, errExpired
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
				return true, nil
			}
			if i%pollsPerClockCheck == 0 {
				now := time.Now()
				if !until.IsZero() && !now.Before(until) {
					return false, errExpired
				}
				if now.Sub(start) >= spin {
					break
				}
				if ctxDone != nil {
					if err := ctx.Err(); err != nil {
						return false, err
					}
				}
			}
		}
	}
	return false, nil
}

// parkAny is park over several Events with one futex_waitv: the waiter
// counts itself as a sleeper and arms every Event before its re-check, so
// the no-lost-wake-up argument of park holds for each Event separately (a
// Notify on any one either sees this sleeper and an armed seq, and wakes
// the futex_waitv, or its condition was already seen by the re-check).
func parkAny(ctx context.Context, evs []*Event, cond, armed func() bool, recheck time.Duration, until time.Time) error {
	if ctx.Done() != nil {
		bumped := make(chan struct{})
		stop := context.AfterFunc(ctx, func() {
			for _, e := range evs {
				e.bump()
			}
			close(bumped)
		})
		defer func() {
			if !stop() {
				<-bumped
			}
		}()
	}
	words := make([]*atomic.Uint32, len(evs))
	seqs := make([]uint32, len(evs))
	for i, e := range evs {
		words[i] = &e.seq
	}
	leave := func() {
		for _, e := range evs {
			e.sleepers.Add(^uint32(0))
		}
	}
	for {
		for i, e := range evs {
			e.sleepers.Add(1)
			seqs[i] = e.arm()
		}
		if armed() {
			leave()
			return nil
		}
		if err := ctx.Err(); err != nil {
			leave()
			return err
		}
		if passed(until) {
			leave()
			return errExpired
		}
		timeout, bounded := sleepFor(ctx, recheck, until)
		err := waitv(words, seqs, timeout)
		leave()
		if errors.Is(err, errNoWaitv) {
			return err
		}
		if done, err := woke(ctx, cond, err, bounded, until); done {
			return err
		}
	}
}

// sleepFor returns how long one futex sleep may last: recheck, or the time
// left to until when that comes first (still bounded: the caller looks at
// until when it wakes), or the time left to ctx's deadline when that comes
// first (bounded is then false: a time-out means the deadline); -1 sleeps
// until woken.
func sleepFor(ctx context.Context, recheck time.Duration, until time.Time) (timeout time.Duration, bounded bool) {
	timeout, bounded = recheck, recheck >= 0
	if !until.IsZero() {
		if left := max(time.Until(until), 0); !bounded || left < timeout {
			timeout, bounded = left, true
		}
	}
	dl, hasDeadline := ctx.Deadline()
	if hasDeadline {
		if left := max(time.Until(dl), 0); !bounded || left < timeout {
			timeout, bounded = left, false
		}
	}
	if !bounded && !hasDeadline {
		timeout = -1
	}
	return timeout, bounded
}

// woke judges how a futex sleep ended: done with a nil error when cond
// holds, done with ctx's error or the wait's, or not done (sleep again).
// A bounded time-out is a re-check, not the deadline: the caller re-arms
// seq, so a wake lost to a dead notifier costs at most one re-check.
func woke(ctx context.Context, cond func() bool, err error, bounded bool, until time.Time) (done bool, _ error) {
	if cond() {
		return true, nil
	}
	if cerr := ctx.Err(); cerr != nil {
		return true, cerr
	}
	if passed(until) {
		return true, errExpired
	}
	if errors.Is(err, ErrTimeout) {
		if bounded {
			return false, nil
		}
		// The deadline passed; ctx's own timer may fire a moment later.
		return true, context.DeadlineExceeded
	}
	return err != nil, err
}

// parkEach is WaitAny's fallback: one goroutine parks on each Event; the
// first whose wait ends ends the others.
func parkEach(ctx context.Context, evs []*Event, cond, armed func() bool, recheck time.Duration, until time.Time) error {
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(evs))
	for _, e := range evs {
		go func() { errs <- e.park(pctx, cond, armed, recheck, until) }()
	}
	first := <-errs
	cancel()
	for range evs[1:] {
		<-errs
	}
	if first != nil && cond() {
		return nil
	}
	if first != nil && ctx.Err() == nil && errors.Is(first, context.Canceled) {
		return nil // canceled by a sibling that saw cond
	}
	return first
}

// park sleeps on the futex until cond holds or ctx is done, re-checking
// cond at least every recheck (never, if recheck < 0). Counted as a
// sleeper and armed, it checks with armed (cond with the Waiter's fence).
func (e *Event) park(ctx context.Context, cond, armed func() bool, recheck time.Duration, until time.Time) error {
	if ctx.Done() != nil {
		// Cancellation must reach a thread asleep in the kernel: bump seq and
		// wake everyone. Other sleepers see a spurious wake-up and re-check.
		// The wake-up may still be running when park returns, and the
		// caller may unmap e right after: wait for a bump that started.
		bumped := make(chan struct{})
		stop := context.AfterFunc(ctx, func() { e.bump(); close(bumped) })
		defer func() {
			if !stop() {
				<-bumped
			}
		}()
	}
	for {
		e.sleepers.Add(1)
		seq := e.arm()
		if armed() {
			e.sleepers.Add(^uint32(0))
			return nil
		}
		if err := ctx.Err(); err != nil {
			e.sleepers.Add(^uint32(0))
			return err
		}
		if passed(until) {
			e.sleepers.Add(^uint32(0))
			return errExpired
		}
		timeout, bounded := sleepFor(ctx, recheck, until)
		err := Wait(&e.seq, seq, timeout)
		e.sleepers.Add(^uint32(0))
		if done, err := woke(ctx, cond, err, bounded, until); done {
			return err
		}
	}
}
