package futex

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

func TestWaiterPingPongInProcess(t *testing.T) {
	for _, s := range []Strategy{SpinThenPark, BusySpin, Yield, Park} {
		var ev Event
		var turn atomic.Uint32
		w := Waiter{Strategy: s}
		const n = 2000
		done := make(chan error, 1)
		go func() {
			for i := 0; i < n; i++ {
				want := uint32(2*i + 1)
				if err := w.Wait(context.Background(), &ev, func() bool { return turn.Load() == want }); err != nil {
					done <- err
					return
				}
				turn.Store(want + 1)
				ev.Notify()
			}
			done <- nil
		}()
		for i := 0; i < n; i++ {
			turn.Store(uint32(2*i + 1))
			ev.Notify()
			want := uint32(2*i + 2)
			if err := w.Wait(context.Background(), &ev, func() bool { return turn.Load() == want }); err != nil {
				t.Fatal(err)
			}
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	var ev Event
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := (Waiter{}).Wait(ctx, &ev, func() bool { return false }); err != context.DeadlineExceeded {
		t.Fatalf("got %v", err)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	go func() { time.Sleep(10 * time.Millisecond); cancel2() }()
	if err := (Waiter{Strategy: Park}).Wait(ctx2, &ev, func() bool { return false }); err != context.Canceled {
		t.Fatalf("got %v", err)
	}
}

// TestWaitUntil: a parked waiter whose re-check is long still returns at
// its deadline (the waiter reads the clock itself, cond stays a pure
// check), reports expired only when cond did not hold, and a WaitAnyUntil
// does the same over two events.
func TestWaitUntil(t *testing.T) {
	var e, f Event
	w := Waiter{Strategy: Park, Recheck: 10 * time.Second}
	for _, any := range []bool{false, true} {
		start := time.Now()
		var expired bool
		var err error
		if any {
			expired, err = w.WaitAnyUntil(context.Background(), []*Event{&e, &f}, func() bool { return false }, start.Add(50*time.Millisecond))
		} else {
			expired, err = w.WaitUntil(context.Background(), &e, func() bool { return false }, start.Add(50*time.Millisecond))
		}
		took := time.Since(start)
		if err != nil || !expired {
			t.Fatalf("any=%v: expired %v, err %v", any, expired, err)
		}
		// A loaded 2-core machine may be late; a waiter that slept its
		// re-check (10 s) is the bug this catches.
		if took < 50*time.Millisecond || took > 2*time.Second {
			t.Fatalf("any=%v: returned after %v, deadline 50ms", any, took)
		}
	}
	var ready atomic.Bool
	ready.Store(true)
	expired, err := Waiter{}.WaitUntil(context.Background(), &e, ready.Load, time.Now().Add(-time.Second))
	if err != nil || expired {
		t.Fatalf("cond held at once: expired %v, err %v", expired, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := w.WaitUntil(ctx, &e, func() bool { return false }, time.Now().Add(time.Hour)); err != context.Canceled {
		t.Fatalf("canceled ctx: %v", err)
	}
}

// TestWaiterFence: the Fence runs only in the check a parking waiter makes
// once counted as a sleeper and armed, and only when cond is false there:
// never while spinning, never when cond already holds. It then runs before
// a last check of cond, and a failed fence ends the wait as a spurious
// wake-up. Over several events (WaitAny) the same holds.
func TestWaiterFence(t *testing.T) {
	ctx := context.Background()
	var e, f Event
	var fences, sleepersAtFence atomic.Int32
	fence := func(evs ...*Event) func() bool {
		return func() bool {
			fences.Add(1)
			counted := false
			for _, ev := range evs {
				counted = counted || ev.Sleepers() != 0
			}
			if !counted {
				sleepersAtFence.Add(1) // not counted as a sleeper: wrong place
			}
			return true
		}
	}

	// Spinning to a cond that becomes true: no fence.
	var polls atomic.Int32
	w := Waiter{Strategy: SpinThenPark, Spin: time.Second, Fence: fence(&e)}
	if err := w.Wait(ctx, &e, func() bool { return polls.Add(1) > 1000 }); err != nil || fences.Load() != 0 {
		t.Fatalf("spinning: %v, %d fences, want none", err, fences.Load())
	}

	// Parking with cond true at the armed check: no fence.
	w = Waiter{Strategy: Park, Fence: fence(&e)}
	calls := 0
	if err := w.Wait(ctx, &e, func() bool { calls++; return calls > 1 }); err != nil || fences.Load() != 0 {
		t.Fatalf("cond true once armed: %v, %d fences, want none", err, fences.Load())
	}

	// Cond false once armed: the fence, then cond again, which holds.
	calls = 0
	if err := w.Wait(ctx, &e, func() bool { calls++; return calls > 2 }); err != nil || fences.Load() != 1 || calls != 3 {
		t.Fatalf("cond true after the fence: %v, %d fences, %d checks; want 1 fence, 3 checks", err, fences.Load(), calls)
	}

	// A failed fence ends the wait at once, without sleeping.
	w.Fence = func() bool { fences.Add(1); return false }
	w.Recheck = -1 // it would sleep until woken
	if err := w.Wait(ctx, &e, func() bool { return false }); err != nil || fences.Load() != 2 {
		t.Fatalf("failed fence: %v, %d fences; want nil and 2", err, fences.Load())
	}

	// Parked on two events: the fence with the waiter counted (on both
	// with futex_waitv; without it, parkEach's goroutines each count on
	// their own event), before each sleep.
	var ready atomic.Bool
	w = Waiter{Strategy: Park, Fence: fence(&e, &f)}
	done := make(chan error, 1)
	go func() { done <- w.WaitAny(ctx, []*Event{&e, &f}, ready.Load) }()
	for f.Sleepers() == 0 {
		time.Sleep(time.Millisecond) // polling an observable fact
	}
	ready.Store(true)
	f.Notify()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := fences.Load(); got < 3 {
		t.Fatalf("WaitAny: %d fences in all, want 3 (one per sleep)", got)
	}
	if n := sleepersAtFence.Load(); n != 0 {
		t.Fatalf("the fence ran %d times with the waiter not counted as a sleeper", n)
	}
}
