package shmkit_test

import (
	"context"
	"testing"

	"github.com/shmkit/shmkit"
)

// workQueuePair is a producer and a consumer of a fresh work queue of
// 64-byte messages for the pipeline benchmarks.
func workQueuePair(b *testing.B) (*shmkit.Producer, *shmkit.Consumer) {
	ch, err := shmkit.Create(chanName(b), shmkit.Config{Pattern: shmkit.WorkQueue, MaxMessage: 64, RingDepth: 1024})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ch.Close() })
	p, err := ch.Producer()
	if err != nil {
		b.Fatal(err)
	}
	c, err := ch.Consumer()
	if err != nil {
		b.Fatal(err)
	}
	return p, c
}

// BenchmarkWorkQueuePipelineCopy: Send and ReceiveInto of a 64-byte
// message in one goroutine (the work queue's BenchmarkChannelPipelineCopy).
func BenchmarkWorkQueuePipelineCopy(b *testing.B) {
	p, c := workQueuePair(b)
	ctx := context.Background()
	msg, buf := make([]byte, 64), make([]byte, 64)
	startPipeline(b)
	for range b.N {
		if err := p.Send(ctx, msg); err != nil {
			b.Fatal(err)
		}
		if _, err := c.ReceiveInto(ctx, buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWorkQueuePipeline: Loan, Publish, Receive and Release of a
// 64-byte message in one goroutine (zero copy).
func BenchmarkWorkQueuePipeline(b *testing.B) {
	p, c := workQueuePair(b)
	runPipeline(b, p.Publisher, c.Subscriber)
}
