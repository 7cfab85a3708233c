package bridge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/shmkit/shmkit"
)

// An unreachable server mid-stream: the out side stops receiving, so the
// channel's policy (here DropNewest) drops for the bridge's subscription
// and counts; memory stays bounded. The bridge reconnects when the server
// is back, reports what its subscription missed, and the in side reports
// the same messages as lost.
func TestServerGoneAndBack(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	fixed := func(o *server.Options) { o.Port = port }
	srv := startServer(t, false, fixed)

	host1 := newChannel(t, "gone1", shmkit.Config{MaxMessage: 1 << 10, RingDepth: 16, Policy: shmkit.DropNewest})
	host2 := newChannel(t, "gone2", shmkit.Config{MaxMessage: 1 << 10, RingDepth: 1024})
	outSrc, _ := join(t, host1, Out)
	_, inSink := join(t, host2, In)
	app := appSubscriber(t, host2)
	cfg := Config{URLs: []string{srv.ClientURL()}, Channel: "gone", ReconnectWait: 20 * time.Millisecond, MaxReconnectWait: 100 * time.Millisecond}
	in, out, _, _ := startPair(t, srv, cfg, outSrc, inSink)
	pub, err := host1.Publisher()
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	msg := make([]byte, 100)
	var seq uint64
	send := func(k int) {
		for range k {
			seq++
			msg[0] = byte(seq)
			if err := pub.Send(ctx, msg); err != nil {
				t.Fatal(err)
			}
		}
	}
	recv := func(k int) {
		for i := range k {
			m, err := app.Receive(ctx)
			if err != nil {
				t.Fatalf("receive %d of %d: %v\nout %+v\nin %+v", i, k, err, out.Stats(), in.Stats())
			}
			_ = m.Release()
		}
	}
	send(10)
	recv(10)

	srv.Shutdown()
	srv.WaitForShutdown()
	waitFor(t, "both sides disconnected", 10*time.Second, func() bool {
		return out.Stats().Disconnects == 1 && in.Stats().Disconnects == 1
	})
	send(1000) // the publisher never waits: DropNewest
	srv = startServer(t, false, fixed)
	waitFor(t, "both sides reconnected", 20*time.Second, func() bool {
		return out.Stats().Reconnects == 1 && in.Stats().Reconnects == 1 && interest(srv, "shmkit."+cfg.Channel)
	})
	// A drop is reported with the next message that gets through: send one
	// at a time until both sides account for every message published.
	accounted := func() bool {
		so, si := out.Stats(), in.Stats()
		return so.OutMsgs+so.OutMissed+so.OutDrops == seq && si.InMsgs+si.InLost == seq
	}
	for deadline := time.Now().Add(20 * time.Second); !accounted(); {
		if time.Now().After(deadline) {
			t.Fatalf("not accounted for: %d published\nout %+v\nin %+v", seq, out.Stats(), in.Stats())
		}
		send(1)
		time.Sleep(5 * time.Millisecond)
	}
	so, si := out.Stats(), in.Stats()
	t.Logf("out %+v\nin %+v", so, si)
	// Delivered + missed by the bridge's subscription + dropped in the
	// reconnect buffer accounts for every message.
	if so.OutMsgs+so.OutMissed+so.OutDrops != seq {
		t.Errorf("out: %d sent + %d missed + %d dropped != %d published", so.OutMsgs, so.OutMissed, so.OutDrops, seq)
	}
	if so.OutMissed == 0 {
		t.Errorf("the out side's subscription missed nothing while the server was gone")
	}
	if si.InMsgs+si.InLost != seq {
		t.Errorf("in: %d delivered + %d reported lost != %d published", si.InMsgs, si.InLost, seq)
	}
	recv(int(si.InMsgs) - 10)
}

// Core NATS without flow control, a receiving channel whose subscriber
// stalls (policy Block): the in side waits in the local publish, at most
// MaxPending messages wait in the client, the rest are dropped by the
// client and counted (InSlow). When the subscriber reads again every
// message is delivered or counted.
func TestInSideBounded(t *testing.T) {
	srv := startServer(t, false, nil)
	host1 := newMemChan(16<<10, 1024, false)
	host2 := newMemChan(16<<10, 4, false)
	outSrc := host1.subscribe()
	inSink := host2.publisher()
	app := host2.subscribe()
	cfg := Config{URLs: []string{srv.ClientURL()}, Channel: "bounded", MaxPending: 16, Batch: 1, ExitWhenIdle: true, NoFlowControl: true}
	in, out, stopIn, _ := startPair(t, srv, cfg, outSrc, inSink)
	const n = 500
	if err := publishAll(host1, 1, n); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the client to drop for the stalled in side", 20*time.Second, func() bool { return in.Stats().InSlow > 0 })
	waitFor(t, "every message sent", 20*time.Second, func() bool { s := out.Stats(); return s.OutMsgs == n && s.OutUnflushed == 0 })
	// Read until the in side has handled or dropped everything. The
	// client counts a drop when its read loop reaches the message, which
	// may be after the last delivered one was read here: so the loop
	// re-reads the counters between short receives instead of blocking in
	// Receive once the figures do not add up yet.
	deadline := time.Now().Add(30 * time.Second)
	got := 0
	for {
		s := in.Stats()
		if s.InMsgs+s.InSlow == n && got == int(s.InMsgs) {
			break
		}
		if time.Now().After(deadline) {
			v, _ := srv.Varz(nil)
			delivered := int64(-1)
			if sub := in.inSub.Load(); sub != nil {
				delivered, _ = sub.Delivered()
			}
			var conns []string
			if cz, err := srv.Connz(nil); err == nil {
				for _, c := range cz.Conns {
					conns = append(conns, fmt.Sprintf("cid %d in %d out %d pending %d B subs %d", c.Cid, c.InMsgs, c.OutMsgs, c.Pending, c.NumSubs))
				}
			}
			t.Fatalf("after %d received: in %+v; server %+v messages in/out, %d slow consumers, connections %q; subscription delivered %d",
				got, s, [2]int64{v.InMsgs, v.OutMsgs}, v.SlowConsumers, conns, delivered)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		m, err := app.Receive(ctx)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			continue
		}
		if err != nil {
			t.Fatalf("after %d: %v; in %+v", got, err, in.Stats())
		}
		_ = m.Release()
		got++
	}
	if err := stopIn(); err != nil {
		t.Fatal(err)
	}
	s := in.Stats()
	t.Logf("in %+v", s)
	if s.InMsgs+s.InSlow != n || s.InSlow == 0 {
		t.Errorf("in: %d delivered + %d dropped by the client != %d", s.InMsgs, s.InSlow, n)
	}
}

// The same stall with flow control (the default): the out side waits for
// the stalled in side instead of overrunning it, the client drops nothing,
// and once the subscriber reads again every message arrives.
func TestFlowControlHoldsBack(t *testing.T) {
	srv := startServer(t, false, nil)
	host1 := newMemChan(16<<10, 1024, false)
	host2 := newMemChan(16<<10, 4, false)
	outSrc := host1.subscribe()
	inSink := host2.publisher()
	app := host2.subscribe()
	cfg := Config{URLs: []string{srv.ClientURL()}, Channel: "held", MaxPending: 16, Batch: 1, ExitWhenIdle: true}
	in, out, stopIn, _ := startPair(t, srv, cfg, outSrc, inSink)
	const n = 500
	pubErr := make(chan error, 1)
	go func() { pubErr <- publishAll(host1, 1, n) }()
	waitFor(t, "the out side to wait for the stalled in side", 20*time.Second, func() bool { return out.Stats().OutFlowWaits > 0 })
	var oc orderCheck
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := receiveN(ctx, app, n, &oc, false); err != nil {
		t.Fatalf("%v\nout %+v\nin %+v", err, out.Stats(), in.Stats())
	}
	if err := <-pubErr; err != nil {
		t.Fatal(err)
	}
	if err := stopIn(); err != nil {
		t.Fatal(err)
	}
	so, si := out.Stats(), in.Stats()
	t.Logf("out waited %d times, %v; in %+v", so.OutFlowWaits, so.OutFlowWait, si)
	if si.InMsgs != n || si.InSlow != 0 || si.InLost != 0 {
		t.Errorf("in: %d delivered, %d dropped by the client, %d lost; want %d, 0, 0", si.InMsgs, si.InSlow, si.InLost, n)
	}
}
