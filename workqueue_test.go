package shmkit_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/shmkit/shmkit"
)

// TestWorkQueueManyConsumers: 64 consumers (the old delivery mask held 31)
// share 20 000 messages from two producers; each message arrives exactly
// once, and each producer's messages arrive in its order at any consumer.
func TestWorkQueueManyConsumers(t *testing.T) {
	ch, err := shmkit.Create(chanName(t), shmkit.Config{Pattern: shmkit.WorkQueue, MaxMessage: 32, RingDepth: 64,
		MaxSubscribers: 64, MaxPublishers: 2, MaxHeld: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	ctx := ctxT(t)
	const producers, per = 2, 10000
	var cons []*shmkit.Consumer
	for range 64 {
		c, err := ch.Consumer()
		if err != nil {
			t.Fatal(err)
		}
		cons = append(cons, c)
	}
	var mu sync.Mutex
	got := map[string]int{}
	var wg sync.WaitGroup
	errs := make(chan error, len(cons)+producers)
	for _, c := range cons {
		wg.Add(1)
		go func() {
			defer wg.Done()
			last := map[int]uint64{}
			for {
				m, err := c.Receive(ctx)
				if errors.Is(err, shmkit.ErrPeerGone) {
					return
				}
				if err != nil {
					errs <- err
					return
				}
				if m.Seq() <= last[m.Publisher()] {
					errs <- fmt.Errorf("producer %#x: seq %d after %d", m.Publisher(), m.Seq(), last[m.Publisher()])
				}
				last[m.Publisher()] = m.Seq()
				mu.Lock()
				got[string(m.Bytes())]++
				mu.Unlock()
				m.Release()
			}
		}()
	}
	var pw sync.WaitGroup
	for k := range producers {
		p, err := ch.Producer()
		if err != nil {
			t.Fatal(err)
		}
		pw.Add(1)
		go func() {
			defer pw.Done()
			defer p.Close()
			for i := range per {
				if err := p.Send(ctx, fmt.Appendf(nil, "%d:%d", k, i)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	pw.Wait()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(got) != producers*per {
		t.Fatalf("%d distinct messages of %d", len(got), producers*per)
	}
	for m, n := range got {
		if n != 1 {
			t.Fatalf("%s arrived %d times", m, n)
		}
	}
	for _, c := range cons {
		c.Close()
	}
	if q, c := ch.QueueWholeForTest(); q != 0 || c != 0 {
		t.Fatalf("%d queued, %d claim records taken after everyone left", q, c)
	}
}

// TestWorkQueueLoans: consumers wait at a loan's position until it is
// published; a discarded loan is skipped; Seq and Publisher come with
// every message; Close gives outstanding loans up and frees held slots.
func TestWorkQueueLoans(t *testing.T) {
	ch, err := shmkit.Create(chanName(t), shmkit.Config{Pattern: shmkit.WorkQueue, MaxMessage: 64, RingDepth: 8, MaxLoans: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	ctx := ctxT(t)
	pr, _ := ch.Producer()
	co, _ := ch.Consumer()
	p, c := pr.Publisher, co.Subscriber
	a, err := p.Loan(5)
	if err != nil {
		t.Fatal(err)
	}
	copy(a.Bytes(), "first")
	if err := p.Send(ctx, []byte("second")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.TryReceive(); !errors.Is(err, shmkit.ErrWouldBlock) {
		t.Fatalf("receive behind an unpublished loan: %v, want ErrWouldBlock", err)
	}
	b, _ := p.Loan(3)
	if _, err := p.Loan(1); !errors.Is(err, shmkit.ErrTooManyLoans) {
		t.Fatalf("a third loan with MaxLoans 2: %v", err)
	}
	if err := p.Publish(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := b.Discard(); err != nil {
		t.Fatal(err)
	}
	if err := p.Send(ctx, []byte("third")); err != nil {
		t.Fatal(err)
	}
	var third *shmkit.Sample
	for i, want := range []string{"first", "second", "third"} {
		m, err := c.TryReceive()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if string(m.Bytes()) != want || m.Seq() != []uint64{1, 2, 4}[i] || m.Publisher() != p.ID() {
			t.Fatalf("message %d: %q seq %d from %#x, want %q from %#x", i, m.Bytes(), m.Seq(), m.Publisher(), want, p.ID())
		}
		if i < 2 {
			m.Release()
		} else {
			third = m // stays held
		}
	}
	if _, err := p.Loan(4); err != nil { // left for Close to give up
		t.Fatal(err)
	}
	pr.Close() // the loan becomes a tombstone the consumer skips
	if _, err := c.TryReceive(); !errors.Is(err, shmkit.ErrPeerGone) {
		t.Fatalf("receive after the producer closed: %v, want ErrPeerGone", err)
	}
	co.Close() // frees the held third message
	if err := third.Release(); err != nil {
		t.Fatalf("Release of a sample its Consumer's Close released: %v, want nil", err)
	}
	if q, n := ch.QueueWholeForTest(); q != 0 || n != 0 {
		t.Fatalf("%d queued, %d claim records taken after both closed", q, n)
	}
}

// TestWorkQueueReceiveBatch: a consumer's ReceiveBatch takes what is
// queued (each message once, with its length, producer and number), waits
// for the first, and refuses an empty batch or short infos.
func TestWorkQueueReceiveBatch(t *testing.T) {
	ch, err := shmkit.Create(chanName(t), shmkit.Config{Pattern: shmkit.WorkQueue, MaxMessage: 64, RingDepth: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	ctx := ctxT(t)
	pr, _ := ch.Producer()
	co, _ := ch.Consumer()
	if _, err := co.ReceiveBatch(ctx, nil, nil); !errors.Is(err, shmkit.ErrConfig) {
		t.Fatalf("empty batch: %v, want ErrConfig", err)
	}
	bufs := [][]byte{make([]byte, 64), make([]byte, 64), make([]byte, 4), make([]byte, 64)}
	if _, err := co.ReceiveBatch(ctx, bufs, make([]shmkit.MessageInfo, 3)); !errors.Is(err, shmkit.ErrConfig) {
		t.Fatalf("short infos: %v, want ErrConfig", err)
	}
	if n, err := pr.SendBatch(ctx, [][]byte{[]byte("m1"), []byte("m2"), []byte("message3"), []byte("m4"), []byte("m5")}); n != 5 || err != nil {
		t.Fatal(n, err)
	}
	infos := make([]shmkit.MessageInfo, 4)
	n, err := co.ReceiveBatch(ctx, bufs, infos)
	if n != 4 || err != nil {
		t.Fatalf("batch: %d, %v", n, err)
	}
	for i, want := range []string{"m1", "m2", "message3", "m4"} {
		got := string(bufs[i][:min(infos[i].Len, len(bufs[i]))])
		if infos[i].Len != len(want) || got != want[:min(len(want), len(bufs[i]))] || infos[i].Seq != uint64(i+1) || infos[i].Publisher != pr.ID() {
			t.Fatalf("message %d: %q %+v, want %q", i, got, infos[i], want)
		}
	}
	if n, err := co.ReceiveBatch(ctx, bufs, infos); n != 1 || err != nil || string(bufs[0][:infos[0].Len]) != "m5" {
		t.Fatalf("the rest: %d, %v", n, err)
	}
}
