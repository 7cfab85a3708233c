package futex

import (
	"context"
	"testing"

	"golang.org/x/sys/unix"
)

// TestCancelThenUnmap unmaps an Event's memory as soon as a cancelled Wait
// returns. The cancellation's wake-up (context.AfterFunc) runs on another
// goroutine; if Wait returned before it finished, it would touch unmapped
// memory and the test binary would die with SIGSEGV.
func TestCancelThenUnmap(t *testing.T) {
	n := 2000
	if testing.Short() {
		n = 200
	}
	for i := 0; i < n; i++ {
		mem, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_ANONYMOUS)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := EventAt(mem)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- Waiter{Strategy: Park}.Wait(ctx, ev, func() bool { return false })
		}()
		if i%2 == 0 {
			for ev.Sleepers() == 0 { // cancel while parked half of the time
			}
		}
		cancel()
		if err := <-done; err != context.Canceled {
			t.Fatalf("round %d: Wait = %v, want context.Canceled", i, err)
		}
		if err := unix.Munmap(mem); err != nil {
			t.Fatal(err)
		}
	}
}
