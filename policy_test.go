package shmkit_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shmkit/shmkit"
)

// TestDropPolicies publishes 100 messages past a subscriber that receives
// nothing (ring of 8) and another that keeps up: counts are exact and the
// publisher never waits (any wait would last until the context's deadline
// and fail the Publish: a context done on entry now fails it at once).
func TestDropPolicies(t *testing.T) {
	const depth, n = 8, 100
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
			for seq := uint64(1); seq <= n; seq++ {
				s, err := pub.Loan(8)
				if err != nil {
					t.Fatal(err)
				}
				if err := pub.Publish(done, s); err != nil {
					t.Fatalf("publish %d: %v", seq, err)
				}
				smp, err := live.TryReceive()
				if err != nil {
					t.Fatal(err)
				}
				if smp.Seq() != seq || smp.Missed() != 0 {
					t.Fatalf("live subscriber: message %d missed %d, want %d missed 0", smp.Seq(), smp.Missed(), seq)
				}
				smp.Release()
			}
			first := uint64(1)
			if pol == shmkit.DropOldest {
				first = n - depth + 1
			}
			for i := range uint64(depth) {
				smp, err := stalled.TryReceive()
				if err != nil {
					t.Fatal(err)
				}
				wantMissed := uint64(0)
				if i == 0 { // drops are reported by the first receive after them
					wantMissed = n - depth
				}
				if smp.Seq() != first+i || smp.Missed() != wantMissed {
					t.Fatalf("stalled subscriber: message %d missed %d, want %d missed %d", smp.Seq(), smp.Missed(), first+i, wantMissed)
				}
				smp.Release()
			}
			if _, err := stalled.TryReceive(); !errors.Is(err, shmkit.ErrWouldBlock) {
				t.Fatalf("stalled subscriber after its %d: %v", depth, err)
			}
			st, err := ch.Stats()
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range st.Participants {
				switch {
				case p.Role == "publisher" && p.Drops != n-depth:
					t.Errorf("publisher drops %d, want %d", p.Drops, n-depth)
				case p.Role == "subscriber" && p.Slot == 0 && p.Missed != n-depth:
					t.Errorf("stalled subscriber missed %d, want %d", p.Missed, n-depth)
				case p.Role == "subscriber" && p.Slot == 1 && p.Missed != 0:
					t.Errorf("live subscriber missed %d", p.Missed)
				}
			}
			poolWhole(t, ch)
		})
	}
}

// TestBlockHonoursContext: with policy Block a publisher waits for a full
// ring until its context ends; the subscriber misses that message.
func TestBlockHonoursContext(t *testing.T) {
	ch, err := shmkit.Create(chanName(t), shmkit.Config{MaxMessage: 64, RingDepth: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	sub, _ := ch.Subscriber()
	pub, _ := ch.Publisher()
	ctx := ctxT(t)
	for range 2 {
		if err := pub.Send(ctx, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	short, cancel := context.WithTimeout(ctx, 30_000_000)
	defer cancel()
	if err := pub.Send(short, []byte("y")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("publish into a full ring: %v, want DeadlineExceeded", err)
	}
	for range 2 {
		smp, err := sub.TryReceive()
		if err != nil {
			t.Fatal(err)
		}
		smp.Release()
	}
	smpErr := func() error { _, err := sub.TryReceive(); return err }()
	if !errors.Is(smpErr, shmkit.ErrWouldBlock) {
		t.Fatalf("third receive: %v", smpErr)
	}
	poolWhole(t, ch)
}

// TestCloseUnblocks: Close while other goroutines are blocked in Receive,
// Publish (ring full) and LoanContext (pool empty): they return ErrClosed
// and Close unmaps only after they left.
func TestCloseUnblocks(t *testing.T) {
	ch, err := shmkit.Create(chanName(t), shmkit.Config{MaxMessage: 64, RingDepth: 2, ChunksPerClass: 3})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	idle, _ := ch.Subscriber()
	full, _ := ch.Subscriber()
	pub, _ := ch.Publisher()
	pub2, _ := ch.Publisher()
	_ = full
	for range 2 {
		if err := pub.Send(ctx, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 { // idle drains, full does not
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
	go func() { errs <- pub.Send(ctx, []byte("y")) }() // full's ring is full
	go func() {
		var err error
		for err == nil { // exhaust the pool, then wait in LoanContext
			_, err = pub2.LoanContext(ctx, 8)
		}
		errs <- err
	}()
	waitFor(t, "a sleeper on the idle subscriber's ring", func() bool { return ch.SleepersForTest(0) > 0 })
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
	for range 6 {
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
	if st.Pool.InUse != 4 || st.Count("subscriber") != 1 || st.Count("publisher") != 1 {
		t.Errorf("stats %+v", st)
	}
	for _, p := range st.Participants {
		if p.Role == "subscriber" && (p.Missed != 2 || p.Held != 1 || p.Messages != 1) {
			t.Errorf("subscriber %+v", p)
		}
		if p.Role == "publisher" && (p.Drops != 2 || p.Messages != 6) {
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

// TestBlockDeadlineMidFanout: under Block, a Publish whose context ends
// while it waits for a full subscriber returns ctx.Err(); that subscriber
// misses the message (counted), the subscriber with room gets it, as the
// doc of Publish says.
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
	for i := range 2 {
		if err := pub.Send(ctx, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		if _, err := room.ReceiveInto(ctx, make([]byte, 8)); err != nil {
			t.Fatal(err)
		}
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := pub.Send(short, []byte{9}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send past its deadline: %v", err)
	}
	buf := make([]byte, 8)
	if n, err := room.ReceiveInto(ctx, buf); err != nil || n != 1 || buf[0] != 9 {
		t.Fatalf("the subscriber with room: %d bytes %v, %v", n, buf[:n], err)
	}
	for i := range 2 {
		if n, err := full.ReceiveInto(ctx, buf); err != nil || n != 1 || buf[0] != byte(i) {
			t.Fatalf("the full subscriber's message %d: %v, %v", i, buf[:n], err)
		}
	}
	if _, err := full.TryReceive(); !errors.Is(err, shmkit.ErrWouldBlock) {
		t.Fatalf("the full subscriber got the message it missed: %v", err)
	}
	st, _ := ch.Stats()
	var missed uint64
	for _, p := range st.Participants {
		if p.Role == shmkit.RoleSubscriber {
			missed += p.Missed
		}
	}
	if missed != 1 {
		t.Fatalf("missed %d, want 1 (the full subscriber's)", missed)
	}
}

// TestPoolWorstCase: the default pool covers the worst case the limits
// allow, so eight subscribers each holding MaxHeld distinct samples with
// full rings never make a publisher fail or wait (the old default of
// 2×RingDepth chunks ran dry at 16); one loan past MaxLoans is
// ErrTooManyLoans; a pool made smaller than the worst case says who holds
// its chunks, and the drop policies do not wait for one.
func TestPoolWorstCase(t *testing.T) {
	cfg := shmkit.Config{MaxMessage: 64, RingDepth: 8, Policy: shmkit.DropOldest}
	ch, err := shmkit.Create(chanName(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	if got, want := ch.Config().ChunksPerClass, cfg.WorstCaseChunks(); got != want || want != 8*8+8*shmkit.MaxHeld+4*17 {
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
	var loans []*shmkit.Sample
	for range 16 {
		s, err := pub.Loan(8)
		if err != nil {
			t.Fatalf("loan within MaxLoans: %v", err)
		}
		loans = append(loans, s)
	}
	if _, err := pub.Loan(8); !errors.Is(err, shmkit.ErrTooManyLoans) {
		t.Fatalf("loan past MaxLoans: %v", err)
	}
	if err := loans[0].Discard(); err != nil {
		t.Fatal(err)
	}
	if s, err := pub.Loan(8); err != nil {
		t.Fatalf("loan after a discard: %v", err)
	} else {
		loans[0] = s
	}
	for _, s := range loans {
		if err := pub.Publish(ctx, s); err != nil {
			t.Fatal(err)
		}
	}

	// Smaller than the worst case, on purpose.
	for _, pol := range []shmkit.Policy{shmkit.DropOldest, shmkit.Block} {
		small, err := shmkit.Create(chanName(t), shmkit.Config{MaxMessage: 64, RingDepth: 8, ChunksPerClass: 4, Policy: pol})
		if err != nil {
			t.Fatal(err)
		}
		defer small.Close()
		s, _ := small.Subscriber()
		p, _ := small.Publisher()
		for range 4 {
			if err := p.Send(ctx, []byte("m")); err != nil {
				t.Fatal(err)
			}
			if _, err := s.TryReceive(); err != nil { // held
				t.Fatal(err)
			}
		}
		short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		err = p.Send(short, []byte("m"))
		cancel()
		if !errors.Is(err, shmkit.ErrNoMemory) || !strings.Contains(err.Error(), "subscribers hold 4 unreleased samples") {
			t.Fatalf("%v: send with a dry pool: %v", pol, err)
		}
		if pol == shmkit.Block && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Block: a send that waited for a chunk: %v, want its deadline too", err)
		}
		if pol == shmkit.DropOldest && errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("DropOldest waited for a chunk: %v", err)
		}
		t.Logf("%v: %v", pol, err)
	}
}

// TestWithDepth: a subscriber with its own shallow depth beside one with
// the channel's: under DropOldest the shallow one keeps only the newest
// messages (its Missed exact), the deep one all; under Block a publisher
// waits on the shallow one at its depth; a depth past RingDepth is
// ErrConfig.
func TestWithDepth(t *testing.T) {
	ctx := ctxT(t)
	ch, err := shmkit.Create(chanName(t), shmkit.Config{MaxMessage: 64, RingDepth: 16, Policy: shmkit.DropOldest})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	if _, err := ch.Subscriber(shmkit.WithDepth(17)); !errors.Is(err, shmkit.ErrConfig) {
		t.Fatalf("WithDepth past RingDepth: %v", err)
	}
	fast, _ := ch.Subscriber(shmkit.WithDepth(2))
	deep, _ := ch.Subscriber()
	pub, _ := ch.Publisher()
	for i := range 10 {
		if err := pub.Send(ctx, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	for i, want := range []uint64{9, 10} {
		smp, err := fast.TryReceive()
		if err != nil || smp.Seq() != want || (i == 0 && smp.Missed() != 8) {
			t.Fatalf("shallow subscriber: %v (seq %d missed %d), want seq %d", err, smp.Seq(), smp.Missed(), want)
		}
		smp.Release()
	}
	for want := uint64(1); want <= 10; want++ {
		smp, err := deep.TryReceive()
		if err != nil || smp.Seq() != want || smp.Missed() != 0 {
			t.Fatalf("deep subscriber: %v, want seq %d", err, want)
		}
		smp.Release()
	}

	blk, err := shmkit.Create(chanName(t), shmkit.Config{MaxMessage: 64, RingDepth: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer blk.Close()
	slow, _ := blk.Subscriber(shmkit.WithDepth(2))
	p, _ := blk.Publisher()
	for range 2 {
		if err := p.Send(ctx, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	short, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	if err := p.Send(short, []byte("x")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Block past the subscriber's own depth: %v", err)
	}
	if _, err := slow.TryReceive(); err != nil {
		t.Fatal(err)
	}
	if err := p.Send(ctx, []byte("x")); err != nil {
		t.Fatalf("Block once the subscriber made room: %v", err)
	}
}
