package shmkit_test

import (
	"context"
	"io"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/shmkit/shmkit"
)

// Benchmarks, in one process (two goroutines on shared memory: the same
// loads and stores as two processes; cross-process figures come from
// shmctl bench). Compare sub-benchmarks of one run only:
//
//	nice -n 10 go test -run '^$' -bench 'Channel' -benchtime 200000x -count 5 .

func benchChannel(b *testing.B, cfg shmkit.Config) (*shmkit.Channel, *shmkit.Publisher) {
	ch, err := shmkit.Create(chanName(b), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ch.Close() })
	pub, err := ch.Publisher()
	if err != nil {
		b.Fatal(err)
	}
	return ch, pub
}

// drain starts n subscribers that receive and release until ErrPeerGone.
func drain(b *testing.B, ch *shmkit.Channel, n int) *sync.WaitGroup {
	var wg sync.WaitGroup
	for range n {
		s, err := ch.Subscriber()
		if err != nil {
			b.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				m, err := s.Receive(context.Background())
				if err != nil {
					return
				}
				m.Release()
			}
		}()
	}
	return &wg
}

// BenchmarkChannel64 streams 64-byte messages 1 -> 1: the channel
// (zero-copy Loan/Publish, Receive/Release) against the bare SPSC ring
// (copy in, copy out) in the same run.
func BenchmarkChannel64(b *testing.B) {
	b.Run("channel-1to1", func(b *testing.B) {
		ch, pub := benchChannel(b, shmkit.Config{MaxMessage: 64, RingDepth: 1024})
		wg := drain(b, ch, 1)
		ctx := context.Background()
		b.SetBytes(64)
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			s, err := pub.LoanContext(ctx, 64)
			if err != nil {
				b.Fatal(err)
			}
			s.Bytes()[0] = 1
			if err := pub.Publish(ctx, s); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		pub.Close()
		wg.Wait()
	})
	b.Run("bare-spsc-ring", func(b *testing.B) {
		enq, deq := bareRing(b, 1024, 64)
		ctx := context.Background()
		done := make(chan struct{})
		go func() {
			buf := make([]byte, 64)
			for range b.N {
				if _, err := deq(ctx, buf); err != nil {
					b.Error(err)
					break
				}
			}
			close(done)
		}()
		msg := make([]byte, 64)
		b.SetBytes(64)
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if err := enq(ctx, msg); err != nil {
				b.Fatal(err)
			}
		}
		<-done
	})
}

// BenchmarkChannelFanOut measures the publisher's cost per message with 1
// and with 4 subscribers draining (payload written once either way).
func BenchmarkChannelFanOut(b *testing.B) {
	for _, n := range []int{1, 4} {
		b.Run(map[int]string{1: "1to1", 4: "1to4"}[n], func(b *testing.B) {
			ch, pub := benchChannel(b, shmkit.Config{MaxMessage: 64, RingDepth: 1024})
			wg := drain(b, ch, n)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				s, err := pub.LoanContext(ctx, 64)
				if err != nil {
					b.Fatal(err)
				}
				if err := pub.Publish(ctx, s); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(b.N), "pub-ns/msg")
			b.StopTimer()
			pub.Close()
			wg.Wait()
		})
	}
}

// BenchmarkChannel1MiB moves 1 MiB messages zero-copy (the publisher
// writes one byte per page, the subscriber reads them) against os.Pipe
// (write and read the whole MiB) in the same run.
func BenchmarkChannel1MiB(b *testing.B) {
	const size = 1 << 20
	b.Run("channel-zero-copy", func(b *testing.B) {
		ch, pub := benchChannel(b, shmkit.Config{MaxMessage: size, RingDepth: 8, ChunksPerClass: 4})
		s, _ := ch.Subscriber()
		ctx := context.Background()
		done := make(chan struct{})
		go func() {
			defer close(done)
			sum := byte(0)
			for {
				m, err := s.Receive(ctx)
				if err != nil {
					return
				}
				p := m.Bytes()
				for i := 0; i < len(p); i += 4096 {
					sum += p[i]
				}
				m.Release()
			}
		}()
		b.SetBytes(size)
		b.ResetTimer()
		for range b.N {
			m, err := pub.LoanContext(ctx, size)
			if err != nil {
				b.Fatal(err)
			}
			p := m.Bytes()
			for i := 0; i < len(p); i += 4096 {
				p[i] = byte(i)
			}
			if err := pub.Publish(ctx, m); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		pub.Close()
		<-done
	})
	b.Run("pipe", func(b *testing.B) {
		r, w, err := os.Pipe()
		if err != nil {
			b.Fatal(err)
		}
		defer r.Close()
		done := make(chan struct{})
		go func() {
			buf := make([]byte, size)
			for range b.N {
				if _, err := io.ReadFull(r, buf); err != nil {
					b.Error(err)
					break
				}
			}
			close(done)
		}()
		msg := make([]byte, size)
		b.SetBytes(size)
		b.ResetTimer()
		for range b.N {
			if _, err := w.Write(msg); err != nil {
				b.Fatal(err)
			}
		}
		<-done
		w.Close()
	})
}

// BenchmarkChannelPingPong bounces a 64-byte message between two
// goroutines over two channels and reports the round trip's p50 and p99.
func BenchmarkChannelPingPong(b *testing.B) {
	ping, pingPub := benchChannel(b, shmkit.Config{MaxMessage: 64, RingDepth: 8})
	pong, pongPub := benchChannel(b, shmkit.Config{MaxMessage: 64, RingDepth: 8})
	pingSub, _ := ping.Subscriber()
	pongSub, _ := pong.Subscriber()
	ctx := context.Background()
	echoed := make(chan struct{})
	go func() {
		defer close(echoed)
		buf := make([]byte, 64)
		for {
			n, err := pingSub.ReceiveInto(ctx, buf)
			if err != nil {
				return
			}
			if err := pongPub.Send(ctx, buf[:n]); err != nil {
				return
			}
		}
	}()
	msg, buf := make([]byte, 64), make([]byte, 64)
	rtt := make([]time.Duration, b.N)
	b.ResetTimer()
	for i := range b.N {
		t0 := time.Now()
		if err := pingPub.Send(ctx, msg); err != nil {
			b.Fatal(err)
		}
		if _, err := pongSub.ReceiveInto(ctx, buf); err != nil {
			b.Fatal(err)
		}
		rtt[i] = time.Since(t0)
	}
	b.StopTimer()
	slices.Sort(rtt)
	b.ReportMetric(float64(rtt[len(rtt)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(rtt[len(rtt)*99/100].Nanoseconds()), "p99-ns")
	pingPub.Close()
	<-echoed
}

// BenchmarkChannelPipeline runs loan, publish, receive and release of one
// 64-byte message in one goroutine (no hand-off, no waiting): the CPU cost
// of the channel's own bookkeeping per message, for profiling.
func BenchmarkChannelPipeline(b *testing.B) {
	pub, sub := pipelinePair(b)
	runPipeline(b, pub, sub)
}

// BenchmarkChannelPipelineSend is BenchmarkChannelPipeline with Send (a
// copy of a 64-byte message) in place of loan and publish.
func BenchmarkChannelPipelineSend(b *testing.B) {
	pub, sub := pipelinePair(b)
	ctx := context.Background()
	msg := make([]byte, 64)
	startPipeline(b)
	for range b.N {
		if err := pub.Send(ctx, msg); err != nil {
			b.Fatal(err)
		}
		m, err := sub.TryReceive()
		if err != nil {
			b.Fatal(err)
		}
		if err := m.Release(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkChannelPipelineCopy is BenchmarkChannelPipeline with the
// copying calls: Send and ReceiveInto of a 64-byte message.
func BenchmarkChannelPipelineCopy(b *testing.B) {
	pub, sub := pipelinePair(b)
	ctx := context.Background()
	msg, buf := make([]byte, 64), make([]byte, 64)
	startPipeline(b)
	for range b.N {
		if err := pub.Send(ctx, msg); err != nil {
			b.Fatal(err)
		}
		if _, err := sub.ReceiveInto(ctx, buf); err != nil {
			b.Fatal(err)
		}
	}
}

// pipelinePair is a publisher and a subscriber of a fresh channel of
// 64-byte messages for the pipeline benchmarks.
func pipelinePair(b *testing.B) (*shmkit.Publisher, *shmkit.Subscriber) {
	ch, pub := benchChannel(b, shmkit.Config{MaxMessage: 64, RingDepth: 1024})
	sub, err := ch.Subscriber()
	if err != nil {
		b.Fatal(err)
	}
	return pub, sub
}

// startPipeline starts the timer of a pipeline benchmark (64 bytes a round).
func startPipeline(b *testing.B) {
	b.SetBytes(64)
	b.ReportAllocs()
	b.ResetTimer()
}

// runPipeline times b.N rounds of loan, publish, receive and release of a
// 64-byte message in the calling goroutine.
func runPipeline(b *testing.B, pub *shmkit.Publisher, sub *shmkit.Subscriber) {
	ctx := context.Background()
	startPipeline(b)
	for range b.N {
		s, err := pub.LoanContext(ctx, 64)
		if err != nil {
			b.Fatal(err)
		}
		s.Bytes()[0] = 1
		if err := pub.Publish(ctx, s); err != nil {
			b.Fatal(err)
		}
		m, err := sub.TryReceive()
		if err != nil {
			b.Fatal(err)
		}
		if err := m.Release(); err != nil {
			b.Fatal(err)
		}
	}
}
