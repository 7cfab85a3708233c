package shmkit_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/shmkit/shmkit"
)

// BenchmarkTapOverhead measures what an attached tap costs a publisher:
// 64 B and 1 KiB messages 1 -> 1 (Send, one subscriber draining), in
// phases of tapPhase messages taking turns in the same run: no tap; a tap
// attached that does not read (the publisher's own extra work: the copy);
// a tap attached and reading (the copy plus the reader's cache traffic and,
// on a machine with fewer free cores than busy goroutines, its CPU). It
// reports the publisher's ns/msg in each and the ratios to no tap (1.10 is
// a 10 % drop of the publisher's rate), and the share of messages the
// reading tap missed.
//
//	nice -n 10 go test -run '^$' -bench TapOverhead -benchtime 400000x -count 5 .
func BenchmarkTapOverhead(b *testing.B) {
	for _, size := range []int{64, 1024} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			ch, pub := benchChannel(b, shmkit.Config{MaxMessage: size, RingDepth: 1024})
			name := ch.Name()
			wg := drain(b, ch, 1)
			ctx := context.Background()
			msg := make([]byte, size)
			var spent [3]time.Duration
			var sent [3]int
			var tapGot, tapMissed uint64
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			for done, phase := 0, 0; done < b.N; phase++ {
				n := min(tapPhase, b.N-done)
				kind := phase % 3
				var tap *shmkit.Tap
				stop := func() {}
				if kind > 0 {
					b.StopTimer()
					var err error
					if tap, err = shmkit.OpenTap(name); err != nil {
						b.Fatal(err)
					}
					if kind == 2 {
						stop = readTap(tap)
					}
					b.StartTimer()
				}
				start := time.Now()
				for range n {
					if err := pub.Send(ctx, msg); err != nil {
						b.Fatal(err)
					}
				}
				spent[kind] += time.Since(start)
				sent[kind] += n
				done += n
				if tap != nil {
					b.StopTimer()
					stop()
					if kind == 2 {
						st := tap.Stats()
						tapGot += st.Received
						tapMissed += st.Missed
					}
					tap.Close()
					b.StartTimer()
				}
			}
			b.StopTimer()
			pub.Close()
			wg.Wait()
			if sent[0] > 0 && sent[1] > 0 && sent[2] > 0 {
				per := func(k int) float64 { return float64(spent[k].Nanoseconds()) / float64(sent[k]) }
				b.ReportMetric(per(0), "ns/msg-none")
				b.ReportMetric(per(1), "ns/msg-idletap")
				b.ReportMetric(per(2), "ns/msg-tap")
				b.ReportMetric(per(1)/per(0), "idletap/none")
				b.ReportMetric(per(2)/per(0), "tap/none")
				if tapGot+tapMissed > 0 {
					b.ReportMetric(float64(tapMissed)/float64(tapGot+tapMissed), "tap-missed/msg")
				}
			}
		})
	}
}

// tapPhase is the number of messages of one benchmark phase.
const tapPhase = 4000

// readTap reads tap in a goroutine until the returned stop is called; the
// tap's own counters say what it saw.
func readTap(tap *shmkit.Tap) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			if _, err := tap.Receive(ctx); err != nil && ctx.Err() != nil {
				return
			}
		}
	}()
	return func() { cancel(); wg.Wait() }
}

// BenchmarkTapPipeline is BenchmarkChannelPipeline (loan, publish,
// receive, release of a 64-byte message in one goroutine) without a tap
// and with one attached that does not read: the publisher's added work per
// message, without the cache traffic of a reader; for instruction counts
// (callgrind) and profiles.
func BenchmarkTapPipeline(b *testing.B) {
	for _, kind := range []string{"none", "idletap"} {
		b.Run(kind, func(b *testing.B) {
			ch, pub := benchChannel(b, shmkit.Config{MaxMessage: 64, RingDepth: 1024})
			name := ch.Name()
			sub, err := ch.Subscriber()
			if err != nil {
				b.Fatal(err)
			}
			if kind == "idletap" {
				tap, err := shmkit.OpenTap(name)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { tap.Close() })
			}
			runPipeline(b, pub, sub)
		})
	}
}
