package bridge

import (
	"context"
	"encoding/binary"
	"runtime"
	"slices"
	"strconv"
	"sync/atomic"
	"syscall"
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
		out *Bridge
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
		out := newBridge(b, bcfg, outSrc, nil)
		runBridge(b, out)
		pub, err := host1.Publisher()
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = pub.Close() })
		return pair{pub, app, out}
	}
	single, batched := newPair("bench", 1), newPair("benchb", 64)

	// The plain pair.
	plainPub := newPlainPair(b, url, "plain.bench")
	waitFor(b, "subscriptions", 10*time.Second, func() bool {
		return interest(srv, "shmkit.bench") && interest(srv, "shmkit.benchb") && interest(srv, "plain.bench")
	})

	const rounds = 5
	per := max(b.N/rounds, 1)
	buf := make([]byte, 16<<10)
	ctx := context.Background()
	seqs := map[*shmkit.Publisher]uint64{}
	plain := func() time.Duration {
		return plainPub.send(per, func(i int) error {
			return plainPub.pub.Publish("plain.bench", payload(buf, 1, uint64(i+1)))
		})
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
	// Each phase's CPU time per message (the whole process: publishers,
	// bridges, server and subscribers) says what a phase costs even when
	// other jobs share the machine and throughput swings with them.
	var allocs [3]float64 // heap allocations per message, last round
	cpu := func(f func() time.Duration) (msgsPerSec, cpuNs float64) {
		c0 := cpuTime()
		d := f()
		return float64(per) / d.Seconds(), float64(cpuTime()-c0) / float64(per)
	}
	mallocs := func() uint64 {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.Mallocs
	}
	b.ResetTimer()
	var tp, tb, tbb, cp, cb, cbb []float64
	for range rounds {
		m0 := mallocs()
		r, c := cpu(plain)
		tp, cp = append(tp, r), append(cp, c)
		m1 := mallocs()
		r, c = cpu(func() time.Duration { return viaBridge(single) })
		tb, cb = append(tb, r), append(cb, c)
		m2 := mallocs()
		r, c = cpu(func() time.Duration { return viaBridge(batched) })
		tbb, cbb = append(tbb, r), append(cbb, c)
		m3 := mallocs()
		allocs = [3]float64{float64(m1-m0) / float64(per), float64(m2-m1) / float64(per), float64(m3-m2) / float64(per)}
	}
	b.StopTimer()
	for _, v := range [][]float64{tp, tb, tbb, cp, cb, cbb} {
		slices.Sort(v)
	}
	m := rounds / 2
	b.ReportMetric(cp[m], "nats-cpu-ns/msg")
	b.ReportMetric(cb[m], "bridge-cpu-ns/msg")
	b.ReportMetric(cbb[m], "bridge-batch64-cpu-ns/msg")
	b.ReportMetric(tp[m], "nats-msgs/s")
	b.ReportMetric(tb[m], "bridge-msgs/s")
	b.ReportMetric(tbb[m], "bridge-batch64-msgs/s")
	b.ReportMetric(tb[m]/tp[m], "ratio")
	b.ReportMetric(tbb[m]/tp[m], "ratio-batch64")
	if st := batched.out.Stats(); st.OutFrames > 0 {
		b.ReportMetric(float64(st.OutMsgs)/float64(st.OutFrames), "msgs/frame")
	}
	b.Logf("per round %d msgs; nats msgs/s %.0f; bridge msgs/s %.0f; bridge with batches msgs/s %.0f", per, tp, tb, tbb)
	b.Logf("CPU ns per message: nats %.0f; bridge %.0f; bridge with batches %.0f", cp, cb, cbb)
	b.Logf("heap allocations per message (last round): nats %.2f; bridge %.2f; bridge with batches %.2f", allocs[0], allocs[1], allocs[2])
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkHeaderCost measures what headers cost a plain nats.go
// publisher/subscriber pair (same payloads as BenchmarkBridgeVsNATS): no
// header, the bridge's one Shmkit header, and four headers (the bridge's
// format before it had one), in alternating rounds; it reports the medians
// as ratios to the pair without headers:
//
//	go test -run '^$' -bench HeaderCost -benchtime 100000x ./bridge/
func BenchmarkHeaderCost(b *testing.B) {
	srv := startServer(b, false, nil)
	url := srv.ClientURL()
	pp := newPlainPair(b, url, "hdr.bench")
	const rounds = 5
	per := max(b.N/rounds, 1)
	buf := make([]byte, 16<<10)
	run := func(h nats.Header, set func(seq uint64)) float64 {
		m := &nats.Msg{Subject: "hdr.bench", Header: h}
		d := pp.send(per, func(i int) error {
			m.Data = payload(buf, 1, uint64(i+1))
			set(uint64(i + 1))
			return pp.pub.PublishMsg(m)
		})
		return float64(per) / d.Seconds()
	}
	one := nats.Header{Header: {""}}
	four := nats.Header{"Shmkit-Channel": {"bench"}, "Shmkit-Origin": {"0123456789abcdef"}, "Shmkit-Publisher": {"3.0"}, "Shmkit-Seq": {""}}
	meta := Meta{Channel: "bench", Origin: "0123456789abcdef", Publisher: 3}
	var none, ones, fours []float64
	b.ResetTimer()
	for range rounds {
		none = append(none, run(nil, func(uint64) {}))
		ones = append(ones, run(one, func(s uint64) { meta.Seq = s; one[Header][0] = meta.String() }))
		fours = append(fours, run(four, func(s uint64) { four["Shmkit-Seq"][0] = strconv.FormatUint(s, 10) }))
	}
	b.StopTimer()
	for _, v := range [][]float64{none, ones, fours} {
		slices.Sort(v)
	}
	m := rounds / 2
	b.ReportMetric(none[m], "none-msgs/s")
	b.ReportMetric(ones[m]/none[m], "one-header-ratio")
	b.ReportMetric(fours[m]/none[m], "four-headers-ratio")
	b.Logf("msgs/s: none %.0f; one %.0f; four %.0f", none, ones, fours)
}

// plainPair is a plain nats.go publisher and subscriber on one subject,
// the baseline of the bridge benchmarks.
type plainPair struct {
	b         *testing.B
	pub       *nats.Conn
	got, want atomic.Int64
	gotAll    chan struct{}
}

func newPlainPair(b *testing.B, url, subject string) *plainPair {
	p := &plainPair{b: b, gotAll: make(chan struct{}, 1)}
	var err error
	if p.pub, err = nats.Connect(url); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(p.pub.Close)
	sc, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(sc.Close)
	sub, err := sc.Subscribe(subject, func(*nats.Msg) {
		if p.got.Add(1) == p.want.Load() {
			p.gotAll <- struct{}{}
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	_ = sub.SetPendingLimits(-1, -1)
	if err := sc.Flush(); err != nil {
		b.Fatal(err)
	}
	return p
}

// send publishes n messages with publish(0..n-1) and returns the time until
// the subscriber had them all.
func (p *plainPair) send(n int, publish func(i int) error) time.Duration {
	p.got.Store(0)
	p.want.Store(int64(n))
	start := time.Now()
	for i := range n {
		if err := publish(i); err != nil {
			p.b.Fatal(err)
		}
	}
	select {
	case <-p.gotAll:
	case <-time.After(60 * time.Second):
		p.b.Fatalf("plain pair: %d of %d after 60s", p.got.Load(), n)
	}
	return time.Since(start)
}

// BenchmarkPair64 measures messages per second of 64-byte messages
// through the bridge pair with every bridge setting at its default (a
// publisher's Send on channel 1 -> out bridge -> NATS -> in bridge ->
// channel 2 -> a subscriber's ReceiveInto) against a plain nats.go
// publisher -> NATS -> subscriber pair with the same payloads through the
// same embedded server, in alternating rounds; it reports the medians, the
// ratio (issue 19's goal: >= 0.8) and each phase's CPU time per message.
// b.N messages per side, split over 5 rounds (SHMKIT_BRIDGE_BENCH_BATCH
// sets Config.Batch):
//
//	go test -run '^$' -bench Pair64 -benchtime 300000x -count 6 ./bridge/
func BenchmarkPair64(b *testing.B) {
	srv := startServer(b, false, nil)
	url := srv.ClientURL()
	const size = 64
	cfg := shmkit.Config{MaxMessage: 16 << 10, RingDepth: 1024}
	host1 := newChannel(b, "p64a", cfg)
	host2 := newChannel(b, "p64b", cfg)
	outSrc, _ := join(b, host1, Out)
	_, inSink := join(b, host2, In)
	app, err := host2.Subscriber()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = app.Close() })
	bcfg := Config{URLs: []string{url}, Channel: "p64", Batch: envInt("SHMKIT_BRIDGE_BENCH_BATCH", 0)}
	bcfg.Direction = In
	runBridge(b, newBridge(b, bcfg, nil, inSink))
	bcfg.Direction = Out
	out := newBridge(b, bcfg, outSrc, nil)
	runBridge(b, out)
	pub, err := host1.Publisher()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = pub.Close() })
	plainPub := newPlainPair(b, url, "plain.p64")
	waitFor(b, "subscriptions", 10*time.Second, func() bool {
		return interest(srv, "shmkit.p64") && interest(srv, "plain.p64")
	})

	const rounds = 5
	per := max(b.N/rounds, 1)
	msg := make([]byte, size)
	ctx := context.Background()
	var seq uint64
	plain := func() time.Duration {
		return plainPub.send(per, func(i int) error {
			binary.LittleEndian.PutUint64(msg, uint64(i+1))
			return plainPub.pub.Publish("plain.p64", msg)
		})
	}
	viaBridge := func() time.Duration {
		start := time.Now()
		errc := make(chan error, 1)
		go func() {
			m := make([]byte, size)
			for i := range per {
				binary.LittleEndian.PutUint64(m, seq+uint64(i)+1)
				if err := pub.Send(ctx, m); err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
		rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		buf := make([]byte, 16<<10)
		for i := range per {
			n, err := app.ReceiveInto(rctx, buf)
			if err != nil || n != size {
				b.Fatalf("bridge: message %d of %d: %d bytes, %v", i, per, n, err)
			}
			if got := binary.LittleEndian.Uint64(buf); got != seq+uint64(i)+1 {
				b.Fatalf("bridge: message %d of %d is %d", i, per, got)
			}
		}
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
		seq += uint64(per)
		return time.Since(start)
	}
	measure := func(f func() time.Duration) (msgsPerSec, cpuNs float64) {
		c0 := cpuTime()
		d := f()
		return float64(per) / d.Seconds(), float64(cpuTime()-c0) / float64(per)
	}
	b.ResetTimer()
	var tp, tb, cp, cb []float64
	for range rounds {
		r, c := measure(plain)
		tp, cp = append(tp, r), append(cp, c)
		r, c = measure(viaBridge)
		tb, cb = append(tb, r), append(cb, c)
	}
	b.StopTimer()
	for _, v := range [][]float64{tp, tb, cp, cb} {
		slices.Sort(v)
	}
	m := rounds / 2
	b.ReportMetric(tp[m], "nats-msgs/s")
	b.ReportMetric(tb[m], "bridge-msgs/s")
	b.ReportMetric(tb[m]/tp[m], "ratio")
	b.ReportMetric(cp[m], "nats-cpu-ns/msg")
	b.ReportMetric(cb[m], "bridge-cpu-ns/msg")
	if st := out.Stats(); st.OutFrames > 0 {
		b.ReportMetric(float64(st.OutMsgs)/float64(st.OutFrames), "msgs/frame")
	}
	b.Logf("per round %d msgs; nats msgs/s %.0f; bridge msgs/s %.0f", per, tp, tb)
	b.Logf("CPU ns per message: nats %.0f; bridge %.0f", cp, cb)
}
