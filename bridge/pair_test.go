package bridge

import (
	"context"
	"testing"
	"time"
)

// Two channels standing for two hosts: a bridge out of the first, a
// bridge into the second, core NATS between them. Every message of two
// publishers arrives intact and in order per publisher.
func TestPairCore(t *testing.T) {
	srv := startServer(t, false, nil)
	n := uint64(envInt("SHMKIT_BRIDGE_MSGS", 20_000))
	host1 := newMemChan(16<<10, 256, false)
	host2 := newMemChan(16<<10, 256, false)
	outSrc := host1.subscribe()
	inSink := host2.publisher()
	app := host2.subscribe()

	cfg := Config{URLs: []string{srv.ClientURL()}, Channel: "pair", MaxPending: 1 << 20, ExitWhenIdle: true}
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
}
