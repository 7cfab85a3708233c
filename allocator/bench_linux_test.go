package allocator

import (
	"errors"
	"fmt"
	"os"
	"testing"
	"time"
)

func init() { testChildren["hammer"] = hammerChild }

// Control words of the contended benchmark.
const (
	hammerStop  = 0 // parent sets 1 to stop the child
	hammerReady = 1 // child sets 1 once attached
	hammerPairs = 2 // pairs the child completed
)

// BenchmarkAllocFreeContended2Proc measures alloc+free pairs on one class
// while a second process does the same on the same class, and reports the
// parent's cost per pair and the child's throughput. With cache=32 both
// use a magazine (the pairs meet only when a magazine refills or spills);
// with cache=0 every pair of both goes through the same free-list head.
func BenchmarkAllocFreeContended2Proc(b *testing.B) {
	const n = 64
	for _, cache := range []int{benchCache, 0} {
		b.Run(fmt.Sprintf("cache=%d", cache), func(b *testing.B) {
			s, a := newSharedRegion(b, Config{Classes: []Class{{n, 256}}}, 3)
			p := withOwner(b, a, 1, WithCache(cache))
			hc := startChild(b, s.command(b, "hammer", fmt.Sprintf("HAMMER_SIZE=%d", n), fmt.Sprintf("HAMMER_CACHE=%d", cache)))
			waitFor(b, "hammer child ready", func() bool { return s.word(hammerReady).Load() != 0 || hc.exited() })
			if hc.exited() {
				b.Fatalf("hammer child exited: %v", hc.wait())
			}
			start := s.word(hammerPairs).Load()
			b.ResetTimer()
			t0 := time.Now()
			for range b.N {
				r, err := p.Alloc(n)
				if errors.Is(err, ErrNoMemory) {
					continue
				}
				if err != nil {
					b.Fatal(err)
				}
				if err := p.Free(r); err != nil {
					b.Fatal(err)
				}
			}
			el := time.Since(t0)
			b.StopTimer()
			child := s.word(hammerPairs).Load() - start
			s.word(hammerStop).Store(1)
			if err := hc.wait(); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(el.Nanoseconds())/float64(b.N), "ns/pair")
			b.ReportMetric(float64(child)/el.Seconds()/1e6, "child-Mpairs/s")
			if err := p.Flush(); err != nil {
				b.Fatal(err)
			}
			mustWhole(b, a)
		})
	}
}

func hammerChild() int {
	a, s, err := childRegion(WithOwner(2), WithCache(envInt("HAMMER_CACHE")))
	if err != nil {
		fmt.Fprintln(os.Stderr, "hammer:", err)
		return 1
	}
	n := envInt("HAMMER_SIZE")
	s.word(hammerReady).Store(1)
	pairs := s.word(hammerPairs)
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "hammer:", err)
		return 1
	}
	for i := 0; ; i++ {
		if i%256 == 0 && s.word(hammerStop).Load() != 0 {
			if err := a.Flush(); err != nil {
				return fail(err)
			}
			return 0
		}
		r, err := a.Alloc(n)
		if errors.Is(err, ErrNoMemory) {
			continue
		}
		if err != nil {
			return fail(err)
		}
		if err := a.Free(r); err != nil {
			return fail(err)
		}
		pairs.Add(1)
	}
}
