package allocator

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

var benchSizes = []int{64, 4096}

// benchCache is the magazine size of the cached handles in the benchmarks.
const benchCache = 32

// sink keeps make([]byte) allocations on the heap, so the baseline pays for
// the garbage collector as a real caller would.
var sink []byte

// BenchmarkAllocFree is one Alloc plus one Free of the same class in one
// goroutine: the uncontended cost of a pair, with a magazine (the handle's
// cache serves every pair) and without (every pair pops and pushes the
// shared free list).
func BenchmarkAllocFree(b *testing.B) {
	for _, n := range benchSizes {
		for _, cache := range []int{benchCache, 0} {
			b.Run(fmt.Sprintf("size=%d/cache=%d", n, cache), func(b *testing.B) {
				a := newTest(b, Config{Classes: []Class{{n, 64}}})
				p := withOwner(b, a, 1, WithCache(cache))
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					r, err := p.Alloc(n)
					if err != nil {
						b.Fatal(err)
					}
					if err := p.Free(r); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkCompare runs, in one benchmark, the allocator's alloc+free pair
// on a cached handle (slab) and on a handle without a cache (nocache),
// make([]byte, n) with the garbage collector, and a sync.Pool Get+Put, each
// for b.N iterations, in rounds of interleaved slices so that a change in
// the machine's load hits all of them alike. It reports each cost and the
// allocator's cost as a multiple of the baselines (slab/pool is the
// figure the issue sets a target for).
func BenchmarkCompare(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("size=%d", n), func(b *testing.B) {
			a := newTest(b, Config{Classes: []Class{{n, 64}}})
			p := withOwner(b, a, 1, WithCache(benchCache))
			pool := sync.Pool{New: func() any { s := make([]byte, n); return &s }}
			var slab, nocache, mk, pl time.Duration
			run := func(d *time.Duration, k int, f func()) {
				t0 := time.Now()
				for range k {
					f()
				}
				*d += time.Since(t0)
			}
			pair := func(h *Allocator) func() {
				return func() {
					r, err := h.Alloc(n)
					if err != nil {
						b.Fatal(err)
					}
					if err := h.Free(r); err != nil {
						b.Fatal(err)
					}
				}
			}
			slabPair, sharedPair := pair(p), pair(a)
			b.ResetTimer()
			const rounds = 8
			for i := range rounds {
				k := b.N / rounds
				if i == rounds-1 {
					k = b.N - k*(rounds-1)
				}
				run(&slab, k, slabPair)
				run(&nocache, k, sharedPair)
				run(&mk, k, func() { sink = make([]byte, n) })
				run(&pl, k, func() { q := pool.Get().(*[]byte); pool.Put(q) })
			}
			b.StopTimer()
			per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(b.N) }
			b.ReportMetric(per(slab), "slab-ns/pair")
			b.ReportMetric(per(nocache), "nocache-ns/pair")
			b.ReportMetric(per(mk), "make-ns/op")
			b.ReportMetric(per(pl), "pool-ns/pair")
			b.ReportMetric(per(slab)/per(mk), "slab/make")
			b.ReportMetric(per(slab)/per(pl), "slab/pool")
			b.ReportMetric(per(nocache)/per(pl), "nocache/pool")
			if err := p.Flush(); err != nil {
				b.Fatal(err)
			}
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
