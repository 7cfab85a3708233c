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
		{RingDepth: 3}, {MaxSubscribers: 40}, {Pattern: 9}, {Policy: 7}, {MaxMessage: -1},
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
