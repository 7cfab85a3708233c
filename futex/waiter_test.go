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
