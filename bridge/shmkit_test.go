package bridge

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/shmkit/shmkit"
)

// newChannel creates a named shmkit channel for this test, removed at the
// end.
func newChannel(tb testing.TB, tag string, cfg shmkit.Config) *shmkit.Channel {
	tb.Helper()
	name := fmt.Sprintf("shmkit-bridge-%s-%d-%d", tag, os.Getpid(), time.Now().UnixNano()%1e9)
	ch, err := shmkit.Create(name, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = ch.Close(); _ = shmkit.Remove(name) })
	return ch
}

func join(tb testing.TB, ch *shmkit.Channel, d Direction) (Source, Sink) {
	tb.Helper()
	src, sink, leave, err := JoinShmkit(ch, d)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = leave() })
	return src, sink
}

func appSubscriber(tb testing.TB, ch *shmkit.Channel) Source {
	tb.Helper()
	s, err := ch.Subscriber()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return ShmkitSource{S: s}
}

// sendAll publishes count messages from each of pubs new publishers of
// ch, concurrently, then closes them.
func sendAll(ch *shmkit.Channel, pubs int, first uint32, count uint64) error {
	var wg sync.WaitGroup
	errs := make(chan error, pubs)
	for p := range pubs {
		pub, err := ch.Publisher()
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer pub.Close()
			buf := make([]byte, 16<<10)
			for seq := uint64(1); seq <= count; seq++ {
				if err := pub.Send(context.Background(), payload(buf, first+uint32(p), seq)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

var chanCfg = shmkit.Config{MaxMessage: 16 << 10, RingDepth: 256}

// The proof of issue 11 on real channels: two channels standing for two
// hosts, a bridge out of the first, a bridge into the second, core NATS
// between; two publishers' messages of mixed sizes arrive intact and in
// order per publisher. SHMKIT_BRIDGE_MSGS sets the count (default 100 k).
func TestPairShmkit(t *testing.T) {
	for _, batch := range []int{1, 64} {
		t.Run(fmt.Sprintf("batch%d", batch), func(t *testing.T) { testPairShmkit(t, batch) })
	}
}

func testPairShmkit(t *testing.T, batch int) {
	srv := startServer(t, false, nil)
	n := uint64(envInt("SHMKIT_BRIDGE_MSGS", 100_000)) / 2 * 2
	host1 := newChannel(t, "h1", chanCfg)
	host2 := newChannel(t, "h2", chanCfg)
	outSrc, _ := join(t, host1, Out)
	_, inSink := join(t, host2, In)
	app := appSubscriber(t, host2)

	cfg := Config{URLs: []string{srv.ClientURL()}, Channel: "pair", MaxPending: 1 << 20, MaxPendingBytes: 1 << 30, Batch: batch, ExitWhenIdle: true}
	in, out, stopIn, stopOut := startPair(t, srv, cfg, outSrc, inSink)

	start := time.Now()
	pubErr := make(chan error, 1)
	go func() { pubErr <- sendAll(host1, 2, 1, n/2) }()
	var oc orderCheck
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Second)
	defer cancel()
	if err := receiveN(ctx, app, n, &oc, false); err != nil {
		t.Fatalf("%v\nout: %+v\nin: %+v", err, out.Stats(), in.Stats())
	}
	el := time.Since(start)
	if err := <-pubErr; err != nil {
		t.Fatal(err)
	}
	so, _ := stopClean(t, n, out, in, stopOut, stopIn)
	t.Logf("%d messages, %d bytes in %v (%.0f msg/s, machine shared)", n, so.OutBytes, el, float64(n)/el.Seconds())
}

// Two hosts, a Both bridge on each, one subject: each host's subscriber
// gets its own messages and the other host's, each once; nothing loops.
func TestBothNoLoop(t *testing.T) {
	srv := startServer(t, false, nil)
	const n = 2000
	var hosts [2]*shmkit.Channel
	var bridges [2]*Bridge
	var apps [2]Source
	for i := range hosts {
		hosts[i] = newChannel(t, fmt.Sprint("both", i), chanCfg)
		src, sink := join(t, hosts[i], Both)
		apps[i] = appSubscriber(t, hosts[i])
		bridges[i] = newBridge(t, Config{URLs: []string{srv.ClientURL()}, Channel: "both", Direction: Both, Batch: 16 * i}, src, sink)
	}
	for _, b := range bridges {
		runBridge(t, b)
	}
	waitFor(t, "both subscriptions", 10*time.Second, func() bool { return srv.GlobalAccount().Interest("shmkit.both") >= 2 })
	// The subscribers read while the publishers send (with policy Block a
	// full subscriber ring holds every publisher of its channel).
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	errs := make(chan error, 4)
	for i, app := range apps {
		go func() {
			var oc orderCheck
			err := receiveN(ctx, app, 2*n, &oc, false)
			if err == nil && (oc.last[1] != n || oc.last[2] != n) {
				err = fmt.Errorf("got %v", oc.last)
			}
			if err != nil {
				err = fmt.Errorf("host %d: %w", i, err)
			}
			errs <- err
		}()
	}
	for i, h := range hosts {
		go func() { errs <- sendAll(h, 1, uint32(i+1), n) }()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for i, b := range bridges {
		waitFor(t, "the bridges' counters", 10*time.Second, func() bool {
			s := b.Stats()
			return s.OutMsgs == n && s.InMsgs == n && s.OutLooped == n
		})
		s := b.Stats()
		t.Logf("host %d: %+v", i, s)
		if s.InEcho != 0 || s.InLost != 0 || s.InDuplicates != 0 {
			t.Errorf("host %d: %+v", i, s)
		}
		// Both participants of a Both bridge carry its figures (written
		// every RelayEvery while it runs).
		waitFor(t, "the relay blocks", 10*time.Second, func() bool {
			out, in := relayOf(t, hosts[i], RelayKindOut), relayOf(t, hosts[i], RelayKindIn)
			return out.Messages == n && in.Messages == n
		})
	}
	// Nothing more arrives: a loop would keep both subscribers busy.
	for i, app := range apps {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		m, err := app.Receive(ctx)
		cancel()
		if err == nil {
			_ = m.Release()
			t.Errorf("host %d: an extra message (a loop)", i)
		} else if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, ErrNoPublishers) {
			t.Errorf("host %d: %v", i, err)
		}
	}
}

// Bad input: a message over the server's max_payload is a counted drop on
// the out side, one over the second channel's MaxMessage a counted drop
// on the in side; the in side reports the first as lost; every other
// message arrives.
func TestTooLarge(t *testing.T) {
	srv := startServer(t, false, func(o *server.Options) { o.MaxPayload = 8 << 10 })
	host1 := newChannel(t, "big1", shmkit.Config{MaxMessage: 16 << 10, RingDepth: 64})
	host2 := newChannel(t, "big2", shmkit.Config{MaxMessage: 2 << 10, RingDepth: 64})
	outSrc, _ := join(t, host1, Out)
	_, inSink := join(t, host2, In)
	app := appSubscriber(t, host2)
	cfg := Config{URLs: []string{srv.ClientURL()}, Channel: "big", ExitWhenIdle: true}
	in, out, stopIn, stopOut := startPair(t, srv, cfg, outSrc, inSink)

	pub, err := host1.Publisher()
	if err != nil {
		t.Fatal(err)
	}
	size := func(i int) int {
		switch i {
		case 10:
			return 10 << 10 // over max_payload
		case 20:
			return 3 << 10 // over host 2's MaxMessage
		}
		return 1 + i
	}
	for i := range 100 {
		msg := make([]byte, size(i))
		msg[0] = byte(i)
		if err := pub.Send(context.Background(), msg); err != nil {
			t.Fatal(err)
		}
	}
	_ = pub.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 100 {
		if i == 10 || i == 20 {
			continue
		}
		m, err := app.Receive(ctx)
		if err != nil {
			t.Fatalf("message %d: %v\nout %+v\nin %+v", i, err, out.Stats(), in.Stats())
		}
		if b := m.Bytes(); len(b) != size(i) || b[0] != byte(i) {
			t.Fatalf("got %d bytes starting %d, want message %d", len(b), b[0], i)
		}
		_ = m.Release()
	}
	if err := stopOut(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the in side's counters", 10*time.Second, func() bool { return in.Stats().InMsgs == 98 })
	if err := stopIn(); err != nil {
		t.Fatal(err)
	}
	so, si := out.Stats(), in.Stats()
	t.Logf("out %+v\nin %+v", so, si)
	if so.OutDrops != 1 || so.OutMsgs != 99 {
		t.Errorf("out side: %d drops, %d sent; want 1, 99", so.OutDrops, so.OutMsgs)
	}
	if si.InDrops != 1 || si.InLost != 1 {
		t.Errorf("in side: %d drops, %d lost; want 1, 1", si.InDrops, si.InLost)
	}
	// Run wrote its final figures into the channels' relay blocks.
	if got, want := relayOf(t, host1, RelayKindOut), outRelay(so); got != want {
		t.Errorf("host 1 relay block %+v, the out side's Stats say %+v", got, want)
	}
	if got, want := relayOf(t, host2, RelayKindIn), inRelay(si); got != want {
		t.Errorf("host 2 relay block %+v, the in side's Stats say %+v", got, want)
	}
}

// relayOf returns the relay figures of ch's participant of kind (failing
// unless exactly one has it).
func relayOf(tb testing.TB, ch *shmkit.Channel, kind string) shmkit.RelayStats {
	tb.Helper()
	st, err := ch.Stats()
	if err != nil {
		tb.Fatal(err)
	}
	var out []shmkit.RelayStats
	for _, p := range st.Participants {
		if p.Relay.Kind == kind {
			out = append(out, p.Relay)
		}
	}
	if len(out) != 1 {
		tb.Fatalf("%s: %d participants of relay kind %q: %+v", ch.Name(), len(out), kind, st.Participants)
	}
	return out[0]
}

// ShmkitSink.PublishBatch puts a batch into a pub/sub channel (one
// SendBatch) and into a work queue (one Publish each), in order; a message
// over MaxMessage ends the batch with its index and ErrTooLarge.
func TestSinkPublishBatch(t *testing.T) {
	for _, pat := range []shmkit.Pattern{shmkit.PubSub, shmkit.WorkQueue} {
		t.Run(pat.String(), func(t *testing.T) {
			ch := newChannel(t, "pb", shmkit.Config{Pattern: pat, MaxMessage: 64, RingDepth: 64})
			var sub *shmkit.Subscriber
			if pat == shmkit.WorkQueue {
				c, err := ch.Consumer()
				if err != nil {
					t.Fatal(err)
				}
				sub = c.Subscriber
			} else {
				var err error
				if sub, err = ch.Subscriber(); err != nil {
					t.Fatal(err)
				}
			}
			defer sub.Close()
			_, sink := join(t, ch, In)
			bs, ok := sink.(BatchSink)
			if !ok {
				t.Fatal("ShmkitSink is not a BatchSink")
			}
			ctx := context.Background()
			msgs := [][]byte{[]byte("one"), []byte("two"), make([]byte, 65), []byte("four")}
			n, err := bs.PublishBatch(ctx, msgs)
			if n != 2 || !errors.Is(err, ErrTooLarge) {
				t.Fatalf("PublishBatch: %d, %v (want 2, ErrTooLarge)", n, err)
			}
			if n, err = bs.PublishBatch(ctx, msgs[3:]); n != 1 || err != nil {
				t.Fatalf("PublishBatch: %d, %v (want 1, nil)", n, err)
			}
			buf := make([]byte, 64)
			for _, want := range []string{"one", "two", "four"} {
				n, err := sub.ReceiveInto(ctx, buf)
				if err != nil || string(buf[:n]) != want {
					t.Fatalf("got %q, %v; want %q", buf[:n], err, want)
				}
			}
		})
	}
}

// A work queue on both hosts: JoinShmkit joins host 1 as a consumer and
// host 2 as a producer; every message of host 1's producer reaches host
// 2's consumer, in order (one producer, one consumer each side).
func TestWorkQueueBridge(t *testing.T) {
	srv := startServer(t, false, nil)
	const n = 3000
	cfg := chanCfg
	cfg.Pattern = shmkit.WorkQueue
	host1 := newChannel(t, "wq1", cfg)
	host2 := newChannel(t, "wq2", cfg)
	outSrc, _ := join(t, host1, Out)
	_, inSink := join(t, host2, In)
	cons, err := host2.Consumer()
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	in, out, stopIn, stopOut := startPair(t, srv, Config{URLs: []string{srv.ClientURL()}, Channel: "wq", ExitWhenIdle: true}, outSrc, inSink)
	prod, err := host1.Producer()
	if err != nil {
		t.Fatal(err)
	}
	pubErr := make(chan error, 1)
	go func() {
		defer prod.Close()
		buf := make([]byte, 16<<10)
		for seq := uint64(1); seq <= n; seq++ {
			if err := prod.Send(context.Background(), payload(buf, 1, seq)); err != nil {
				pubErr <- err
				return
			}
		}
		pubErr <- nil
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var oc orderCheck
	if err := receiveN(ctx, ShmkitSource{S: cons.Subscriber}, n, &oc, false); err != nil {
		t.Fatalf("%v\nout: %+v\nin: %+v", err, out.Stats(), in.Stats())
	}
	if err := <-pubErr; err != nil {
		t.Fatal(err)
	}
	stopClean(t, n, out, in, stopOut, stopIn)
}
