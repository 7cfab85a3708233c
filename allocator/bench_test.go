package allocator

import (
	"fmt"
	"slices"
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
// for b.N iterations, in up to benchRounds rounds of interleaved slices. It
// reports the median over the rounds of each cost and of the allocator's
// cost as a multiple of the baselines (slab/pool is the figure the issue
// sets a target for): a slice that the scheduler preempts on a busy machine
// spoils one round, not the figure.
func BenchmarkCompare(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("size=%d", n), func(b *testing.B) {
			a := newTest(b, Config{Classes: []Class{{n, 64}}})
			p := withOwner(b, a, 1, WithCache(benchCache))
			pool := sync.Pool{New: func() any { s := make([]byte, n); return &s }}
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
			variants := []func(){
				pair(p), pair(a),
				func() { sink = make([]byte, n) },
				func() { q := pool.Get().(*[]byte); pool.Put(q) },
			}
			var per [4][]float64 // ns per iteration, per round: slab, nocache, make, pool
			b.ResetTimer()
			rounds(b.N, func(k int) {
				for v, f := range variants {
					t0 := time.Now()
					for range k {
						f()
					}
					per[v] = append(per[v], float64(time.Since(t0).Nanoseconds())/float64(k))
				}
			})
			b.StopTimer()
			ratio := func(x, y []float64) []float64 {
				r := make([]float64, len(x))
				for i := range x {
					r[i] = x[i] / y[i]
				}
				return r
			}
			b.ReportMetric(median(per[0]), "slab-ns/pair")
			b.ReportMetric(median(per[1]), "nocache-ns/pair")
			b.ReportMetric(median(per[2]), "make-ns/op")
			b.ReportMetric(median(per[3]), "pool-ns/pair")
			b.ReportMetric(median(ratio(per[0], per[2])), "slab/make")
			b.ReportMetric(median(ratio(per[0], per[3])), "slab/pool")
			b.ReportMetric(median(ratio(per[1], per[3])), "nocache/pool")
			if err := p.Flush(); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// benchRounds is the most rounds an interleaving benchmark splits b.N into.
const benchRounds = 32

// rounds splits n iterations into up to benchRounds rounds of at least one
// and calls f with each round's count.
func rounds(n int, f func(k int)) {
	r := min(benchRounds, max(n, 1))
	for i := range r {
		k := n / r
		if i == r-1 {
			k = n - k*(r-1)
		}
		f(max(k, 1))
	}
}

// median returns the median of v (0 for none).
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
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
