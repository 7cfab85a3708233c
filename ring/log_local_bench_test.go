package ring

import "testing"

// BenchmarkLogLocal writes and reads one 64-byte message per op in one
// goroutine: the instructions of the log's two fast paths, with no cache
// line crossing cores.
func BenchmarkLogLocal(b *testing.B) {
	l, _ := newTestLog(b, 1<<16, 1, LogBlock)
	w := l.Writer()
	r, _ := l.Join(1)
	msg := make([]byte, 64)
	buf := make([]byte, 64)
	b.Run("copy", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if ok, err := w.TryWrite(msg); !ok || err != nil {
				b.Fatal(ok, err)
			}
			if _, ok, err := r.TryRead(buf); !ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
	b.Run("batch64", func(b *testing.B) {
		b.ReportAllocs()
		msgs := make([][]byte, 64)
		bufs := make([][]byte, 64)
		for i := range msgs {
			msgs[i], bufs[i] = msg, make([]byte, 64)
		}
		for i := 0; i < b.N; i += 64 {
			if n, err := w.TryWriteBatch(msgs); n != 64 || err != nil {
				b.Fatal(n, err)
			}
			if n, err := r.TryReadBatch(bufs, nil); n != 64 || err != nil {
				b.Fatal(n, err)
			}
		}
	})
}
