package shmkit_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/shmkit/shmkit"
)

// checkRecord verifies a tap record against the pattern the test
// publishers write (payload, msgSize in proc_linux_test.go): its length,
// and its captured prefix byte for byte.
func checkRecord(t *testing.T, r shmkit.TapRecord, max, snap int) {
	t.Helper()
	if r.Len != msgSize(r.Seq, max) {
		t.Fatalf("tap: publisher %#x message %d: len %d, want %d", r.Publisher, r.Seq, r.Len, msgSize(r.Seq, max))
	}
	if len(r.Data) != min(r.Len, snap) {
		t.Fatalf("tap: message %d: %d bytes captured of %d, snap %d", r.Seq, len(r.Data), r.Len, snap)
	}
	want := make([]byte, r.Len)
	payload(want, r.Publisher, r.Seq)
	for i, b := range r.Data {
		if b != want[i] {
			t.Fatalf("tap: publisher %#x message %d: byte %d is %d, want %d", r.Publisher, r.Seq, i, b, want[i])
		}
	}
}

// tappedChannel creates channel name with cfg and attaches a tap to it;
// both are closed when the test ends (the tap first).
func tappedChannel(t *testing.T, name string, cfg shmkit.Config) (*shmkit.Channel, *shmkit.Tap) {
	t.Helper()
	ch, err := shmkit.Create(name, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ch.Close() })
	tap, err := shmkit.OpenTap(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tap.Close() })
	return ch, tap
}

// TestTapSeesEveryMessage: a tap read between batches of at most TapSlots
// messages sees every message whole, in order, with the publisher's id and
// sequence numbers; the subscriber still receives everything; a tap left
// behind by more than TapSlots messages reports exactly the overflow as
// missed.
func TestTapSeesEveryMessage(t *testing.T) {
	name := chanName(t)
	const slots, snap, max = 64, 96, 300
	ch, err := shmkit.Create(name, shmkit.Config{MaxMessage: max, RingDepth: 1024, TapSlots: slots, TapSnap: snap})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	if c := ch.Config(); c.TapSlots != slots || c.TapSnap != snap {
		t.Fatalf("Config: TapSlots %d, TapSnap %d", c.TapSlots, c.TapSnap)
	}
	sub, err := ch.Subscriber()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ch.Publisher()
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	seq := uint64(0)
	publish := func(n int) {
		for range n {
			seq++
			s, err := pub.LoanContext(ctx, msgSize(seq, max))
			if err != nil {
				t.Fatal(err)
			}
			payload(s.Bytes(), s.Publisher(), seq)
			if err := pub.Publish(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
	}
	publish(10) // before the tap: not seen
	if ch.TapActiveForTest() != 0 {
		t.Fatal("active word set with no tap attached")
	}
	tap, err := shmkit.OpenTap(name)
	if err != nil {
		t.Fatal(err)
	}
	defer tap.Close()
	if ch.TapActiveForTest() == 0 {
		t.Fatal("active word 0 with a tap attached")
	}
	if _, err := tap.TryReceive(); !errors.Is(err, shmkit.ErrWouldBlock) {
		t.Fatalf("TryReceive on an empty tap: %v", err)
	}
	next := seq + 1
	for range 20 {
		publish(slots / 2)
		for next <= seq {
			r, err := tap.Receive(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if r.Seq != next || r.Missed != 0 {
				t.Fatalf("tap: message %d (missed %d), want %d", r.Seq, r.Missed, next)
			}
			checkRecord(t, r, max, snap)
			next++
		}
	}
	// Fall behind by 3 laps and 5: only the last TapSlots are there.
	publish(3*slots + 5)
	r, err := tap.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r.Missed != 2*slots+5 || r.Seq != next+2*slots+5 {
		t.Fatalf("after falling behind: message %d missed %d; want %d missed %d", r.Seq, r.Missed, next+2*slots+5, 2*slots+5)
	}
	checkRecord(t, r, max, snap)
	for range slots - 1 {
		r, err := tap.Receive(ctx)
		if err != nil || r.Missed != 0 {
			t.Fatalf("%v, missed %d", err, r.Missed)
		}
		checkRecord(t, r, max, snap)
	}
	st := tap.Stats()
	if st.Received != 20*slots/2+slots || st.Missed != 2*slots+5 {
		t.Fatalf("tap stats %+v", st)
	}
	cs, err := ch.Stats()
	if err != nil || len(cs.Taps) != 1 || !cs.Taps[0].Active || cs.Taps[0].Received != st.Received || cs.Taps[0].Missed != st.Missed {
		t.Fatalf("channel stats: taps %+v, %v", cs.Taps, err)
	}
	// The subscriber got everything, the tap changed nothing.
	for want := uint64(1); want <= seq; want++ {
		smp, err := sub.TryReceive()
		if err != nil {
			t.Fatalf("subscriber message %d: %v", want, err)
		}
		if err := verify(smp.Bytes(), smp.Publisher(), smp.Seq(), max); err != nil || smp.Seq() != want {
			t.Fatalf("subscriber: message %d, want %d: %v", smp.Seq(), want, err)
		}
		smp.Release()
	}
	if err := tap.Close(); err != nil {
		t.Fatal(err)
	}
	if ch.TapActiveForTest() != 0 {
		t.Fatal("active word set after the tap closed")
	}
	if err := tap.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if _, err := tap.TryReceive(); !errors.Is(err, shmkit.ErrClosed) {
		t.Fatalf("TryReceive after Close: %v", err)
	}
}

func TestTapWorkQueue(t *testing.T) {
	name := chanName(t)
	ch, tap := tappedChannel(t, name, shmkit.Config{Pattern: shmkit.WorkQueue, MaxMessage: 64, RingDepth: 64})
	p, err := ch.Producer()
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	if err := p.Send(ctx, []byte("job 1")); err != nil {
		t.Fatal(err)
	}
	r, err := tap.Receive(ctx)
	if err != nil || string(r.Data) != "job 1" || r.Seq != 1 || r.Len != 5 {
		t.Fatalf("tap on a work queue: %+v, %v", r, err)
	}
	if time.Since(r.Time) > time.Hour || time.Since(r.Time) < 0 {
		t.Fatalf("record time %v", r.Time)
	}
}

func TestTapErrors(t *testing.T) {
	if _, err := shmkit.OpenTap("no-such-channel-for-tap"); err == nil {
		t.Fatal("OpenTap of no channel succeeded")
	}
	// Taps disabled: the channel works, OpenTap says ErrNoTap.
	name := chanName(t)
	ch, err := shmkit.Create(name, shmkit.Config{TapSlots: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	if _, err := shmkit.OpenTap(name); !errors.Is(err, shmkit.ErrNoTap) {
		t.Fatalf("OpenTap with taps disabled: %v", err)
	}
	if cfg, _, err := shmkit.Inspect(name); err != nil || cfg.TapSlots != -1 {
		t.Fatalf("Inspect: TapSlots %d, %v", cfg.TapSlots, err)
	}
	// A channel from before taps: no region. Open works, OpenTap says
	// ErrNoTap, publishing works.
	old := chanName(t)
	och, err := shmkit.CreateWithoutTapForTest(old, shmkit.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer och.Close()
	j, err := shmkit.Open(old)
	if err != nil {
		t.Fatal("Open of a channel without tap region:", err)
	}
	defer j.Close()
	pub, err := j.Publisher()
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Send(ctxT(t), []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := shmkit.OpenTap(old); !errors.Is(err, shmkit.ErrNoTap) {
		t.Fatalf("OpenTap of a channel without tap region: %v", err)
	}
	if cfg, st, err := shmkit.Inspect(old); err != nil || cfg.TapSlots != 0 || st.Taps != nil {
		t.Fatalf("Inspect without tap region: %d %v %v", cfg.TapSlots, st.Taps, err)
	}
	// Bad configurations.
	for _, c := range []shmkit.Config{{TapSlots: 100}, {TapSnap: 12}, {TapSlots: shmkit.MaxTapSlots * 2}, {TapSnap: -8}} {
		if _, err := shmkit.Create(chanName(t), c); !errors.Is(err, shmkit.ErrConfig) {
			t.Errorf("Create %+v: %v", c, err)
		}
	}
	// MaxTaps at once, then ErrFull.
	var taps []*shmkit.Tap
	name2 := chanName(t)
	ch2, err := shmkit.Create(name2, shmkit.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer ch2.Close()
	for range shmkit.MaxTaps {
		tp, err := shmkit.OpenTap(name2)
		if err != nil {
			t.Fatal(err)
		}
		taps = append(taps, tp)
	}
	if _, err := shmkit.OpenTap(name2); !errors.Is(err, shmkit.ErrFull) {
		t.Fatalf("tap %d: %v", shmkit.MaxTaps+1, err)
	}
	_, st, _ := shmkit.Inspect(name2)
	if len(st.Taps) != shmkit.MaxTaps {
		t.Fatalf("Inspect: %d taps", len(st.Taps))
	}
	for _, tp := range taps {
		tp.Close()
	}
	if ch2.TapActiveForTest() != 0 {
		t.Fatal("active word set after every tap closed")
	}
}

// Watch a channel's messages with a tap: the publisher copies the first
// TapSnap bytes of each message for it while it is attached. In real use
// the tap is another process (shmctl tap NAME).
func ExampleOpenTap() {
	name := fmt.Sprintf("example-tap-%d", os.Getpid())
	ch, err := shmkit.Create(name, shmkit.Config{MaxMessage: 1024})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ch.Close()

	tap, err := shmkit.OpenTap(name) // sees what is published from now on
	if err != nil {
		fmt.Println(err)
		return
	}
	defer tap.Close() // publishers stop copying when the last tap leaves

	pub, _ := ch.Publisher()
	ctx := context.Background()
	_ = pub.Send(ctx, []byte("hello"))

	r, err := tap.Receive(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s: message %d, %d bytes, %d missed\n", r.Data, r.Seq, r.Len, r.Missed) // r.Data valid until the next Receive
	// Output: hello: message 1, 5 bytes, 0 missed
}
