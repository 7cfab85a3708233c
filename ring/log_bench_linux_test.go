package ring

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/shmkit/shmkit/internal/proctest"
)

func init() {
	proctest.Register("bench-log", benchChildLog)
}

// BenchmarkLog streams b.N 64-byte messages from the benchmark process to
// reader children through a 256 KiB log (the bytes of BenchmarkSPSC's
// 4096-slot 64 B ring, whose slots take 128 bytes, are 512 KiB): one
// message per call or batches of 64 (TryWriteBatch / TryReadBatch, one
// position store per batch), to one reader and, for fan-out, to four.
// The SPSC figures of the same run are the baseline:
//
//	go test -run '^$' -bench 'SPSC/64B/(unbatched|batch64)$|Log/' ./ring/
func BenchmarkLog(b *testing.B) {
	for _, readers := range []int{1, 4} {
		for _, batch := range []int{1, 64} {
			name := fmt.Sprintf("64B/1to%d/unbatched", readers)
			if batch > 1 {
				name = fmt.Sprintf("64B/1to%d/batch%d", readers, batch)
			}
			b.Run(name, func(b *testing.B) { benchLog(b, 64, readers, batch, false) })
		}
	}
	b.Run("64B/1to1/zerocopy", func(b *testing.B) { benchLog(b, 64, 1, 1, true) })
}

func benchLog(b *testing.B, size, readers, batch int, zerocopy bool) {
	const capacity = 256 << 10
	ls, _ := LogSize(capacity, readers)
	a := newSharedArea(b, ls)
	l, err := NewLog(a.ring(), capacity, readers, LogBlock)
	if err != nil {
		b.Fatal(err)
	}
	w := l.Writer()
	env := []string{fmt.Sprintf("RING_BATCH=%d", batch)}
	if zerocopy {
		env = append(env, "RING_ZEROCOPY=1")
	}
	startBench(b, a, readers, "bench-log", env...)
	msg := make([]byte, size)
	msgs := make([][]byte, batch)
	for i := range msgs {
		msgs[i] = msg
	}
	ctx := context.Background()
	b.SetBytes(int64(size))
	goBench(b, a)
	for sent := 0; sent < b.N; {
		switch {
		case zerocopy:
			p, err := w.Claim(ctx, size)
			if err != nil {
				b.Fatal(err)
			}
			copy(p, msg)
			if err := w.Commit(size, 0, 0); err != nil {
				b.Fatal(err)
			}
			sent++
		case batch == 1:
			if err := w.Write(ctx, msg); err != nil {
				b.Fatal(err)
			}
			sent++
		default:
			n, err := w.WriteBatch(ctx, msgs[:min(batch, b.N-sent)])
			if err != nil {
				b.Fatal(err)
			}
			sent += n
		}
	}
	a.spinWord(wordDone, uint32(readers))
	b.StopTimer()
	reportRate(b, b.N)
}

func benchChildLog() int {
	a, err := childArea()
	if err != nil {
		return childFail("%v", err)
	}
	l, err := AttachLog(a.ring())
	if err != nil {
		return childFail("%v", err)
	}
	r, err := l.Join(uint32(envInt("RING_ID", 0)))
	if err != nil {
		return childFail("%v", err)
	}
	n, batch := envInt("RING_N", 0), envInt("RING_BATCH", 1)
	bufs := make([][]byte, batch)
	for i := range bufs {
		bufs[i] = make([]byte, 64)
	}
	ctx := context.Background()
	zerocopy := os.Getenv("RING_ZEROCOPY") != ""
	var sum uint64
	childReady(a)
	for got := 0; got < n; {
		if zerocopy {
			rec, err := r.Next(ctx)
			if err != nil {
				return childFail("%v", err)
			}
			sum += uint64(rec.Data[0]) + uint64(rec.Data[len(rec.Data)-1])
			if err := r.Release(rec.End); err != nil {
				return childFail("%v", err)
			}
			got++
			continue
		}
		if batch == 1 {
			if _, err := r.Read(ctx, bufs[0]); err != nil {
				return childFail("%v", err)
			}
			got++
			continue
		}
		k, err := r.TryReadBatch(bufs[:min(batch, n-got)], nil)
		if err != nil {
			return childFail("%v", err)
		}
		if k == 0 {
			if err := r.Wait(ctx); err != nil {
				return childFail("%v", err)
			}
		}
		got += k
	}
	a.count(0).Store(sum)
	a.word(wordDone).Add(1)
	return 0
}
