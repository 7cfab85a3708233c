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
// while a second process does the same on the same class (same free-list
// head), and reports the parent's cost per pair and the child's throughput.
func BenchmarkAllocFreeContended2Proc(b *testing.B) {
	const n = 64
	s, a := newSharedRegion(b, Config{Classes: []Class{{n, 256}}}, 3)
	hc := startChild(b, s.command(b, "hammer", fmt.Sprintf("HAMMER_SIZE=%d", n)))
	for s.word(hammerReady).Load() == 0 {
		if hc.exited() {
			b.Fatalf("hammer child exited: %v", hc.wait())
		}
		time.Sleep(100 * time.Microsecond)
	}
	start := s.word(hammerPairs).Load()
	b.ResetTimer()
	t0 := time.Now()
	for range b.N {
		r, err := a.Alloc(n)
		if errors.Is(err, ErrNoMemory) {
			continue
		}
		if err != nil {
			b.Fatal(err)
		}
		if err := a.Free(r); err != nil {
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
	mustWhole(b, a)
}

func hammerChild() int {
	a, s, err := childRegion()
	if err != nil {
		fmt.Fprintln(os.Stderr, "hammer:", err)
		return 1
	}
	n := envInt("HAMMER_SIZE")
	s.word(hammerReady).Store(1)
	pairs := s.word(hammerPairs)
	for i := 0; ; i++ {
		if i%256 == 0 && s.word(hammerStop).Load() != 0 {
			return 0
		}
		r, err := a.Alloc(n)
		if errors.Is(err, ErrNoMemory) {
			continue
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "hammer:", err)
			return 1
		}
		if err := a.Free(r); err != nil {
			fmt.Fprintln(os.Stderr, "hammer:", err)
			return 1
		}
		pairs.Add(1)
	}
}
