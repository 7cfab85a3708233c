package bridge

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// Two channels standing for two hosts: a bridge out of the first, a
// bridge into the second, core NATS between them. Every message of two
// publishers arrives intact and in order per publisher: through the
// batch calls (BatchReceiver out, BatchSink in), through TryReceive and
// one Publish per message, and with batches off.
func TestPairCore(t *testing.T) {
	srv := startServer(t, false, nil)
	n := uint64(envInt("SHMKIT_BRIDGE_MSGS", 20_000))
	for _, v := range []struct {
		name  string
		calls bool // BatchReceiver and BatchSink
		batch int
	}{{"batch-calls", true, 0}, {"try-receive", false, 0}, {"no-batches", true, 1}} {
		t.Run(v.name, func(t *testing.T) {
			host1 := newMemChan(16<<10, 256, false)
			host2 := newMemChan(16<<10, 256, false)
			memSrc, memSink := host1.subscribe(), host2.publisher()
			var outSrc Source = memSrc
			var inSink Sink = memSink
			if !v.calls {
				outSrc, inSink = trySource{memSrc}, singleSink{memSink}
			}
			app := host2.subscribe()

			cfg := Config{URLs: []string{srv.ClientURL()}, Channel: "pair-" + v.name, MaxPending: 1 << 20, ExitWhenIdle: true, Batch: v.batch}
			in, out, stopIn, stopOut := startPair(t, srv, cfg, outSrc, inSink)

			pubErr := make(chan error, 1)
			go func() { pubErr <- publishAll(host1, 2, n/2) }()
			var oc orderCheck
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Second)
			defer cancel()
			if err := receiveN(ctx, app, n/2*2, &oc, false); err != nil {
				t.Fatalf("%v\nout: %+v\nin: %+v", err, out.Stats(), in.Stats())
			}
			if err := <-pubErr; err != nil {
				t.Fatal(err)
			}
			so, si := stopClean(t, n/2*2, out, in, stopOut, stopIn)
			t.Logf("out %+v", so)
			t.Logf("in  %+v", si)
			if got := host1.released.Load(); got != host1.received.Load() {
				t.Errorf("out side released %d of %d received messages", got, host1.received.Load())
			}
			rb, pb := memSrc.batches.Load(), memSink.batches.Load()
			t.Logf("ReceiveBatch calls %d, PublishBatch calls %d, NATS messages %d", rb, pb, so.OutFrames)
			if want := v.calls && v.batch != 1; (rb > 0) != want || (pb > 0) != want {
				t.Errorf("batch calls used: ReceiveBatch %d, PublishBatch %d times (want them used: %v)", rb, pb, want)
			}
			if v.batch != 1 && so.OutFrames >= so.OutMsgs {
				t.Errorf("%d NATS messages for %d channel messages: no batches", so.OutFrames, so.OutMsgs)
			}
		})
	}
}

// lateSink takes one message, holds it until the bridge is stopped, and
// then reports it published: the message the in side's callback was
// delivering when Run's context ended.
type lateSink struct {
	entered chan struct{}
	ok      atomic.Uint64
}

func (s *lateSink) Publish(ctx context.Context, p []byte) error {
	select {
	case s.entered <- struct{}{}:
	default:
	}
	<-ctx.Done()
	time.Sleep(20 * time.Millisecond) // widens the window a Run that did not wait would lose
	s.ok.Add(1)
	return nil
}

func (s *lateSink) MaxMessage() int          { return 1 << 20 }
func (s *lateSink) PublisherID() (int, bool) { return 0, false }

// Run returns only after the core-NATS callback has returned, so Stats
// taken right after it count the message that was being delivered (CI saw
// InMsgs one short of what the application had received).
func TestInStopCounts(t *testing.T) {
	srv := startServer(t, false, nil)
	sink := &lateSink{entered: make(chan struct{}, 1)}
	cfg := Config{URLs: []string{srv.ClientURL()}, Channel: "late", Direction: In}
	in := newBridge(t, cfg, nil, sink)
	stop := runBridge(t, in)
	waitFor(t, "the in side's subscription", 10*time.Second, func() bool { return interest(srv, in.Config().Subject) })
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := nc.Publish(in.Config().Subject, []byte("m")); err != nil {
		t.Fatal(err)
	}
	<-sink.entered
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got, want := in.Stats().InMsgs, sink.ok.Load(); got != want || want != 1 {
		t.Fatalf("after Run: InMsgs %d, the sink published %d (want 1)", got, want)
	}
}
