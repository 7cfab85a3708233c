package bridge

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/shmkit/shmkit"
)

// BenchmarkBridgeVsNATS measures messages per second through the bridge
// pair (a publisher on channel 1 -> out bridge -> NATS -> in bridge ->
// channel 2 -> a subscriber), once with one channel message per NATS
// message and once with batches of up to 64 (Config.Batch), against a
// plain nats.go publisher/subscriber pair with the same payloads (mixed
// sizes, ~0.5 KiB mean), through the same embedded server, in alternating
// rounds; it reports the medians and the ratios to the plain pair (goal
// >= 0.8). b.N messages per side, split over 5 rounds:
//
//	go test -run '^$' -bench BridgeVsNATS -benchtime 100000x ./bridge/
func BenchmarkBridgeVsNATS(b *testing.B) {
	srv := startServer(b, false, nil)
	url := srv.ClientURL()
	// Two bridge pairs: one message per NATS message, and batches of up
	// to 64 (Config.Batch).
	type pair struct {
		pub *shmkit.Publisher
		app Source
	}
	newPair := func(tag string, batch int) pair {
		cfg := shmkit.Config{MaxMessage: 16 << 10, RingDepth: 1024}
		host1 := newChannel(b, tag+"1", cfg)
		host2 := newChannel(b, tag+"2", cfg)
		outSrc, _ := join(b, host1, Out)
		_, inSink := join(b, host2, In)
		app := appSubscriber(b, host2)
		bcfg := Config{URLs: []string{url}, Channel: tag, MaxPending: 1 << 20, MaxPendingBytes: 1 << 30, Batch: batch}
		bcfg.Direction = In
		runBridge(b, newBridge(b, bcfg, nil, inSink))
		bcfg.Direction = Out
		runBridge(b, newBridge(b, bcfg, outSrc, nil))
		pub, err := host1.Publisher()
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = pub.Close() })
		return pair{pub, app}
	}
	single, batched := newPair("bench", 1), newPair("benchb", 64)

	// The plain pair.
	pc, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	defer pc.Close()
	sc, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	defer sc.Close()
	var got atomic.Int64
	gotAll := make(chan struct{}, 1)
	var want int64
	sub, err := sc.Subscribe("plain.bench", func(m *nats.Msg) {
		if got.Add(1) == atomic.LoadInt64(&want) {
			gotAll <- struct{}{}
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	_ = sub.SetPendingLimits(-1, -1)
	_ = sc.Flush()
	waitFor(b, "subscriptions", 10*time.Second, func() bool { return srv.NumSubscriptions() >= 3 })

	const rounds = 5
	per := max(b.N/rounds, 1)
	buf := make([]byte, 16<<10)
	ctx := context.Background()
	seqs := map[*shmkit.Publisher]uint64{}
	plain := func() time.Duration {
		got.Store(0)
		atomic.StoreInt64(&want, int64(per))
		start := time.Now()
		for i := range per {
			if err := pc.Publish("plain.bench", payload(buf, 1, uint64(i+1))); err != nil {
				b.Fatal(err)
			}
		}
		select {
		case <-gotAll:
		case <-time.After(60 * time.Second):
			b.Fatalf("plain: %d of %d after 60s", got.Load(), per)
		}
		return time.Since(start)
	}
	viaBridge := func(p pair) time.Duration {
		pub, app, seq := p.pub, p.app, seqs[p.pub]
		start := time.Now()
		errc := make(chan error, 1)
		go func() {
			for i := range per {
				if err := pub.Send(ctx, payload(buf, 1, seq+uint64(i)+1)); err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
		rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		for i := range per {
			m, err := app.Receive(rctx)
			if err != nil {
				b.Fatalf("bridge: message %d of %d: %v", i, per, err)
			}
			_ = m.Release()
		}
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
		seqs[pub] = seq + uint64(per)
		return time.Since(start)
	}
	b.ResetTimer()
	var tp, tb, tbb []float64
	for range rounds {
		tp = append(tp, float64(per)/plain().Seconds())
		tb = append(tb, float64(per)/viaBridge(single).Seconds())
		tbb = append(tbb, float64(per)/viaBridge(batched).Seconds())
	}
	b.StopTimer()
	slices.Sort(tp)
	slices.Sort(tb)
	slices.Sort(tbb)
	m := rounds / 2
	b.ReportMetric(tp[m], "nats-msgs/s")
	b.ReportMetric(tb[m], "bridge-msgs/s")
	b.ReportMetric(tbb[m], "bridge-batch64-msgs/s")
	b.ReportMetric(tb[m]/tp[m], "ratio")
	b.ReportMetric(tbb[m]/tp[m], "ratio-batch64")
	b.Logf("per round %d msgs; nats msgs/s %.0f; bridge msgs/s %.0f; bridge with batches msgs/s %.0f", per, tp, tb, tbb)
}
