package shmkit_test

import (
	"bufio"
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

	"github.com/shmkit/shmkit"
	"github.com/shmkit/shmkit/internal/proctest"
)

// extraChildren are registered by other test files' init functions.
var extraChildren = map[string]func() int{}

func TestMain(m *testing.M) {
	for name, fn := range extraChildren {
		proctest.Register(name, fn)
	}
	proctest.Register("publisher", childPublisher)
	proctest.Register("subscriber", childSubscriber)
	proctest.Register("producer", childProducer)
	proctest.Register("consumer", childConsumer)
	proctest.Main(m)
}

func env(k string) string { return os.Getenv(k) }
func envInt(k string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(k)); err == nil {
		return v
	}
	return def
}

// payload fills b with the pattern of message seq of publisher slot.
func payload(b []byte, slot int, seq uint64) {
	x := byte(seq*131 + uint64(slot)*17)
	for i := range b {
		b[i] = x + byte(i*7)
	}
}

// msgSize is the size of message seq: variable, 0..max.
func msgSize(seq uint64, max int) int { return int(seq * 2654435761 % uint64(max+1)) }

func verify(b []byte, slot int, seq uint64, max int) error {
	if len(b) != msgSize(seq, max) {
		return fmt.Errorf("publisher %d message %d: %d bytes, want %d", slot, seq, len(b), msgSize(seq, max))
	}
	x := byte(seq*131 + uint64(slot)*17)
	for i := range b {
		if b[i] != x+byte(i*7) {
			return fmt.Errorf("publisher %d message %d: byte %d is %d, want %d", slot, seq, i, b[i], x+byte(i*7))
		}
	}
	return nil
}

// killHook SIGKILLs this process at the KILL_N-th passage through step
// KILL_AT (children only).
func killHook() {
	step, n := env("KILL_AT"), envInt("KILL_N", 1)
	if step == "" {
		return
	}
	seen := 0
	shmkit.SetHook(func(s string) {
		if s == step {
			if seen++; seen == n {
				_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			}
		}
	})
}

func childCtx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	_ = cancel // the child exits when done; its context dies with it
	return ctx
}

func fail(format string, a ...any) int {
	fmt.Fprintf(os.Stderr, format+"\n", a...)
	return 1
}

func childPublisher() int {
	killHook()
	ch, err := shmkit.Open(env("CH"))
	if err != nil {
		return fail("publisher: %v", err)
	}
	defer ch.Close()
	p, err := ch.Publisher()
	if err != nil {
		return fail("publisher: %v", err)
	}
	max := ch.Config().MaxMessage
	ctx := childCtx()
	count := envInt("COUNT", 1000)
	for i := uint64(1); i <= uint64(count); i++ {
		// The message's number is the log's (a publisher that takes a
		// slot over continues its numbering): loan the most, then size it
		// by the number it will carry.
		s, err := p.LoanContext(ctx, max)
		if err != nil {
			return fail("publisher loan %d: %v", i, err)
		}
		seq := s.Seq()
		if err := s.SetLen(msgSize(seq, max)); err != nil {
			return fail("publisher: %v", err)
		}
		payload(s.Bytes(), s.Publisher(), seq)
		if err := p.Publish(ctx, s); err != nil {
			return fail("publisher publish %d: %v", seq, err)
		}
	}
	if err := p.Close(); err != nil {
		return fail("publisher close: %v", err)
	}
	return 0
}

// childSubscriber receives until ErrPeerGone (or LEAVE_AFTER messages) and
// checks every byte and each publisher's order; with policy Block it also
// checks that no message is missing (from the first one it saw of each
// publisher when LATE is set, from 1 otherwise). It prints "got N".
func childSubscriber() int {
	killHook()
	ch, err := shmkit.Open(env("CH"))
	if err != nil {
		return fail("subscriber: %v", err)
	}
	defer ch.Close()
	s, err := ch.Subscriber()
	if err != nil {
		return fail("subscriber: %v", err)
	}
	max := ch.Config().MaxMessage
	late := env("LATE") != ""
	leave := envInt("LEAVE_AFTER", -1)
	last := map[int]uint64{}
	ctx := childCtx()
	got := 0
	for got != leave {
		smp, err := s.Receive(ctx)
		if errors.Is(err, shmkit.ErrPeerGone) {
			break
		}
		if err != nil {
			return fail("subscriber receive: %v", err)
		}
		from, seq := smp.Publisher(), smp.Seq()
		if err := verify(smp.Bytes(), from, seq, max); err != nil {
			return fail("subscriber: %v", err)
		}
		// Numbers are per publisher slot (from&0xff), continued by a
		// publisher that takes the slot over.
		from &= 0xff
		prev, seen := last[from]
		want := prev + 1
		if !seen && late {
			want = seq
		}
		if seq != want+smp.Missed() && ch.Config().Policy != shmkit.DropNewest && ch.Config().Policy != shmkit.DropOldest {
			return fail("subscriber: publisher %d: message %d after %d (missed %d)", from, seq, prev, smp.Missed())
		}
		if seq <= prev {
			return fail("subscriber: publisher %d: message %d after %d", from, seq, prev)
		}
		last[from] = seq
		if err := smp.Release(); err != nil {
			return fail("subscriber release: %v", err)
		}
		got++
	}
	fmt.Printf("got %d\n", got)
	return 0
}

func childProducer() int {
	killHook()
	ch, err := shmkit.Open(env("CH"))
	if err != nil {
		return fail("producer: %v", err)
	}
	defer ch.Close()
	p, err := ch.Producer()
	if err != nil {
		return fail("producer: %v", err)
	}
	ctx := childCtx()
	for seq := uint64(1); seq <= uint64(envInt("COUNT", 1000)); seq++ {
		s, err := p.LoanContext(ctx, 24)
		if err != nil {
			return fail("producer: %v", err)
		}
		m := fmt.Sprintf("%d:%d", s.Publisher(), seq)
		copy(s.Bytes(), m)
		if err := s.SetLen(len(m)); err != nil {
			return fail("producer: %v", err)
		}
		if err := p.Publish(ctx, s); err != nil {
			return fail("producer: %v", err)
		}
	}
	return 0
}

// childConsumer prints every message it receives, one a line.
func childConsumer() int {
	killHook()
	ch, err := shmkit.Open(env("CH"))
	if err != nil {
		return fail("consumer: %v", err)
	}
	defer ch.Close()
	c, err := ch.Consumer()
	if err != nil {
		return fail("consumer: %v", err)
	}
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	unbuffered := env("KILL_AT") != "" // what it printed must survive its SIGKILL
	ctx := childCtx()
	for {
		if unbuffered {
			w.Flush()
		}
		smp, err := c.Receive(ctx)
		if errors.Is(err, shmkit.ErrPeerGone) {
			return 0
		}
		if err != nil {
			return fail("consumer: %v", err)
		}
		fmt.Fprintf(w, "%s\n", smp.Bytes())
		if unbuffered {
			w.Flush()
		}
		if err := smp.Release(); err != nil {
			return fail("consumer: %v", err)
		}
	}
}

func start(t *testing.T, name string, envs ...string) (*exec.Cmd, *strings.Builder) {
	cmd := proctest.Command(t, name, envs...)
	out := &strings.Builder{}
	cmd.Stdout = out
	proctest.Start(t, cmd)
	return cmd, out
}

func waitOK(t *testing.T, cmd *exec.Cmd, out *strings.Builder) {
	t.Helper()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%v: %v (output %q)", cmd.Env[len(cmd.Env)-1], err, out.String())
	}
}

func gotN(t *testing.T, out *strings.Builder) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscanf(out.String(), "got %d", &n); err != nil {
		t.Fatalf("child output %q: %v", out.String(), err)
	}
	return n
}

// messages is the per-publisher count: small by default, SHMKIT_STRESS=1
// for the 1 M.
func messages(def int) int {
	if os.Getenv("SHMKIT_STRESS") != "" {
		return 1_000_000
	}
	return def
}

func TestProcPubSub1to3(t *testing.T) {
	name := chanName(t)
	ch, err := shmkit.Create(name, shmkit.Config{MaxMessage: 3000, RingDepth: 64})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	n := messages(20000)
	var subs []*exec.Cmd
	var outs []*strings.Builder
	for range 3 {
		c, o := start(t, "subscriber", "CH="+name)
		subs, outs = append(subs, c), append(outs, o)
	}
	waitFor(t, "3 subscribers", func() bool { return count(t, ch, "subscriber") == 3 })
	pub, po := start(t, "publisher", "CH="+name, fmt.Sprintf("COUNT=%d", n))
	waitOK(t, pub, po)
	for i, c := range subs {
		waitOK(t, c, outs[i])
		if got := gotN(t, outs[i]); got != n {
			t.Errorf("subscriber %d got %d messages, want %d", i, got, n)
		}
	}
	poolWhole(t, ch)
}

func TestProcPubSub2to2Order(t *testing.T) {
	name := chanName(t)
	ch, err := shmkit.Create(name, shmkit.Config{MaxMessage: 500, RingDepth: 32})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	n := messages(10000)
	var subs []*exec.Cmd
	var outs []*strings.Builder
	for range 2 {
		c, o := start(t, "subscriber", "CH="+name)
		subs, outs = append(subs, c), append(outs, o)
	}
	waitFor(t, "2 subscribers", func() bool { return count(t, ch, "subscriber") == 2 })
	// A handle of ours keeps "every publisher gone" from firing before
	// both have joined: a publisher of this process that leaves last.
	hold, err := ch.Publisher()
	if err != nil {
		t.Fatal(err)
	}
	var pubs []*exec.Cmd
	var pouts []*strings.Builder
	for range 2 {
		c, o := start(t, "publisher", "CH="+name, fmt.Sprintf("COUNT=%d", n))
		pubs, pouts = append(pubs, c), append(pouts, o)
	}
	for i, c := range pubs {
		waitOK(t, c, pouts[i])
	}
	hold.Close()
	for i, c := range subs {
		waitOK(t, c, outs[i])
		if got := gotN(t, outs[i]); got != 2*n {
			t.Errorf("subscriber %d got %d messages, want %d", i, got, 2*n)
		}
	}
	poolWhole(t, ch)
}

func TestProcJoinLeaveMidStream(t *testing.T) {
	name := chanName(t)
	ch, err := shmkit.Create(name, shmkit.Config{MaxMessage: 200, RingDepth: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	n := messages(20000)
	stay, so := start(t, "subscriber", "CH="+name)
	leaver, lo := start(t, "subscriber", "CH="+name, "LEAVE_AFTER=500")
	waitFor(t, "2 subscribers", func() bool { return count(t, ch, "subscriber") == 2 })
	pub, po := start(t, "publisher", "CH="+name, fmt.Sprintf("COUNT=%d", n))
	// The joiner starts once the publisher is under way.
	waitFor(t, "traffic", func() bool {
		st, _ := ch.Stats()
		for _, p := range st.Participants {
			if p.Role == "publisher" && p.Messages > 100 {
				return true
			}
		}
		return false
	})
	// A publisher held open until the joiner is in: one that joins after
	// every publisher left waits for the next (it never saw one leave).
	hold, err := ch.Publisher()
	if err != nil {
		t.Fatal(err)
	}
	joiner, jo := start(t, "subscriber", "CH="+name, "LATE=1")
	waitOK(t, leaver, lo)
	waitFor(t, "the joiner", func() bool { return count(t, ch, "subscriber") == 2 })
	hold.Close()
	waitOK(t, pub, po)
	waitOK(t, stay, so)
	waitOK(t, joiner, jo)
	if got := gotN(t, so); got != n {
		t.Errorf("subscriber present throughout got %d, want %d", got, n)
	}
	if got := gotN(t, lo); got != 500 {
		t.Errorf("leaver got %d, want 500", got)
	}
	t.Logf("late joiner got %d of %d (consecutive from its first)", gotN(t, jo), n)
	poolWhole(t, ch)
}

func TestProcWorkQueue2to3(t *testing.T) {
	name := chanName(t)
	ch, err := shmkit.Create(name, shmkit.Config{Pattern: shmkit.WorkQueue, MaxMessage: 64, RingDepth: 64})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	n := messages(10000)
	hold, err := ch.Producer() // keeps "every producer gone" off until both joined
	if err != nil {
		t.Fatal(err)
	}
	var cons []*exec.Cmd
	var outs []*strings.Builder
	for range 3 {
		c, o := start(t, "consumer", "CH="+name)
		cons, outs = append(cons, c), append(outs, o)
	}
	var prods []*exec.Cmd
	var pouts []*strings.Builder
	for range 2 {
		c, o := start(t, "producer", "CH="+name, fmt.Sprintf("COUNT=%d", n))
		prods, pouts = append(prods, c), append(pouts, o)
	}
	for i, c := range prods {
		waitOK(t, c, pouts[i])
	}
	hold.Close()
	seen := map[string]int{}
	for i, c := range cons {
		waitOK(t, c, outs[i])
		lines := strings.Fields(outs[i].String())
		t.Logf("consumer %d: %d messages", i, len(lines))
		for _, l := range lines {
			seen[l]++
		}
	}
	if len(seen) != 2*n {
		t.Errorf("%d distinct messages, want %d", len(seen), 2*n)
	}
	for m, k := range seen {
		if k != 1 {
			t.Errorf("message %s delivered %d times", m, k)
		}
	}
	poolWhole(t, ch)
}
