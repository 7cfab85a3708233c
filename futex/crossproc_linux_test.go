package futex

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/proctest"
)

// startChild runs the registered child with the shared page as fd 3.
func startChild(tb testing.TB, s *shared, name string, env ...string) *exec.Cmd {
	tb.Helper()
	cmd := proctest.Command(tb, name, env...)
	cmd.ExtraFiles = []*os.File{s.file}
	proctest.Start(tb, cmd)
	return cmd
}

func envStrategy() Waiter {
	s, err := ParseStrategy(os.Getenv("FUTEX_TEST_STRATEGY"))
	if err != nil {
		s = SpinThenPark
	}
	return Waiter{Strategy: s}
}

// childEcho answers every odd turn with the next even one until stop is set.
func childEcho() int {
	s, err := childShared()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	w := envStrategy()
	turn, stop := s.u32(offTurn), s.u32(offStop)
	evA, evB := s.event(offEvA), s.event(offEvB)
	s.u32(offReady).Store(1)
	evA.Notify()
	for next := uint32(1); ; next += 2 {
		want := next
		err := w.Wait(context.Background(), evB, func() bool { return turn.Load() == want || stop.Load() != 0 })
		if err != nil {
			fmt.Fprintln(os.Stderr, "echo wait:", err)
			return 1
		}
		if stop.Load() != 0 {
			return 0
		}
		turn.Store(want + 1)
		evA.Notify()
	}
}

// pingPong runs n round trips against a running echo child.
func pingPong(ctx context.Context, s *shared, w Waiter, start uint32, n int) (uint32, error) {
	turn := s.u32(offTurn)
	evA, evB := s.event(offEvA), s.event(offEvB)
	t := start
	for i := 0; i < n; i++ {
		turn.Store(t + 1)
		evB.Notify()
		want := t + 2
		if err := w.Wait(ctx, evA, func() bool { return turn.Load() == want }); err != nil {
			return t, fmt.Errorf("round trip %d: %w", i, err)
		}
		t = want
	}
	return t, nil
}

func waitReady(tb testing.TB, s *shared) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ready := s.u32(offReady)
	if err := (Waiter{}).Wait(ctx, s.event(offEvA), func() bool { return ready.Load() == 1 }); err != nil {
		tb.Fatalf("child never became ready: %v", err)
	}
}

func stopChild(tb testing.TB, s *shared, cmd *exec.Cmd) {
	tb.Helper()
	s.u32(offStop).Store(1)
	s.event(offEvB).Notify()
	if err := cmd.Wait(); err != nil {
		tb.Fatalf("child: %v", err)
	}
}

func TestCrossProcessPingPong(t *testing.T) {
	for _, st := range []Strategy{SpinThenPark, Park, Yield, BusySpin} {
		t.Run(st.String(), func(t *testing.T) {
			s := newShared(t)
			cmd := startChild(t, s, "echo", "FUTEX_TEST_STRATEGY="+st.String())
			waitReady(t, s)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			n := 2000
			if st == BusySpin || st == Yield {
				n = 500 // two spinners on two shared cores are slow on a loaded machine
			}
			last, err := pingPong(ctx, s, Waiter{Strategy: st}, 0, n)
			if err != nil {
				t.Fatal(err)
			}
			if last != uint32(2*n) {
				t.Fatalf("turn = %d, want %d", last, 2*n)
			}
			stopChild(t, s, cmd)
		})
	}
}

// handoffs is the number of hand-offs in the lost-wake-up stress test.
const handoffs = 100_000

// randomDelay waits 0, a few µs of spinning, or a short sleep, so that the
// other side is sometimes spinning, sometimes about to park and sometimes
// parked when the notification comes.
func randomDelay(r *rand.Rand) {
	switch x := r.IntN(100); {
	case x < 60:
	case x < 97:
		end := time.Now().Add(time.Duration(r.IntN(15_000)) * time.Nanosecond)
		for time.Now().Before(end) {
		}
	default:
		time.Sleep(time.Duration(20+r.IntN(80)) * time.Microsecond)
	}
}

// handoffWaiter spins briefly, so that random delays decide whether it parks.
var handoffWaiter = Waiter{Strategy: SpinThenPark, Spin: 2 * time.Microsecond}

// childHandoff is the producing side of the lost-wake-up stress test.
func childHandoff() int {
	s, err := childShared()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	n, _ := strconv.Atoi(os.Getenv("FUTEX_TEST_N"))
	r := rand.New(rand.NewPCG(uint64(os.Getpid()), 1))
	turn, ack := s.u32(offTurn), s.u32(offAck)
	evA, evB := s.event(offEvA), s.event(offEvB)
	for i := uint32(1); i <= uint32(n); i++ {
		randomDelay(r)
		turn.Store(i)
		evA.Notify()
		want := i
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err := handoffWaiter.Wait(ctx, evB, func() bool { return ack.Load() == want })
		cancel()
		if err != nil {
			fmt.Fprintf(os.Stderr, "hand-off %d: ack never came (lost wake-up?): %v\n", i, err)
			return 1
		}
	}
	return 0
}

// TestLostWakeup hands a token back and forth 100k times between two
// processes with random delays on both sides. A lost wake-up shows as a
// wait that runs into its 20 s deadline.
func TestLostWakeup(t *testing.T) {
	n := handoffs
	if testing.Short() {
		n = 10_000
	}
	s := newShared(t)
	cmd := startChild(t, s, "handoff", "FUTEX_TEST_N="+strconv.Itoa(n))
	r := rand.New(rand.NewPCG(uint64(os.Getpid()), 2))
	turn, ack := s.u32(offTurn), s.u32(offAck)
	evA, evB := s.event(offEvA), s.event(offEvB)
	start := time.Now()
	for i := uint32(1); i <= uint32(n); i++ {
		want := i
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err := handoffWaiter.Wait(ctx, evA, func() bool { return turn.Load() == want })
		cancel()
		if err != nil {
			t.Fatalf("hand-off %d: token never came (lost wake-up?): %v", i, err)
		}
		randomDelay(r)
		ack.Store(i)
		evB.Notify()
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	t.Logf("%d hand-offs in %v", n, time.Since(start))
	if evA.Sleepers() != 0 || evB.Sleepers() != 0 {
		t.Fatalf("sleepers left counted: %d, %d", evA.Sleepers(), evB.Sleepers())
	}
}

// childSleeper blocks in a bare futex.Wait until the turn word changes.
func childSleeper() int {
	s, err := childShared()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	turn := s.u32(offTurn)
	s.u32(offReady).Store(1)
	s.event(offEvA).Notify()
	deadline := time.Now().Add(30 * time.Second)
	for turn.Load() == 0 {
		if err := Wait(turn, 0, time.Until(deadline)); err != nil {
			fmt.Fprintln(os.Stderr, "sleeper:", err)
			return 1
		}
	}
	s.u32(offAck).Store(turn.Load())
	return 0
}

// TestWakeAcrossProcesses checks that a Wake in one process reaches a
// thread asleep in Wait in another (the futex is not private).
func TestWakeAcrossProcesses(t *testing.T) {
	s := newShared(t)
	cmd := startChild(t, s, "sleeper")
	waitReady(t, s)
	time.Sleep(20 * time.Millisecond) // let it reach the kernel; not required for correctness
	turn := s.u32(offTurn)
	turn.Store(7)
	woken, err := Wake(turn, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	if got := s.u32(offAck).Load(); got != 7 {
		t.Fatalf("child saw %d, want 7", got)
	}
	t.Logf("Wake woke %d sleeper(s)", woken)
}
