package shmkit_test

import (
	"context"
	"errors"
	"testing"

	"github.com/shmkit/shmkit"
)

// TestDropPolicies publishes 100 messages past a subscriber that receives
// nothing (ring of 8) and another that keeps up: counts are exact and the
// publisher never waits (its context is already cancelled, so any wait
// would fail the Publish).
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
			done, cancel := context.WithCancel(context.Background())
			cancel()
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
