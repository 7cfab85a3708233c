package shmkit_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shmkit/shmkit"
	"github.com/shmkit/shmkit/internal/proctest"
)

func init() {
	extraChildren["restarter"] = childRestarter
	extraChildren["holder"] = childHolder
	extraChildren["opener"] = childOpener
}

// restartCfg is the channel the restart test's processes open or create.
var restartCfg = shmkit.Config{MaxMessage: 128, RingDepth: 8, ChunksPerClass: 64}

// childRestarter is one process of a restarted service: it joins channel CH
// with OpenOrCreate as ROLE (publisher or subscriber), carries COUNT
// messages, then takes a loan (publisher) or keeps samples unreleased
// (subscriber), prints "done" and waits to be killed.
func childRestarter() int {
	ch, err := shmkit.OpenOrCreate(env("CH"), restartCfg)
	if err != nil {
		return fail("restarter: %v", err)
	}
	ctx := childCtx()
	n := envInt("COUNT", 100)
	switch env("ROLE") {
	case "publisher":
		p, err := ch.Publisher()
		if err != nil {
			return fail("restarter publisher: %v", err)
		}
		if err := ch.WaitFor(ctx, shmkit.RoleSubscriber, 1); err != nil {
			return fail("restarter wait: %v", err)
		}
		for seq := uint64(1); seq <= uint64(n); seq++ {
			b := make([]byte, msgSize(seq, restartCfg.MaxMessage))
			payload(b, p.ID()&0xff, seq)
			if err := p.Send(ctx, b); err != nil {
				return fail("restarter send %d: %v", seq, err)
			}
		}
		if _, err := p.Loan(64); err != nil { // held when the kill comes
			return fail("restarter loan: %v", err)
		}
	case "subscriber":
		s, err := ch.Subscriber()
		if err != nil {
			return fail("restarter subscriber: %v", err)
		}
		for seq := uint64(1); seq <= uint64(n); seq++ {
			smp, err := s.Receive(ctx)
			if err != nil {
				return fail("restarter receive %d: %v", seq, err)
			}
			if smp.Seq() != seq {
				return fail("restarter: message %d after %d", smp.Seq(), seq-1)
			}
			if err := verify(smp.Bytes(), smp.Publisher()&0xff, seq, restartCfg.MaxMessage); err != nil {
				return fail("restarter: %v", err)
			}
			if seq <= uint64(n)-3 { // the last three stay held
				if err := smp.Release(); err != nil {
					return fail("restarter release: %v", err)
				}
			}
		}
	}
	fmt.Println("done")
	select {} // until killed
}

// childHolder creates channel CH (KEEP=1: kept), joins it as a publisher
// and a subscriber, loans, sends and keeps a sample, prints "ready" and
// waits to be killed.
func childHolder() int {
	ch, err := shmkit.Create(env("CH"), shmkit.Config{MaxMessage: 64, RingDepth: 4, Keep: env("KEEP") != ""})
	if err != nil {
		return fail("holder: %v", err)
	}
	p, err := ch.Publisher()
	if err != nil {
		return fail("holder: %v", err)
	}
	s, err := ch.Subscriber()
	if err != nil {
		return fail("holder: %v", err)
	}
	if _, err := p.Loan(10); err != nil {
		return fail("holder: %v", err)
	}
	if err := p.Send(childCtx(), []byte("held")); err != nil {
		return fail("holder: %v", err)
	}
	if _, err := s.Receive(childCtx()); err != nil {
		return fail("holder: %v", err)
	}
	fmt.Println("ready")
	select {}
}

// childOpener opens channel CH N times as fast as it can while the test
// creates and closes it, and fails on any error other than ErrNotExist.
func childOpener() int {
	// Start when the test's loop runs: OpenContext waits for the name.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if ch, err := shmkit.OpenContext(ctx, env("CH")); err != nil {
		return fail("opener: first open: %v", err)
	} else if err := ch.Close(); err != nil {
		return fail("opener close: %v", err)
	}
	opened, absent := 1, 0
	for range envInt("N", 400) {
		ch, err := shmkit.Open(env("CH"))
		switch {
		case err == nil:
			opened++
			if err := ch.Close(); err != nil {
				return fail("opener close: %v", err)
			}
		case errors.Is(err, shmkit.ErrNotExist):
			absent++
		default:
			return fail("opener: %v", err)
		}
	}
	fmt.Printf("opened %d absent %d\n", opened, absent)
	return 0
}

// startLine starts child name and waits until it prints want.
func startLine(t *testing.T, want string, name string, envs ...string) *exec.Cmd {
	t.Helper()
	cmd := proctest.Command(t, name, envs...)
	cmd.Stdout = nil
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	proctest.Start(t, cmd)
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == want {
				line <- want
				break
			}
		}
		_, _ = io.Copy(io.Discard, out)
		close(line)
	}()
	select {
	case l, ok := <-line:
		if !ok || l != want {
			t.Fatalf("%s exited before it printed %q: %v", name, want, cmd.Wait())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not print %q in 30 s", name, want)
	}
	return cmd
}

func kill(cmd *exec.Cmd) {
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
}

// TestCreateTakesOverAbandoned: while the channel's creator lives, Create
// fails with ErrExist naming it and Remove refuses with ErrInUse; after it
// is SIGKILLed holding a loan and a sample, Create takes the name over with
// a fresh channel (no shmctl gc, no Remove). A kept channel is not taken
// over: OpenOrCreate joins it.
func TestCreateTakesOverAbandoned(t *testing.T) {
	name := chanName(t)
	cmd := startLine(t, "ready", "holder", "CH="+name)
	pid := strconv.Itoa(cmd.Process.Pid)
	_, err := shmkit.Create(name, shmkit.Config{})
	if !errors.Is(err, shmkit.ErrExist) || !strings.Contains(err.Error(), pid) {
		t.Fatalf("Create of a live channel: %v, want ErrExist naming pid %s", err, pid)
	}
	if err := shmkit.Remove(name); !errors.Is(err, shmkit.ErrInUse) || !strings.Contains(err.Error(), pid) {
		t.Fatalf("Remove of a live channel: %v, want ErrInUse naming pid %s", err, pid)
	}
	kill(cmd)
	ch, err := shmkit.Create(name, shmkit.Config{MaxMessage: 32})
	if err != nil {
		t.Fatalf("Create after every participant died: %v", err)
	}
	if got := ch.Config().MaxMessage; got != 32 {
		t.Fatalf("took over the dead channel's configuration (MaxMessage %d), not a fresh one", got)
	}
	st, err := ch.Stats()
	if err != nil || len(st.Participants) != 1 || st.Pool.InUse != 0 {
		t.Fatalf("fresh channel: %+v, %v", st, err)
	}
	if err := shmkit.Remove(name); !errors.Is(err, shmkit.ErrInUse) {
		t.Fatalf("Remove of our own live channel: %v, want ErrInUse", err)
	}
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	if err := shmkit.Remove(name); !errors.Is(err, shmkit.ErrNotExist) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Remove after the last left: %v, want ErrNotExist", err)
	}

	// A kept channel whose processes died is joined, not replaced.
	kept := chanName(t)
	cmd = startLine(t, "ready", "holder", "CH="+kept, "KEEP=1")
	kill(cmd)
	if _, err := shmkit.Create(kept, shmkit.Config{}); !errors.Is(err, shmkit.ErrExist) {
		t.Fatalf("Create over a kept channel: %v, want ErrExist", err)
	}
	ch, err = shmkit.OpenOrCreate(kept, shmkit.Config{MaxMessage: 64})
	if err != nil {
		t.Fatal(err)
	}
	ch.ScanForTest()
	poolWhole(t, ch)
	ch.Close()
	if err := shmkit.Remove(kept); err != nil {
		t.Fatalf("Remove of a kept channel nobody holds: %v", err)
	}
}

// TestRestartAfterKillAll kills every process of a two-process service
// (publisher holding a loan, subscriber holding samples) and restarts both,
// 50 times in a row: each time they meet on one channel with OpenOrCreate,
// whoever starts first, and carry 100 messages in order, with no shmctl and
// no Remove.
func TestRestartAfterKillAll(t *testing.T) {
	name := chanName(t)
	rounds := 50
	if testing.Short() {
		rounds = 10
	}
	for r := range rounds {
		var wg sync.WaitGroup
		cmds := make([]*exec.Cmd, 2)
		for i, role := range []string{"subscriber", "publisher"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cmds[i] = startLine(t, "done", "restarter", "CH="+name, "ROLE="+role, "COUNT=100")
			}()
		}
		wg.Wait()
		if t.Failed() {
			t.Fatalf("round %d failed", r)
		}
		for _, c := range cmds {
			kill(c)
		}
	}
	// The last corpse: taken over by a final OpenOrCreate, then removed
	// when it leaves.
	ch, err := shmkit.OpenOrCreate(name, restartCfg)
	if err != nil {
		t.Fatal(err)
	}
	poolWhole(t, ch)
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/dev/shm/shmkit." + name); !os.IsNotExist(err) {
		t.Fatalf("channel left behind: %v", err)
	}
}

// TestOpenAllHandleSlotsDead: every Channel-handle slot is held by a
// SIGKILLed process; Open must clean them and join, not remove the channel
// it joins (it did, with the joiner's own pid, once MaxProcesses was 4).
func TestOpenAllHandleSlotsDead(t *testing.T) {
	name := chanName(t)
	cfg := shmkit.Config{MaxMessage: 64, RingDepth: 4, MaxProcesses: 4}
	ch, err := shmkit.Create(name, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var cmds []*exec.Cmd
	for range 3 {
		cmds = append(cmds, startLine(t, "ready", "holdopen", "CH="+name))
	}
	ch.Close() // three dead-to-be hold the channel, and then a fourth
	cmds = append(cmds, startLine(t, "ready", "holdopen", "CH="+name))
	for _, c := range cmds {
		kill(c)
	}
	ch, err = shmkit.Open(name)
	if err != nil {
		t.Fatalf("Open with every handle slot held by the dead: %v", err)
	}
	defer ch.Close()
	if _, err := os.Stat("/dev/shm/shmkit." + name); err != nil {
		t.Fatalf("the joiner removed the channel it joined: %v", err)
	}
	t.Cleanup(func() { _ = shmkit.Remove(name, shmkit.WithForce()) })
}

func init() {
	extraChildren["holdopen"] = func() int {
		ch, err := shmkit.Open(env("CH"))
		if err != nil {
			return fail("holdopen: %v", err)
		}
		_ = ch
		fmt.Println("ready")
		select {}
	}
}

// TestOpenRacingCreate: a process opens a channel 400 times while this one
// creates and closes it in a loop; each Open joins or reports ErrNotExist,
// never segment.ErrNotReady or "not a channel".
func TestOpenRacingCreate(t *testing.T) {
	name := chanName(t)
	cmd := proctest.Command(t, "opener", "CH="+name, "N=400")
	out := &strings.Builder{}
	cmd.Stdout = out
	proctest.Start(t, cmd)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	cycles := 0
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("opener: %v", err)
			}
			t.Logf("%d create/close cycles; opener: %s", cycles, strings.TrimSpace(out.String()))
			return
		default:
		}
		ch, err := shmkit.Create(name, shmkit.Config{MaxMessage: 64, RingDepth: 4})
		if err != nil {
			if errors.Is(err, shmkit.ErrExist) {
				continue // the opener still holds the last one
			}
			t.Fatal(err)
		}
		cycles++
		time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond) // vary how long it exists
		ch.Close()
	}
}

// TestWaitFor: WaitFor parks until the subscribers it waits for have
// joined (no polling), returns ctx.Err() when its context ends and
// ErrClosed when the channel closes, and refuses a role it cannot wait for.
func TestWaitFor(t *testing.T) {
	name := chanName(t)
	ch, err := shmkit.Create(name, shmkit.Config{MaxMessage: 64, RingDepth: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	ctx := ctxT(t)
	got := make(chan error, 1)
	go func() { got <- ch.WaitFor(ctx, shmkit.RoleSubscriber, 2) }()
	waitFor(t, "WaitFor to park", func() bool { return ch.JoinedSleepersForTest() > 0 })
	var subs []*exec.Cmd
	for range 2 {
		subs = append(subs, startLine(t, "ready", "subready", "CH="+name))
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("WaitFor did not return after two subscribers joined")
	}
	if n := count(t, ch, shmkit.RoleSubscriber); n != 2 {
		t.Fatalf("%d subscribers after WaitFor", n)
	}
	for _, c := range subs {
		kill(c)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := ch.WaitFor(short, shmkit.RoleProducer, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitFor past its deadline: %v", err)
	}
	if err := ch.WaitFor(ctx, shmkit.Role("reader"), 1); !errors.Is(err, shmkit.ErrConfig) {
		t.Fatalf("WaitFor of an unknown role: %v", err)
	}
	go func() { got <- ch.WaitFor(ctx, shmkit.RolePublisher, 1) }()
	waitFor(t, "WaitFor to park", func() bool { return ch.JoinedSleepersForTest() > 0 })
	ch.Close()
	if err := <-got; !errors.Is(err, shmkit.ErrClosed) || !errors.Is(err, os.ErrClosed) {
		t.Fatalf("WaitFor across Close: %v, want ErrClosed", err)
	}
}

func init() {
	extraChildren["subready"] = func() int {
		ch, err := shmkit.Open(env("CH"))
		if err != nil {
			return fail("subready: %v", err)
		}
		if _, err := ch.Subscriber(); err != nil {
			return fail("subready: %v", err)
		}
		fmt.Println("ready")
		select {}
	}
}
