package ring

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shmkit/shmkit/internal/proctest"
)

func init() {
	proctest.Register("crash-produce", childCrashProduce)
	proctest.Register("crash-consume", childCrashConsume)
}

// Crash tests: a child process produces (or consumes) through the ring and
// is SIGKILLed at a named step inside a ring call (through killHook, which
// only tests set), or at a random moment; a fresh child attaches in its
// place and carries the traffic on to the end. The test side checks every
// message against the promises docs/ring.md makes per call: never a gap
// but the one message in flight, never more than that one twice, and no
// ErrCorrupt, stall or stranded sleeper.

// Shared words of a crash test (result words of the shared area).
const (
	crashProgress = 1 // producer: messages whose Enqueue returned; consumer: next expected
)

// crashRing is what the crash children need of either ring kind.
type crashProducer interface {
	Enqueue(context.Context, []byte) error
	EnqueueBatch(context.Context, [][]byte) (int, error)
	Close() error
}

type crashConsumer interface {
	Dequeue(context.Context, []byte) (int, error)
	TryDequeue([]byte) (int, bool, error)
}

// crashSides attaches mem as a ring of kind ("spsc" or "byte").
func crashSides(kind string, mem []byte) (func() crashProducer, func() crashConsumer, error) {
	switch kind {
	case "spsc":
		r, err := AttachSPSC(mem)
		if err != nil {
			return nil, nil, err
		}
		return func() crashProducer { return r.Producer() }, func() crashConsumer { return r.Consumer() }, nil
	case "byte":
		r, err := AttachByteRing(mem)
		if err != nil {
			return nil, nil, err
		}
		return func() crashProducer { return r.Producer() }, func() crashConsumer { return r.Consumer() }, nil
	}
	return nil, nil, fmt.Errorf("kind %q", kind)
}

// newCrashArea makes a small ring of kind in a shared area, so that the
// kills land with the ring full as well as empty.
func newCrashArea(t *testing.T, kind string) *sharedArea {
	switch kind {
	case "spsc":
		size, _ := SPSCSize(8, 16)
		a := newSharedArea(t, size)
		if _, err := NewSPSC(a.ring(), 8, 16); err != nil {
			t.Fatal(err)
		}
		return a
	default:
		size, _ := ByteRingSize(128)
		a := newSharedArea(t, size)
		if _, err := NewByteRing(a.ring(), 128); err != nil {
			t.Fatal(err)
		}
		return a
	}
}

// setKillHook makes this (child) process SIGKILL itself the at-th time it
// reaches step s.
func setKillHook(s step, at int) {
	hits := 0
	killHook = func(got step) {
		if got != s {
			return
		}
		if hits++; hits == at {
			_ = unix.Kill(unix.Getpid(), unix.SIGKILL)
			select {} // the signal is on its way
		}
	}
}

// crashPlan is one child's fate: killed at the at-th reach of step, killed
// after delay (random), or left to finish (step 0, delay 0).
type crashPlan struct {
	step  step
	at    int
	delay time.Duration
}

func (p crashPlan) String() string {
	switch {
	case p.step != 0:
		return fmt.Sprintf("step %d hit %d", p.step, p.at)
	case p.delay != 0:
		return fmt.Sprintf("random kill after %v", p.delay)
	}
	return "no kill"
}

// crashPlans is the sequence of children: a kill at each given step in
// turn, then random kills, then one that finishes.
func crashPlans(seed uint64, steps []step, random int) []crashPlan {
	rng := rand.New(rand.NewPCG(seed, seed))
	var plans []crashPlan
	for _, s := range steps {
		plans = append(plans, crashPlan{step: s, at: 1 + rng.IntN(200)})
	}
	for range random {
		plans = append(plans, crashPlan{delay: time.Duration(1+rng.IntN(3000)) * time.Microsecond})
	}
	return append(plans, crashPlan{})
}

// runCrashChild runs one child to its planned end and fails the test if it
// died otherwise (an error exit: the ring refused the replacement).
func runCrashChild(t *testing.T, a *sharedArea, name string, p crashPlan, env ...string) {
	t.Helper()
	env = append(env, fmt.Sprintf("RING_KILL_STEP=%d", p.step), fmt.Sprintf("RING_KILL_AT=%d", p.at))
	ready := a.word(wordReady).Load()
	cmd := a.start(t, name, env...)
	if p.delay != 0 {
		a.waitWord(t, wordReady, ready+1) // attached and under way
		// Not a synchronisation: the moment of a random kill.
		time.Sleep(p.delay)
		_ = cmd.Process.Signal(syscall.SIGKILL)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	switch {
	case err == nil:
		if p.step != 0 {
			t.Fatalf("%s child (%v) finished without reaching its kill step", name, p)
		}
	case errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL:
		if p.step == 0 && p.delay == 0 {
			t.Fatalf("%s child (%v) was killed", name, p)
		}
	default:
		t.Fatalf("%s child (%v): %v", name, p, err)
	}
}

// TestCrashProducer kills producers at each producer step, then at random,
// while this process consumes; each replacement attaches and resends from
// the last message whose Enqueue (EnqueueBatch) returned. The consumer must
// see every message in order and never an error; a message twice only when
// a producer died after publishing it and before recording that the call
// returned (docs/ring.md, "A killed participant").
//
// After each child dies the consumer drains the ring, so the test knows
// exactly what each child published; what it published beyond the
// progress it recorded is what its death costs: its successor resends it.
// Per kill that is, for single messages, exactly one after
// stepProducerPublished and stepProducerNotified, none after
// stepProducerWritten, at most one after a random kill; for batches (which
// publish in runs, as many messages as there is room for), the runs of the
// batch in flight that were published: at least one message after
// stepProducerPublished and stepProducerNotified, at most batch-1 after
// stepProducerWritten (a kill before the store of a later run costs the
// earlier runs), at most the batch after a random kill (one between
// EnqueueBatch's return and the progress store costs all of it). The
// duplicates the consumer counts must add up to these costs.
func TestCrashProducer(t *testing.T) {
	for _, kind := range []string{"spsc", "byte"} {
		t.Run(kind, func(t *testing.T) { testCrashProducer(t, kind, 1) })
		t.Run(kind+"/batch", func(t *testing.T) { testCrashProducer(t, kind, crashBatch) })
	}
}

// crashBatch is the EnqueueBatch size of the batch crash tests: a kill
// inside a batch must cost at most the batch's published runs (they are
// resent), and leave no half-published run behind.
const crashBatch = 5

// crashTally is what the consumer received while one producer child ran,
// the ring drained after the child's end.
type crashTally struct {
	got, dups uint64 // messages received; of them, resent ones
	closed    bool   // the ring was found closed and drained
	err       error
}

// crashCost checks what the death of a producer child (plan p) cost: the
// messages it published beyond the progress it recorded. See
// TestCrashProducer for the bounds.
func crashCost(p crashPlan, cost uint64, batch int) error {
	b := uint64(batch)
	lo, hi := uint64(0), b
	switch {
	case p.step == stepProducerWritten:
		hi = b - 1
	case p.step == stepProducerPublished, p.step == stepProducerNotified:
		lo = 1
	case p.step == 0 && p.delay == 0:
		hi = 0
	}
	if cost < lo || cost > hi {
		return fmt.Errorf("child (%v) published %d messages past its progress, want %d to %d", p, cost, lo, hi)
	}
	return nil
}

func testCrashProducer(t *testing.T, kind string, batch int) {
	a := newCrashArea(t, kind)
	_, consumer, err := crashSides(kind, a.ring())
	if err != nil {
		t.Fatal(err)
	}
	steps := []step{stepProducerWritten, stepProducerPublished, stepProducerNotified}
	plans := crashPlans(1, steps, crashRandom())
	n := uint64(2000 * len(plans))
	hang, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // hang detector
	defer cancel()
	// One round per child: the consumer takes messages until the round's
	// context ends (the child is dead by then), then drains the ring.
	rounds := make(chan context.Context)
	defer close(rounds)
	tallies := make(chan crashTally, 1)
	var next uint64 // the consumer's; read here after the last round
	go func() {
		c := consumer()
		buf := make([]byte, 16)
		for ctx := range rounds {
			var r crashTally
			take := func(k int) error {
				r.got++
				if seq := binary.LittleEndian.Uint64(buf[:8]); seq < next && next-seq <= uint64(batch) {
					r.dups++ // resent: published by a predecessor that died before recording it
					return checkSeq(buf[:k], seq)
				}
				if err := checkSeq(buf[:k], next); err != nil {
					return err
				}
				next++
				return nil
			}
			for r.err == nil {
				k, err := c.Dequeue(ctx, buf)
				if errors.Is(err, context.Canceled) && hang.Err() == nil {
					// The child is dead: take what it left.
					for r.err == nil {
						k, ok, err := c.TryDequeue(buf)
						if errors.Is(err, ErrClosed) {
							r.closed = true
						} else if err != nil {
							r.err = err
						}
						if !ok {
							break
						}
						r.err = take(k)
					}
					break
				}
				if errors.Is(err, ErrClosed) {
					r.closed = true
					break
				}
				if err != nil {
					r.err = err
					break
				}
				r.err = take(k)
			}
			tallies <- r
		}
	}()
	progress := a.count(crashProgress)
	var costs, dups uint64
	for _, p := range plans {
		before := progress.Load()
		ctx, stop := context.WithCancel(hang)
		rounds <- ctx
		runCrashChild(t, a, "crash-produce", p, "RING_KIND="+kind, fmt.Sprintf("RING_N=%d", n),
			fmt.Sprintf("RING_BATCH=%d", batch))
		stop()
		r := <-tallies
		if r.err != nil {
			t.Fatalf("consumer after child (%v), at message %d: %v", p, next, r.err)
		}
		recorded := progress.Load() - before
		if r.got < recorded {
			t.Fatalf("child (%v) recorded %d messages, the consumer received %d", p, recorded, r.got)
		}
		cost := r.got - recorded
		if cost != 0 || r.dups != 0 {
			t.Logf("child (%v): %d published past its progress; %d received twice in its round", p, cost, r.dups)
		}
		if err := crashCost(p, cost, batch); err != nil {
			t.Error(err)
		}
		// Only a child that finished closes the ring: the last one, or one
		// whose random kill came after its last message.
		if last := p.step == 0 && p.delay == 0; r.closed != last && (last || p.step != 0) {
			t.Fatalf("child (%v): consumer found the ring closed: %v", p, r.closed)
		}
		costs += cost
		dups += r.dups
	}
	if next != n {
		t.Fatalf("consumer received up to %d, want %d", next, n)
	}
	if dups != costs {
		t.Fatalf("%d messages delivered twice, the kills cost %d", dups, costs)
	}
	t.Logf("%d messages through %d producers, %d delivered twice", n, len(plans), dups)
}

func childCrashProduce() int {
	a, err := childArea()
	if err != nil {
		return childFail("%v", err)
	}
	producer, _, err := crashSides(os.Getenv("RING_KIND"), a.ring())
	if err != nil {
		return childFail("attach: %v", err)
	}
	if s := envInt("RING_KILL_STEP", 0); s != 0 {
		setKillHook(step(s), envInt("RING_KILL_AT", 1))
	}
	p := producer()
	a.word(wordReady).Add(1)
	n, batch := uint64(envInt("RING_N", 0)), uint64(envInt("RING_BATCH", 1))
	bufs := make([][]byte, batch)
	for i := range bufs {
		bufs[i] = make([]byte, 16)
	}
	ctx := context.Background()
	progress := a.count(crashProgress)
	for i := progress.Load(); i < n; {
		if batch == 1 {
			if err := p.Enqueue(ctx, seqMsg(bufs[0], i)); err != nil {
				return childFail("enqueue %d: %v", i, err)
			}
			i++
			progress.Store(i)
			continue
		}
		msgs := make([][]byte, min(batch, n-i))
		for j := range msgs {
			msgs[j] = seqMsg(bufs[j], i+uint64(j))
		}
		k, err := p.EnqueueBatch(ctx, msgs)
		if err != nil {
			return childFail("enqueue batch at %d: %v", i, err)
		}
		i += uint64(k)
		progress.Store(i)
	}
	if err := p.Close(); err != nil {
		return childFail("close: %v", err)
	}
	return 0
}

// TestCrashConsumer kills consumers at each consumer step, then at random,
// while this process produces; each replacement attaches and checks that
// it continues right after the last message its predecessor returned:
// with the same message when the predecessor died before handing the room
// back (stepConsumerCopied: not lost), with the one after it when it died
// after (stepConsumerReleased: the one message in flight lost).
func TestCrashConsumer(t *testing.T) {
	for _, kind := range []string{"spsc", "byte"} {
		t.Run(kind, func(t *testing.T) {
			a := newCrashArea(t, kind)
			producer, _, err := crashSides(kind, a.ring())
			if err != nil {
				t.Fatal(err)
			}
			steps := []step{stepConsumerCopied, stepConsumerReleased}
			plans := crashPlans(2, steps, crashRandom())
			n := uint64(2000 * len(plans))
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			errc := make(chan error, 1)
			go func() {
				p := producer()
				buf := make([]byte, 16)
				for i := range n {
					if err := p.Enqueue(ctx, seqMsg(buf, i)); err != nil {
						errc <- fmt.Errorf("enqueue %d: %w", i, err)
						return
					}
				}
				errc <- p.Close()
			}()
			// [lostMin, lostMax]: how many messages after the last one a
			// consumer recorded the dead ones may have taken with them.
			// A kill at stepConsumerCopied loses none, one at
			// stepConsumerReleased exactly one, a random kill at most one;
			// they add up until a consumer records progress again.
			progress := a.count(crashProgress)
			lostMin, lostMax := 0, 0
			for _, p := range plans {
				before := progress.Load()
				runCrashChild(t, a, "crash-consume", p, "RING_KIND="+kind,
					fmt.Sprintf("RING_LOST_MIN=%d", lostMin), fmt.Sprintf("RING_LOST_MAX=%d", lostMax))
				if progress.Load() != before {
					lostMin, lostMax = 0, 0
				}
				switch {
				case p.step == stepConsumerReleased:
					lostMin++
					lostMax++
				case p.delay != 0:
					lostMax++
				}
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			if got := a.count(crashProgress).Load(); got != n {
				t.Fatalf("consumers got up to %d, want %d", got, n)
			}
		})
	}
}

func childCrashConsume() int {
	a, err := childArea()
	if err != nil {
		return childFail("%v", err)
	}
	_, consumer, err := crashSides(os.Getenv("RING_KIND"), a.ring())
	if err != nil {
		return childFail("attach: %v", err)
	}
	if s := envInt("RING_KILL_STEP", 0); s != 0 {
		setKillHook(step(s), envInt("RING_KILL_AT", 1))
	}
	c := consumer()
	a.word(wordReady).Add(1)
	buf := make([]byte, 16)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // hang detector
	defer cancel()
	next := a.count(crashProgress)
	first := true
	for {
		k, err := c.Dequeue(ctx, buf)
		if errors.Is(err, ErrClosed) {
			return 0
		}
		if err != nil {
			return childFail("dequeue after %d: %v", next.Load(), err)
		}
		want := next.Load()
		if first {
			// The predecessors' last messages in flight: kept, or lost
			// as the test side says.
			lostMin, lostMax := envInt("RING_LOST_MIN", 0), envInt("RING_LOST_MAX", 0)
			want += uint64(lostMin)
			for lost := lostMin; lost < lostMax && checkSeq(buf[:k], want) != nil; lost++ {
				want++
			}
			first = false
		}
		if err := checkSeq(buf[:k], want); err != nil {
			return childFail("%v", err)
		}
		next.Store(want + 1)
	}
}

// crashRandom is the number of random kills per crash test: a few by
// default, more with RING_CRASH_RANDOM (which .ci/run may set).
func crashRandom() int { return envInt("RING_CRASH_RANDOM", 4) }
