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
// fewer: the publisher never waits (its context is already cancelled, so
// any wait would fail the Publish), and every subscriber's count is exact
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
			done, cancel := context.WithCancel(context.Background())
			cancel()
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
