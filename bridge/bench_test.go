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
// channel 2 -> a subscriber) against a plain nats.go publisher/subscriber
// pair with the same payloads (mixed sizes, ~0.5 KiB mean), through the
// same embedded server, in alternating rounds; it reports both medians and
// their ratio (goal >= 0.8). b.N messages in all, split over 5 rounds per
// side:
//
//	go test -run '^$' -bench BridgeVsNATS -benchtime 100000x ./bridge/
func BenchmarkBridgeVsNATS(b *testing.B) {
	srv := startServer(b, false, nil)
	url := srv.ClientURL()
	cfg := shmkit.Config{MaxMessage: 16 << 10, RingDepth: 1024}
	host1 := newChannel(b, "bench1", cfg)
	host2 := newChannel(b, "bench2", cfg)
	outSrc, _ := join(b, host1, Out)
	_, inSink := join(b, host2, In)
	app := appSubscriber(b, host2)
	bcfg := Config{URLs: []string{url}, Channel: "bench", MaxPending: 1 << 20, MaxPendingBytes: 1 << 30}
	bcfg.Direction = In
	runBridge(b, newBridge(b, bcfg, nil, inSink))
	bcfg.Direction = Out
	runBridge(b, newBridge(b, bcfg, outSrc, nil))
	pub, err := host1.Publisher()
	if err != nil {
		b.Fatal(err)
	}
	defer pub.Close()

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
	waitFor(b, "subscriptions", 10*time.Second, func() bool { return srv.NumSubscriptions() >= 2 })

	const rounds = 5
	per := max(b.N/rounds, 1)
	buf := make([]byte, 16<<10)
	ctx := context.Background()
	var seq uint64
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
	viaBridge := func() time.Duration {
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
		seq += uint64(per)
		return time.Since(start)
	}
	b.ResetTimer()
	var tp, tb []float64
	for range rounds {
		tp = append(tp, float64(per)/plain().Seconds())
		tb = append(tb, float64(per)/viaBridge().Seconds())
	}
	b.StopTimer()
	slices.Sort(tp)
	slices.Sort(tb)
	b.ReportMetric(tp[rounds/2], "nats-msgs/s")
	b.ReportMetric(tb[rounds/2], "bridge-msgs/s")
	b.ReportMetric(tb[rounds/2]/tp[rounds/2], "ratio")
	b.Logf("per round %d msgs; nats msgs/s %.0f; bridge msgs/s %.0f", per, tp, tb)
}
