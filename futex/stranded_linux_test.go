package futex

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/proctest"
)

func init() {
	proctest.Register("dying-notifier", childDyingNotifier)
	proctest.Register("recheck-parker", childRecheckParker)
}

// childDyingNotifier makes the condition true and calls Notify, which kills
// this process between disarming seq and the wake system call.
func childDyingNotifier() int {
	s, err := childShared()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	notifyHook = func() { _ = syscall.Kill(os.Getpid(), syscall.SIGKILL) }
	s.u32(offTurn).Store(1)
	if !s.event(offEvB).Notify() {
		fmt.Fprintln(os.Stderr, "Notify found nobody armed")
		return 3
	}
	return 2 // not reached: the hook kills us
}

// childRecheckParker parks (Park strategy, the given Recheck) until turn is
// 1, then reports how long it slept in offAck (milliseconds).
func childRecheckParker() int {
	s, err := childShared()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	recheck, err := time.ParseDuration(os.Getenv("FUTEX_TEST_RECHECK"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// A context without a deadline, ended from outside after 10 s: its
	// cancellation wakes the parker even when no Notify will, and the
	// parker then reports that it was stranded.
	ctx, cancel := context.WithCancel(context.Background())
	defer time.AfterFunc(10*time.Second, cancel).Stop()
	w := Waiter{Strategy: Park, Recheck: recheck}
	turn := s.u32(offTurn)
	if err := w.Wait(ctx, s.event(offEvB), func() bool { return turn.Load() == 1 }); err != nil {
		fmt.Fprintln(os.Stderr, "parker:", err)
		return 4
	}
	if ctx.Err() != nil {
		fmt.Fprintln(os.Stderr, "parker: stranded until its context ended")
		return 4
	}
	return 0
}

// TestNotifierKilledBeforeWake kills a notifier inside Notify after it
// disarmed the Event and before its wake system call. The parked waiter's
// condition is then true but nobody will ever wake it, and every later
// Notify sees seq disarmed and makes no system call: only the waiter's own
// bounded re-check ends the sleep. Without it the parker sleeps until its
// 10 s context ends and exits 4.
func TestNotifierKilledBeforeWake(t *testing.T) {
	s := newShared(t)
	const recheck = 50 * time.Millisecond
	parker := startChild(t, s, "recheck-parker", "FUTEX_TEST_RECHECK="+recheck.String())
	ev := s.event(offEvB)
	deadline := time.Now().Add(20 * time.Second)
	for ev.Sleepers() == 0 || ev.seq.Load()&1 == 0 { // parked and armed
		if time.Now().After(deadline) {
			t.Fatal("parker never parked")
		}
		time.Sleep(time.Millisecond) // polling an observable fact
	}
	killer := startChild(t, s, "dying-notifier")
	err := killer.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("notifier: %v, want death by SIGKILL", err)
	}
	if ev.seq.Load()&1 != 0 {
		t.Fatal("the dead notifier did not disarm seq")
	}
	if ev.Notify() {
		t.Fatal("a later Notify made a system call although seq is disarmed")
	}
	killed := time.Now()
	if err := parker.Wait(); err != nil {
		t.Fatalf("parker: %v (stranded by the dead notifier)", err)
	}
	t.Logf("parker returned %v after the notifier died (recheck %v)", time.Since(killed).Round(time.Millisecond), recheck)
}

// cpuTime returns the CPU time pid has run, from /proc/PID/schedstat (the
// scheduler's own nanosecond count; the tick counts of /proc/PID/stat are
// sampled and charge a whole 10 ms tick to a process that happens to run
// at its edge, which made this test flaky on a loaded machine).
func cpuTime(t *testing.T, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/schedstat", pid))
	if err != nil {
		t.Skipf("no schedstat: %v", err)
	}
	f := strings.Fields(string(b))
	if len(f) < 1 {
		t.Fatalf("/proc/%d/schedstat: %q", pid, b)
	}
	ns, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return time.Duration(ns)
}

// TestIdleParkerCPU measures what the bounded re-check costs an idle
// waiter: parked for a second at DefaultRecheck, it wakes ten times. It
// must stay at (almost) no CPU: at most 10 ms in the second (1 %), where a
// spinning waiter would burn the whole second.
func TestIdleParkerCPU(t *testing.T) {
	if os.Getenv(proctest.EnvExecWrapper) != "" {
		t.Skip("under an emulator the CPU ticks measure the emulator")
	}
	s := newShared(t)
	parker := startChild(t, s, "recheck-parker", "FUTEX_TEST_RECHECK="+DefaultRecheck.String())
	ev := s.event(offEvB)
	deadline := time.Now().Add(20 * time.Second)
	for ev.Sleepers() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("parker never parked")
		}
		time.Sleep(time.Millisecond)
	}
	before := cpuTime(t, parker.Process.Pid)
	time.Sleep(time.Second) // the measurement window, not a synchronisation
	used := cpuTime(t, parker.Process.Pid) - before
	s.u32(offTurn).Store(1)
	ev.Notify()
	if err := parker.Wait(); err != nil {
		t.Fatal(err)
	}
	t.Logf("idle parker (recheck %v) used %v of CPU in 1 s", DefaultRecheck, used)
	if used > 10*time.Millisecond {
		t.Fatalf("idle parker used %v of CPU in a second", used)
	}
}
