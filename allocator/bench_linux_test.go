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
	hammerStop   = 0 // parent sets 1 to stop the child
	hammerReady  = 1 // child sets 1 once attached
	hammerPairs  = 2 // pairs the child completed
	hammerPause  = 3 // parent sets 1 to pause the child, 0 to let it run
	hammerPaused = 4 // child: 1 while it is paused
)

// BenchmarkAllocFreeContended2Proc measures alloc+free pairs on one class
// while a second process does the same on the same class, and, interleaved
// with it in rounds, the same pairs while the second process is paused
// (idle, sleeping), in up to benchRounds rounds: it reports the medians over
// the rounds of the parent's cost per pair contended and uncontended and of
// their ratio (the target: at most 4), and the child's throughput. With cache=32 both processes use a magazine (their pairs meet
// only when a magazine refills or spills); with cache=0 every pair of both
// goes through the same free-list head.
func BenchmarkAllocFreeContended2Proc(b *testing.B) {
	const n = 64
	for _, cache := range []int{benchCache, 0} {
		b.Run(fmt.Sprintf("cache=%d", cache), func(b *testing.B) {
			s, a := newSharedRegion(b, Config{Classes: []Class{{n, 256}}}, 5)
			p := withOwner(b, a, 1, WithCache(cache))
			hc := startChild(b, s.command(b, "hammer", fmt.Sprintf("HAMMER_SIZE=%d", n), fmt.Sprintf("HAMMER_CACHE=%d", cache)))
			waitFor(b, "hammer child ready", func() bool { return s.word(hammerReady).Load() != 0 || hc.exited() })
			if hc.exited() {
				b.Fatalf("hammer child exited: %v", hc.wait())
			}
			pairs := func(k int) time.Duration {
				t0 := time.Now()
				for range k {
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
				return time.Since(t0)
			}
			var contended, alone, ratio []float64 // ns per pair, per round
			var child uint64
			var childTime time.Duration
			b.ResetTimer()
			rounds(b.N, func(k int) {
				// Alone: the child acknowledges the pause first.
				s.word(hammerPause).Store(1)
				waitFor(b, "hammer child paused", func() bool { return s.word(hammerPaused).Load() == 1 || hc.exited() })
				al := float64(pairs(k).Nanoseconds()) / float64(k)
				// Contended: the child has made progress before we start.
				start := s.word(hammerPairs).Load()
				s.word(hammerPause).Store(0)
				waitFor(b, "hammer child running", func() bool { return s.word(hammerPairs).Load() > start || hc.exited() })
				c0 := s.word(hammerPairs).Load()
				d := pairs(k)
				child += s.word(hammerPairs).Load() - c0
				childTime += d
				co := float64(d.Nanoseconds()) / float64(k)
				alone, contended, ratio = append(alone, al), append(contended, co), append(ratio, co/al)
			})
			b.StopTimer()
			s.word(hammerStop).Store(1)
			s.word(hammerPause).Store(0)
			if err := hc.wait(); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(median(contended), "ns/pair")
			b.ReportMetric(median(alone), "alone-ns/pair")
			b.ReportMetric(median(ratio), "contended/alone")
			b.ReportMetric(float64(child)/childTime.Seconds()/1e6, "child-Mpairs/s")
			if err := p.Flush(); err != nil {
				b.Fatal(err)
			}
			mustWhole(b, a)
		})
	}
}

// hammerChild does alloc+free pairs until told to stop, idling (asleep, so
// it leaves the parent a core and every cache line) while paused.
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
		if i%256 == 0 {
			for s.word(hammerPause).Load() != 0 && s.word(hammerStop).Load() == 0 {
				s.word(hammerPaused).Store(1)
				time.Sleep(50 * time.Microsecond) // idle, not synchronisation: the parent waits for hammerPaused
			}
			s.word(hammerPaused).Store(0)
			if s.word(hammerStop).Load() != 0 {
				if err := a.Flush(); err != nil {
					return fail(err)
				}
				return 0
			}
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
