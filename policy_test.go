package shmkit_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/shmkit/shmkit"
)

// TestDropPolicies publishes 100 messages past a subscriber that receives
// nothing and another that keeps up, with a publisher log that holds far
// fewer: the publisher never waits (Loan and Publish, no context to wait on;
// a wait would not return at once: it is never needed), and every subscriber's count is exact
// (received + missed = published, in order). Under DropOldest the live
// subscriber gets everything and the stalled one the newest with the rest
// counted missed; under DropNewest the stalled one pins the log, so the
// newest are dropped for both (counted by each as missed at its next
// message, and by the publisher as drops).
func TestDropPolicies(t *testing.T) {
	const depth, n = 4, 100
	for _, pol := range []shmkit.Policy{shmkit.DropNewest, shmkit.DropOldest} {
		t.Run(pol.String(), func(t *testing.T) {
			ch, err := shmkit.Create(chanName(t), shmkit.Config{MaxMessage: 64, RingDepth: depth, Policy: pol})
			if err != nil {
				t.Fatal(err)
			}
			defer ch.Close()
			stalled, err := ch.Subscriber()
			if err != nil {
				t.Fatal(err)
			}
			live, err := ch.Subscriber()
			if err != nil {
				t.Fatal(err)
			}
			pub, err := ch.Publisher()
			if err != nil {
				t.Fatal(err)
			}
			done := ctxT(t)
			var liveGot, liveMissed, last uint64
			for seq := uint64(1); seq <= n; seq++ {
				s, err := pub.Loan(40)
				if err != nil {
					t.Fatal(err)
				}
				if err := pub.Publish(done, s); err != nil {
					t.Fatalf("publish %d: %v", seq, err)
				}
				smp, err := live.TryReceive()
				if errors.Is(err, shmkit.ErrWouldBlock) && pol == shmkit.DropNewest {
					continue // dropped for everyone
				}
				if err != nil {
					t.Fatal(err)
				}
				if smp.Seq() != last+1+smp.Missed() || (pol == shmkit.DropOldest && smp.Missed() != 0) {
					t.Fatalf("live subscriber: message %d missed %d after %d", smp.Seq(), smp.Missed(), last)
				}
				last = smp.Seq()
				liveGot++
				liveMissed += smp.Missed()
				smp.Release()
			}
			var got, missed, prev uint64
			for {
				smp, err := stalled.TryReceive()
				if errors.Is(err, shmkit.ErrWouldBlock) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if smp.Seq() != prev+1+smp.Missed() {
					t.Fatalf("stalled subscriber: message %d missed %d after %d", smp.Seq(), smp.Missed(), prev)
				}
				prev = smp.Seq()
				got++
				missed += smp.Missed()
				smp.Release()
			}
			st, err := ch.Stats()
			if err != nil {
				t.Fatal(err)
			}
			var drops uint64
			for _, p := range st.Participants {
				if p.Role == shmkit.RolePublisher {
					drops = p.Drops
				}
			}
			switch pol {
			case shmkit.DropOldest:
				if liveGot != n || got+missed != n || missed == 0 || prev != n || drops != 0 {
					t.Errorf("live got %d; stalled got %d + missed %d (last %d), want %d; drops %d", liveGot, got, missed, prev, n, drops)
				}
			case shmkit.DropNewest:
				// The stalled subscriber got what fitted in the log; the
				// drops after its last message are never reported to it
				// (no later message), the live one saw the same drops.
				if got == 0 || missed != 0 || drops == 0 || got+drops != n || liveGot != got {
					t.Errorf("stalled got %d missed %d, live got %d missed %d, publisher drops %d of %d", got, missed, liveGot, liveMissed, drops, n)
				}
			}
			for _, p := range st.Participants {
				if p.Role == shmkit.RoleSubscriber && p.Slot == 0 && p.Missed != missed {
					t.Errorf("stalled subscriber's shared missed %d, want %d", p.Missed, missed)
				}
			}
			poolWhole(t, ch)
		})
	}
}

// fill sends 1-byte messages with a short deadline until one cannot get
// into the log (a subscriber that reads nothing pins it): it returns how
// many got in.
func fill(t *testing.T, pub *shmkit.Publisher) int {
	t.Helper()
	for n := 0; ; n++ {
		short, cancel := context.WithTimeout(ctxT(t), 20*time.Millisecond)
		err := pub.Send(short, []byte("x"))
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			return n
		}
		if err != nil || n > 1<<20 {
			t.Fatalf("fill: %v after %d", err, n)
		}
	}
}

// TestBlockHonoursContext: with policy Block a publisher waits for room in
// its log until its context ends; that message is not published, and the
// subscriber that pinned the log gets exactly what got in, then nothing.
func TestBlockHonoursContext(t *testing.T) {
	ch, err := shmkit.Create(chanName(t), shmkit.Config{MaxMessage: 64, RingDepth: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	sub, _ := ch.Subscriber()
	pub, _ := ch.Publisher()
	n := fill(t, pub)
	if n == 0 {
		t.Fatal("nothing got in")
	}
	for i := range n {
		smp, err := sub.TryReceive()
		if err != nil {
			t.Fatalf("receive %d of %d: %v", i, n, err)
		}
		if smp.Missed() != 0 || smp.Seq() != uint64(i+1) {
			t.Fatalf("message %d missed %d, want %d", smp.Seq(), smp.Missed(), i+1)
		}
		smp.Release()
	}
	smpErr := func() error { _, err := sub.TryReceive(); return err }()
	if !errors.Is(smpErr, shmkit.ErrWouldBlock) {
		t.Fatalf("receive after %d: %v", n, smpErr)
	}
	// A cancelled context fails at once, even with room (issue 16 bug 7).
	dead, cancel := context.WithCancel(ctxT(t))
	cancel()
	if err := pub.Send(dead, []byte("y")); !errors.Is(err, context.Canceled) {
		t.Fatalf("send with a cancelled context: %v", err)
	}
	poolWhole(t, ch)
}

// TestCloseUnblocks: Close while other goroutines are blocked in Receive,
// Send (log full) and LoanContext (log full): they return ErrClosed and
// Close unmaps only after they left.
func TestCloseUnblocks(t *testing.T) {
	ch, err := shmkit.Create(chanName(t), shmkit.Config{MaxMessage: 64, RingDepth: 2})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	idle, _ := ch.Subscriber()
	full, _ := ch.Subscriber() // reads nothing: pins both logs
	pub, _ := ch.Publisher()
	pub2, _ := ch.Publisher()
	_ = full
	n := fill(t, pub)
	for range n { // idle drains, full does not
		m, err := idle.TryReceive()
		if err != nil {
			t.Fatal(err)
		}
		m.Release()
	}
	errs := make(chan error, 3)
	go func() {
		for {
			m, err := idle.Receive(ctx)
			if err != nil {
				errs <- err
				return
			}
			m.Release()
		}
	}()
	go func() { errs <- pub.Send(ctx, []byte("y")) }() // the log is full
	go func() {
		for { // fill pub2's log, then wait in LoanContext
			s, err := pub2.LoanContext(ctx, 8)
			if err == nil {
				err = pub2.Publish(ctx, s)
			}
			if err != nil {
				errs <- err
				return
			}
		}
	}()
	waitFor(t, "a sleeper on the idle subscriber's logs", func() bool { return ch.SleepersForTest(0) > 0 })
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := <-errs; !errors.Is(err, shmkit.ErrClosed) {
			t.Errorf("blocked call after Close: %v, want ErrClosed", err)
		}
	}
}

// TestInspect reads a channel's counters from outside, taking no slot.
func TestInspect(t *testing.T) {
	name := chanName(t)
	ch, err := shmkit.Create(name, shmkit.Config{MaxMessage: 64, RingDepth: 4, Policy: shmkit.DropNewest})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	sub, _ := ch.Subscriber()
	pub, _ := ch.Publisher()
	const n = 100 // more than the log holds: some are dropped
	for range n {
		if err := pub.Send(ctxT(t), []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	m, _ := sub.TryReceive()
	cfg, st, err := shmkit.Inspect(name)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Policy != shmkit.DropNewest || cfg.RingDepth != 4 {
		t.Errorf("config %+v", cfg)
	}
	if st.Count(shmkit.RoleSubscriber) != 1 || st.Count(shmkit.RolePublisher) != 1 {
		t.Errorf("stats %+v", st)
	}
	for _, p := range st.Participants {
		if p.Role == shmkit.RoleSubscriber && (p.Missed != 0 || p.Held != 1 || p.Messages != 1) {
			t.Errorf("subscriber %+v", p)
		}
		if p.Role == shmkit.RolePublisher && (p.Drops == 0 || p.Messages+p.Drops != n) {
			t.Errorf("publisher %+v", p)
		}
	}
	m.Release()
	if _, _, err := shmkit.Inspect(name + "-none"); err == nil {
		t.Error("inspect of a missing channel succeeded")
	}
}

// TestDoneContext: every call that takes a context returns ctx.Err() at
// once when it is done on entry, whatever is queued: a consumer that
// cancels on SIGTERM stops, a producer's Send delivers nothing, a
// Publish leaves its sample loaned.
func TestDoneContext(t *testing.T) {
	ch, err := shmkit.Create(chanName(t), shmkit.Config{MaxMessage: 64, RingDepth: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	sub, _ := ch.Subscriber()
	pub, _ := ch.Publisher()
	ctx := ctxT(t)
	for i := range 3 {
		if err := pub.Send(ctx, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := sub.Receive(done); !errors.Is(err, context.Canceled) {
		t.Errorf("Receive: %v", err)
	}
	if _, err := sub.ReceiveInto(done, make([]byte, 8)); !errors.Is(err, context.Canceled) {
		t.Errorf("ReceiveInto: %v", err)
	}
	if err := pub.Send(done, []byte("x")); !errors.Is(err, context.Canceled) {
		t.Errorf("Send: %v", err)
	}
	if _, err := pub.LoanContext(done, 8); !errors.Is(err, context.Canceled) {
		t.Errorf("LoanContext: %v", err)
	}
	s, err := pub.Loan(8)
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(done, s); !errors.Is(err, context.Canceled) {
		t.Errorf("Publish: %v", err)
	}
	if err := s.Discard(); err != nil {
		t.Errorf("the sample a done Publish left is not loaned: %v", err)
	}
	if _, err := shmkit.NewWaitSet(sub).Wait(done); !errors.Is(err, context.Canceled) {
		t.Errorf("WaitSet.Wait: %v", err)
	}
	if err := ch.WaitFor(done, shmkit.RoleSubscriber, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("WaitFor: %v", err)
	}
	// Nothing was consumed or added: the three queued messages are there.
	for i := range 3 {
		n, err := sub.ReceiveInto(ctx, make([]byte, 8))
		if err != nil || n != 1 {
			t.Fatalf("message %d: %d bytes, %v", i, n, err)
		}
	}
	if _, err := sub.TryReceive(); !errors.Is(err, shmkit.ErrWouldBlock) {
		t.Fatalf("a fourth message: %v", err)
	}
}

// TestBlockDeadlineMidFanout (issue 16, bug 6): under Block, a Send whose
// context ends while it waits for room (one subscriber pins the log)
// returns ctx.Err() and the message is published to nobody: the log is
// one stream for every subscriber, so no subscriber gets it later and
// none counts it missed (it was never published), as Publisher.Send says.
func TestBlockDeadlineMidFanout(t *testing.T) {
	ch, err := shmkit.Create(chanName(t), shmkit.Config{MaxMessage: 64, RingDepth: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	full, _ := ch.Subscriber()
	room, _ := ch.Subscriber()
	pub, _ := ch.Publisher()
	ctx := ctxT(t)
	n := fill(t, pub) // ends with a Send past its deadline
	buf := make([]byte, 8)
	for _, s := range []*shmkit.Subscriber{room, full} {
		for i := range n {
			if k, err := s.ReceiveInto(ctx, buf); err != nil || k != 1 {
				t.Fatalf("message %d of %d: %d bytes, %v", i, n, k, err)
			}
		}
		if _, err := s.TryReceive(); !errors.Is(err, shmkit.ErrWouldBlock) {
			t.Fatalf("a subscriber got the message whose Send failed: %v", err)
		}
	}
	if err := pub.Send(ctx, []byte{9}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*shmkit.Subscriber{room, full} {
		if k, err := s.ReceiveInto(ctx, buf); err != nil || k != 1 || buf[0] != 9 {
			t.Fatalf("the next message: %v, %v", buf[:k], err)
		}
	}
	st, _ := ch.Stats()
	for _, p := range st.Participants {
		if p.Role == shmkit.RoleSubscriber && p.Missed != 0 {
			t.Fatalf("subscriber %d missed %d, want 0", p.Slot, p.Missed)
		}
	}
}

// TestPoolWorstCase: the default pool covers the worst case the limits
// allow, so eight subscribers each holding MaxHeld distinct samples with
// full rings never make a publisher fail or wait (the old default of
// 2×RingDepth chunks ran dry at 16); one loan past MaxLoans is
// ErrTooManyLoans; a full work queue refuses a loan, drops a Send under
// DropNewest and makes it wait under Block.
func TestPoolWorstCase(t *testing.T) {
	cfg := shmkit.Config{MaxMessage: 64, RingDepth: 8, Policy: shmkit.DropOldest}
	ch, err := shmkit.Create(chanName(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	// Pub/sub messages live in the publishers' logs, not the pool.
	if got, want := ch.Config().ChunksPerClass, cfg.WorstCaseChunks(); got != want || want != 1 {
		t.Fatalf("ChunksPerClass %d, worst case %d", got, want)
	}
	ctx := ctxT(t)
	pub, _ := ch.Publisher()
	var subs []*shmkit.Subscriber
	for range 8 {
		s, err := ch.Subscriber()
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, s)
	}
	// Each subscriber in turn holds MaxHeld messages published for it
	// alone: eight distinct sets (the others' rings drop them meanwhile).
	for k, s := range subs {
		for {
			smp, err := s.TryReceive()
			if errors.Is(err, shmkit.ErrWouldBlock) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			smp.Release()
		}
		for range shmkit.MaxHeld / 8 {
			for range 8 {
				if err := pub.Send(ctx, []byte("m")); err != nil {
					t.Fatalf("send while %d subscribers hold %d each: %v", k, shmkit.MaxHeld, err)
				}
			}
			for range 8 {
				if _, err := s.TryReceive(); err != nil { // held
					t.Fatal(err)
				}
			}
		}
	}
	for i := range 100 { // every ring full, every subscriber at MaxHeld
		if err := pub.Send(ctx, []byte("m")); err != nil {
			t.Fatalf("send %d with every ring full and every subscriber at MaxHeld: %v", i, err)
		}
	}
	// A pub/sub publisher has one loan at a time (its log's records are
	// committed in order).
	first, err := pub.Loan(8)
	if err != nil {
		t.Fatalf("loan: %v", err)
	}
	if _, err := pub.Loan(8); !errors.Is(err, shmkit.ErrTooManyLoans) {
		t.Fatalf("a second loan: %v", err)
	}
	if err := first.Discard(); err != nil {
		t.Fatal(err)
	}
	if s, err := pub.Loan(8); err != nil {
		t.Fatalf("loan after a discard: %v", err)
	} else if err := pub.Publish(ctx, s); err != nil {
		t.Fatal(err)
	}

	// A full work queue: Loan says ErrNoMemory at once; Send drops under
	// DropNewest (counted), waits under Block until its deadline.
	for _, pol := range []shmkit.Policy{shmkit.DropNewest, shmkit.Block} {
		small, err := shmkit.Create(chanName(t), shmkit.Config{Pattern: shmkit.WorkQueue, MaxMessage: 64, RingDepth: 4, Policy: pol})
		if err != nil {
			t.Fatal(err)
		}
		defer small.Close()
		pr, _ := small.Producer()
		p := pr.Publisher
		for range 4 {
			if err := p.Send(ctx, []byte("m")); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := p.Loan(8); !errors.Is(err, shmkit.ErrNoMemory) {
			t.Fatalf("%v: loan on a full queue: %v", pol, err)
		}
		short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		err = p.Send(short, []byte("m"))
		cancel()
		switch pol {
		case shmkit.DropNewest:
			if err != nil {
				t.Fatalf("DropNewest: send to a full queue: %v, want a drop", err)
			}
			st, _ := small.Stats()
			drops := uint64(0)
			for _, ps := range st.Participants {
				drops += ps.Drops
			}
			if drops != 1 {
				t.Fatalf("DropNewest: %d drops counted, want 1", drops)
			}
		case shmkit.Block:
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Block: a send that waited for room: %v, want its deadline", err)
			}
			st, _ := small.Stats()
			for _, ps := range st.Participants {
				if ps.Role == shmkit.RoleProducer && ps.Blocked < 40*time.Millisecond {
					t.Fatalf("Block: the producer's Blocked is %v after a 50 ms wait", ps.Blocked)
				}
			}
		}
	}
}
