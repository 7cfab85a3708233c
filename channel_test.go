package shmkit_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/shmkit/shmkit"
)

// chanName returns a channel name unique to this test and process, and
// removes it when the test ends.
func chanName(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("shmkit-test-%d-%d", os.Getpid(), time.Now().UnixNano()%1e9)
	t.Cleanup(func() { _ = shmkit.Remove(name, shmkit.WithForce()) })
	return name
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// poolWhole fails unless every chunk of the pool is free.
func poolWhole(t testing.TB, ch *shmkit.Channel) {
	t.Helper()
	st := ch.PoolStatsForTest()
	if st.Free != st.Total || st.InUse != 0 || st.InFlight != 0 {
		t.Fatalf("pool not whole: %+v", st)
	}
	if err := ch.PoolCheckForTest(); err != nil {
		t.Fatalf("pool check: %v", err)
	}
}

func TestPubSubInProcess(t *testing.T) {
	name := chanName(t)
	ch, err := shmkit.Create(name, shmkit.Config{MaxMessage: 1000, RingDepth: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	ctx := ctxT(t)
	pub, err := ch.Publisher()
	if err != nil {
		t.Fatal(err)
	}
	var subs []*shmkit.Subscriber
	for range 3 {
		s, err := ch.Subscriber()
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, s)
	}
	for i := range 100 {
		msg := bytes.Repeat([]byte{byte(i)}, i*7%1000)
		done := make(chan error, 1)
		go func() { done <- pub.Send(ctx, msg) }()
		for _, s := range subs {
			smp, err := s.Receive(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(smp.Bytes(), msg) || smp.Seq() != uint64(i+1) {
				t.Fatalf("message %d: got %d bytes seq %d", i, smp.Len(), smp.Seq())
			}
			if err := smp.Release(); err != nil {
				t.Fatal(err)
			}
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	poolWhole(t, ch)
	if err := pub.Close(); err != nil {
		t.Fatal(err)
	}
	for _, s := range subs {
		if _, err := s.Receive(ctx); !errors.Is(err, shmkit.ErrPeerGone) {
			t.Fatalf("after the publisher left: %v, want ErrPeerGone", err)
		}
	}
}

func TestLastLeaverRemoves(t *testing.T) {
	name := chanName(t)
	ch, err := shmkit.Create(name, shmkit.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ch2, err := shmkit.Open(name, shmkit.WithExpect(shmkit.Config{Pattern: shmkit.PubSub}))
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/dev/shm/shmkit." + name); err != nil {
		t.Fatalf("removed while a participant is attached: %v", err)
	}
	if err := ch2.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := shmkit.Open(name); !errors.Is(err, shmkit.ErrNotExist) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("open after the last left: %v, want ErrNotExist", err)
	}
}

func TestOpenValidates(t *testing.T) {
	name := chanName(t)
	ch, err := shmkit.Create(name, shmkit.Config{RingDepth: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	if _, err := shmkit.Open(name, shmkit.WithExpect(shmkit.Config{Pattern: shmkit.WorkQueue})); !errors.Is(err, shmkit.ErrMismatch) {
		t.Fatalf("wrong pattern: %v", err)
	}
	if _, err := shmkit.Open(name, shmkit.WithExpect(shmkit.Config{RingDepth: 16})); !errors.Is(err, shmkit.ErrMismatch) {
		t.Fatalf("wrong depth: %v", err)
	}
	if _, err := shmkit.Create(name, shmkit.Config{}); !errors.Is(err, shmkit.ErrExist) || !errors.Is(err, os.ErrExist) {
		t.Fatalf("create twice: %v", err)
	}
	for _, c := range []shmkit.Config{
		{RingDepth: 3}, {MaxSubscribers: 2000}, {Pattern: shmkit.WorkQueue, MaxSubscribers: 100}, {MaxHeld: -1}, {Pattern: 9}, {Policy: 7}, {MaxMessage: -1},
		{Pattern: shmkit.WorkQueue, Policy: shmkit.DropOldest},
	} {
		if _, err := shmkit.Create(chanName(t), c); !errors.Is(err, shmkit.ErrConfig) {
			t.Errorf("Create(%+v): %v, want ErrConfig", c, err)
		}
	}
}

// waitFor polls cond (an observable fact: participant counts in the
// channel) until it holds, failing the test after a generous time.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func count(t *testing.T, ch *shmkit.Channel, role shmkit.Role) int {
	st, err := ch.Stats()
	if err != nil {
		t.Fatal(err)
	}
	return st.Count(role)
}

// Send copies a message in and publishes it in one call: the subscriber
// gets the bytes with the publisher's ID and sequence; a message over
// MaxMessage and a Send after Close fail without taking a chunk; a Send
// that waits for a chunk gets one when a subscriber releases.
func TestSend(t *testing.T) {
	ch, err := shmkit.Create(chanName(t), shmkit.Config{MaxMessage: 64, RingDepth: 4, ChunksPerClass: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	ctx := ctxT(t)
	sub, _ := ch.Subscriber()
	pub, err := ch.Publisher()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := pub.Send(ctx, []byte{byte('a' + i), 'z'}); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Send(ctx, make([]byte, 65)); !errors.Is(err, shmkit.ErrTooLarge) {
		t.Fatalf("Send of 65 bytes: %v, want ErrTooLarge", err)
	}
	// The class of 2 chunks is in use: a third Send waits until a release.
	sent := make(chan error, 1)
	go func() { sent <- pub.Send(ctx, []byte("c")) }()
	for i, want := range []string{"az", "bz", "c"} {
		m, err := sub.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if string(m.Bytes()) != want || m.Publisher() != pub.ID() || m.Seq() != uint64(i+1) {
			t.Errorf("message %d: %q from %d seq %d, want %q from %d seq %d", i, m.Bytes(), m.Publisher(), m.Seq(), want, pub.ID(), i+1)
		}
		if err := m.Release(); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	pub.Close()
	if err := pub.Send(ctx, []byte("late")); !errors.Is(err, shmkit.ErrClosed) {
		t.Fatalf("Send after Close: %v, want ErrClosed", err)
	}
	poolWhole(t, ch)
}

// Test256Subscribers: 256 subscribers on one channel (the log data path
// has no per-subscriber mask bit), each gets every message of two
// publishers, whole and in order; one Send costs the publishers what one
// subscriber costs (the record is written once).
func Test256Subscribers(t *testing.T) {
	const subs, n = 256, 50
	ch, err := shmkit.Create(chanName(t), shmkit.Config{MaxMessage: 64, MaxSubscribers: subs, MaxPublishers: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	var ss []*shmkit.Subscriber
	for range subs {
		s, err := ch.Subscriber()
		if err != nil {
			t.Fatal(err)
		}
		ss = append(ss, s)
	}
	if _, err := ch.Subscriber(); !errors.Is(err, shmkit.ErrFull) {
		t.Fatalf("subscriber %d: %v, want ErrFull", subs+1, err)
	}
	ctx := ctxT(t)
	var pubs []*shmkit.Publisher
	for range 2 {
		p, err := ch.Publisher()
		if err != nil {
			t.Fatal(err)
		}
		pubs = append(pubs, p)
	}
	for seq := uint64(1); seq <= n; seq++ {
		for _, p := range pubs {
			b := make([]byte, msgSize(seq, 64))
			payload(b, p.ID(), seq)
			if err := p.Send(ctx, b); err != nil {
				t.Fatal(err)
			}
		}
	}
	buf := make([]byte, 64)
	for k, s := range ss {
		last := map[int]uint64{}
		for range 2 * n {
			smp, err := s.TryReceive()
			if err != nil {
				t.Fatalf("subscriber %d: %v", k, err)
			}
			from, seq := smp.Publisher(), smp.Seq()
			if err := verify(smp.Bytes(), from, seq, 64); err != nil || seq != last[from]+1 {
				t.Fatalf("subscriber %d: message %d of %d after %d: %v", k, seq, from, last[from], err)
			}
			last[from] = seq
			copy(buf, smp.Bytes())
			smp.Release()
		}
		if _, err := s.TryReceive(); !errors.Is(err, shmkit.ErrWouldBlock) {
			t.Fatalf("subscriber %d: one more: %v", k, err)
		}
	}
}

// TestBatches: SendBatch and ReceiveBatch carry every message whole and in
// order through a log that holds fewer than are sent (the sender waits for
// room mid-batch); a message longer than its buffer is truncated and its
// length reported, as ReceiveInto does.
func TestBatches(t *testing.T) {
	const n, max = 3000, 200
	ch, err := shmkit.Create(chanName(t), shmkit.Config{MaxMessage: max, RingDepth: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	sub, _ := ch.Subscriber()
	pub, _ := ch.Publisher()
	ctx := ctxT(t)
	errc := make(chan error, 1)
	go func() {
		var msgs [][]byte
		for seq := uint64(1); seq <= n; seq++ {
			b := make([]byte, msgSize(seq, max))
			payload(b, pub.ID(), seq)
			msgs = append(msgs, b)
			if len(msgs) == 64 || seq == n {
				if k, err := pub.SendBatch(ctx, msgs); err != nil || k != len(msgs) {
					errc <- fmt.Errorf("SendBatch: %d of %d, %v", k, len(msgs), err)
					return
				}
				msgs = msgs[:0]
			}
		}
		errc <- nil
	}()
	bufs, infos := make([][]byte, 16), make([]shmkit.MessageInfo, 16)
	for i := range bufs {
		bufs[i] = make([]byte, 150) // shorter than the longest messages
	}
	for seq := uint64(1); seq <= n; {
		k, err := sub.ReceiveBatch(ctx, bufs, infos)
		if err != nil {
			t.Fatal(err)
		}
		for i := range k {
			want := make([]byte, msgSize(seq, max))
			payload(want, pub.ID(), seq)
			l := infos[i].Len
			if l != len(want) || string(bufs[i][:min(l, 150)]) != string(want[:min(len(want), 150)]) {
				t.Fatalf("message %d: length %d, want %d, or bytes differ", seq, l, len(want))
			}
			if infos[i].Seq != seq || infos[i].Publisher != pub.ID() || infos[i].Missed != 0 {
				t.Fatalf("message %d: info %+v, want seq %d from %#x", seq, infos[i], seq, pub.ID())
			}
			seq++
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}
