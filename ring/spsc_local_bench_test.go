package ring

import "testing"

// BenchmarkSPSCLocal measures what the SPSC code itself costs per message,
// without a second core: one goroutine enqueues and dequeues in turn
// (256 slots of 64 bytes), one message at a time or 64 per batch. The
// cross-process BenchmarkSPSC adds the cache-line transfers between cores.
//
//	go test -run '^$' -bench 'SPSCLocal' -count 5 ./ring/
func BenchmarkSPSCLocal(b *testing.B) {
	size, _ := SPSCSize(256, 64)
	r, err := NewSPSC(alignedMem(b, size), 256, 64)
	if err != nil {
		b.Fatal(err)
	}
	p, c := r.Producer(), r.Consumer()
	b.Run("pair", func(b *testing.B) {
		msg, buf := make([]byte, 64), make([]byte, 64)
		b.SetBytes(64)
		for range b.N {
			if ok, err := p.TryEnqueue(msg); !ok || err != nil {
				b.Fatal(ok, err)
			}
			if _, ok, err := c.TryDequeue(buf); !ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
	b.Run("batch64", func(b *testing.B) {
		msgs, bufs := make([][]byte, 64), make([][]byte, 64)
		for i := range msgs {
			msgs[i], bufs[i] = make([]byte, 64), make([]byte, 64)
		}
		b.SetBytes(64)
		for i := 0; i < b.N; i += 64 {
			if n, err := p.TryEnqueueBatch(msgs); n != 64 || err != nil {
				b.Fatal(n, err)
			}
			if n, err := c.TryDequeueBatch(bufs); n != 64 || err != nil {
				b.Fatal(n, err)
			}
		}
	})
}
