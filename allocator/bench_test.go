package allocator

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

var benchSizes = []int{64, 4096}

// sink keeps make([]byte) allocations on the heap, so the baseline pays for
// the garbage collector as a real caller would.
var sink []byte

// BenchmarkAllocFree is one Alloc plus one Free of the same class in one
// goroutine: the uncontended cost of a pair.
func BenchmarkAllocFree(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("size=%d", n), func(b *testing.B) {
			a := newTest(b, Config{Classes: []Class{{n, 64}}})
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				r, err := a.Alloc(n)
				if err != nil {
					b.Fatal(err)
				}
				if err := a.Free(r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCompare runs, in one benchmark, the allocator's alloc+free pair,
// make([]byte, n) with the garbage collector, and a sync.Pool Get+Put, each
// for b.N iterations, and reports each cost and the allocator's cost as a
// multiple of the baselines.
func BenchmarkCompare(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("size=%d", n), func(b *testing.B) {
			a := newTest(b, Config{Classes: []Class{{n, 64}}})
			pool := sync.Pool{New: func() any { s := make([]byte, n); return &s }}
			b.ResetTimer()
			t0 := time.Now()
			for range b.N {
				r, err := a.Alloc(n)
				if err != nil {
					b.Fatal(err)
				}
				if err := a.Free(r); err != nil {
					b.Fatal(err)
				}
			}
			t1 := time.Now()
			for range b.N {
				sink = make([]byte, n)
			}
			t2 := time.Now()
			for range b.N {
				p := pool.Get().(*[]byte)
				pool.Put(p)
			}
			t3 := time.Now()
			b.StopTimer()
			per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(b.N) }
			slab, mk, pl := per(t1.Sub(t0)), per(t2.Sub(t1)), per(t3.Sub(t2))
			b.ReportMetric(slab, "slab-ns/pair")
			b.ReportMetric(mk, "make-ns/op")
			b.ReportMetric(pl, "pool-ns/pair")
			b.ReportMetric(slab/mk, "slab/make")
			b.ReportMetric(slab/pl, "slab/pool")
		})
	}
}

// BenchmarkRetainRelease is the cost of one more holder of a chunk.
func BenchmarkRetainRelease(b *testing.B) {
	a := newTest(b, Config{Classes: []Class{{64, 4}}})
	r, _ := a.Alloc(1)
	b.ResetTimer()
	for range b.N {
		if err := a.Retain(r); err != nil {
			b.Fatal(err)
		}
		if err := a.Release(r); err != nil {
			b.Fatal(err)
		}
	}
}
