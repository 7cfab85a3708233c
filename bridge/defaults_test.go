package bridge

import (
	"context"
	"os"
	"testing"
	"time"
)

// Issue 18: with every setting at its default, a steady stream of 200 000
// messages between two real channels through a NATS server on localhost
// arrives whole: nothing dropped by the client as a slow consumer, nothing
// lost. SHMKIT_BRIDGE_DEFAULT_MSGS sets the count.
func TestPairDefaultsLoseNothing(t *testing.T) {
	srv := startServer(t, false, nil)
	n := uint64(envInt("SHMKIT_BRIDGE_DEFAULT_MSGS", 200_000)) / 2 * 2
	host1 := newChannel(t, "d1", chanCfg)
	host2 := newChannel(t, "d2", chanCfg)
	outSrc, _ := join(t, host1, Out)
	_, inSink := join(t, host2, In)
	app := appSubscriber(t, host2)

	cfg := Config{URLs: []string{srv.ClientURL()}, Channel: "defaults", ExitWhenIdle: true}
	// Knobs for measuring what each default does (docs/bridge.md); the
	// test itself runs the defaults.
	cfg.Batch = envInt("SHMKIT_BRIDGE_DEFAULT_BATCH", 0)
	cfg.NoFlowControl = os.Getenv("SHMKIT_BRIDGE_NO_FLOW") != ""
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
	so, si := stopClean(t, n, out, in, stopOut, stopIn)
	t.Logf("%d messages in %v (%.0f msg/s, machine shared), %d NATS messages; out waited %d times, %v; in: slow %d lost %d",
		n, el, float64(n)/el.Seconds(), so.OutFrames, so.OutFlowWaits, so.OutFlowWait, si.InSlow, si.InLost)
}
