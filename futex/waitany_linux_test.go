package futex

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/proctest"
)

func init() {
	proctest.Register("any-notifier", childAnyNotifier)
}

// Offsets of WaitAny's test: four Events and their flags, one line each.
const (
	offAnyEv   = 1024 // 4 Events, 64 bytes apart
	offAnyFlag = 2048 // 4 flags, 64 bytes apart
)

// childAnyNotifier sets flag i (FUTEX_TEST_ANY) and notifies Event i, once
// the parent is parked on all of them.
func childAnyNotifier() int {
	s, err := childShared()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	i, _ := strconv.Atoi(os.Getenv("FUTEX_TEST_ANY"))
	ev := s.event(offAnyEv + 64*i)
	deadline := time.Now().Add(20 * time.Second)
	for ev.Sleepers() == 0 { // the parent counts itself on every Event
		if time.Now().After(deadline) {
			fmt.Fprintln(os.Stderr, "parent never parked")
			return 2
		}
		time.Sleep(100 * time.Microsecond)
	}
	s.u32(offAnyFlag + 64*i).Store(1)
	ev.Notify()
	return 0
}

// TestWaitAnyCrossProcess parks one goroutine on four Events at once and
// has another process notify each in turn. Recheck -1: only the wake-up
// can end the wait, so a lost one hangs and the 20 s context fails the
// test. It runs with futex_waitv and with the goroutine-per-event
// fallback.
func TestWaitAnyCrossProcess(t *testing.T) {
	for _, fallback := range []bool{false, true} {
		t.Run(fmt.Sprintf("fallback=%v", fallback), func(t *testing.T) {
			if fallback {
				old := noWaitv.Load()
				noWaitv.Store(true)
				defer noWaitv.Store(old)
			} else if noWaitv.Load() {
				t.Skip("kernel has no futex_waitv")
			}
			s := newShared(t)
			evs := make([]*Event, 4)
			for i := range evs {
				evs[i] = s.event(offAnyEv + 64*i)
			}
			for round := 0; round < 8; round++ {
				i := round % 4
				flag := s.u32(offAnyFlag + 64*i)
				child := startChild(t, s, "any-notifier", "FUTEX_TEST_ANY="+strconv.Itoa(i))
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				err := Waiter{Strategy: Park, Recheck: -1}.WaitAny(ctx, evs, func() bool { return flag.Load() == 1 })
				cancel()
				if err != nil {
					t.Fatalf("round %d (event %d): %v", round, i, err)
				}
				if err := child.Wait(); err != nil {
					t.Fatalf("round %d: child: %v", round, err)
				}
				flag.Store(0)
				for j, e := range evs {
					if n := e.Sleepers(); n != 0 {
						t.Fatalf("round %d: event %d still counts %d sleepers", round, j, n)
					}
				}
			}
		})
	}
}

// TestWaitAnyCancel: a cancelled WaitAny returns ctx's error promptly and
// leaves no sleeper counted.
func TestWaitAnyCancel(t *testing.T) {
	s := newShared(t)
	evs := []*Event{s.event(offAnyEv), s.event(offAnyEv + 64)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Waiter{Strategy: Park, Recheck: -1}.WaitAny(ctx, evs, func() bool { return false }) }()
	for evs[0].Sleepers() == 0 || evs[1].Sleepers() == 0 {
		time.Sleep(100 * time.Microsecond)
	}
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatalf("WaitAny = %v, want context.Canceled", err)
	}
	if evs[0].Sleepers()+evs[1].Sleepers() != 0 {
		t.Fatal("sleepers left counted")
	}
	// A deadline ends it too.
	dctx, dcancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer dcancel()
	if err := (Waiter{Strategy: Park, Recheck: -1}).WaitAny(dctx, evs, func() bool { return false }); err != context.DeadlineExceeded {
		t.Fatalf("WaitAny with a deadline = %v", err)
	}
}
