package bench

import (
	"sync"
	"time"
	_ "unsafe" // for go:linkname

	"github.com/HdrHistogram/hdrhistogram-go"
)

// nanotime is the Go runtime's monotonic clock (CLOCK_MONOTONIC through the
// vDSO on Linux): the cheapest clock Go offers, and one that both processes
// of a cell read on the same scale, so a one-way latency can be measured
// across them. The runtime keeps this linkname working (go.dev/issue/67401).
//
//go:linkname nanotime runtime.nanotime
func nanotime() int64

// sampleBatch is how many raw latency samples a side keeps before it
// folds them into its histogram, between two measured operations.
const sampleBatch = 1 << 16

// samples records latencies without slowing the measured path: a store into
// a preallocated slice per sample, and a histogram built from a full batch
// between two operations (or at the end).
type samples struct {
	raw []int64
	h   *hdrhistogram.Histogram
	clk tickClock // the clock of the raw values (nanoseconds: nsPerT 1)
}

// newSamples records values in clk's ticks.
func newSamples(clk tickClock) *samples {
	return &samples{raw: make([]int64, 0, sampleBatch), h: newHist(), clk: clk}
}

// newHist records values from 1 ns to 100 s with 3 significant digits.
func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(1, 100e9, 3) }

// add records one latency. When the batch is full it is folded into the
// histogram (outside any timed span: the caller times around its own
// operation only).
func (s *samples) add(ns int64) {
	if len(s.raw) == cap(s.raw) {
		s.fold()
	}
	s.raw = append(s.raw, ns)
}

func (s *samples) fold() {
	for _, v := range s.raw {
		_ = s.h.RecordValue(max(s.clk.ns(v), 1))
	}
	s.raw = s.raw[:0]
}

// hist folds what is left and returns the histogram.
func (s *samples) hist() *hdrhistogram.Histogram {
	s.fold()
	return s.h
}

// The latency clock. Round trips are timed on one thread with two reads
// of tick: the time-stamp counter where it is invariant (a few ns to read),
// the runtime's monotonic clock otherwise (which costs 30 ns or more under
// a paravirtual clock source such as kvm-clock). Ticks become nanoseconds
// with a rate calibrated once per process against nanotime.

// tickClock is the latency clock of this process.
type tickClock struct {
	tsc    bool
	nsPerT float64 // nanoseconds per tick
}

var (
	clockOnce sync.Once
	theClock  tickClock
)

// latencyClock returns the process's latency clock, calibrating it on
// first use (about 20 ms).
func latencyClock() tickClock {
	clockOnce.Do(func() {
		theClock = tickClock{nsPerT: 1}
		if !haveTSC() {
			return
		}
		t0, n0 := rdtsc(), nanotime()
		time.Sleep(20 * time.Millisecond)
		t1, n1 := rdtsc(), nanotime()
		if t1 <= t0 || n1 <= n0 {
			return
		}
		theClock = tickClock{tsc: true, nsPerT: float64(n1-n0) / float64(t1-t0)}
	})
	return theClock
}

// tick reads the clock.
func (c tickClock) tick() int64 {
	if c.tsc {
		return rdtsc()
	}
	return nanotime()
}

// ns converts ticks to nanoseconds.
func (c tickClock) ns(t int64) int64 { return int64(float64(t) * c.nsPerT) }

// name says which clock it is.
func (c tickClock) name() string {
	if c.tsc {
		return "tsc"
	}
	return "nanotime"
}

// clockCost measures what one read of clk costs, in nanoseconds: the
// fastest of 50 runs of 1000 reads (the fastest, because a run that loses
// its CPU measures the machine's load, not the clock).
func clockCost(clk tickClock) float64 {
	best := 0.0
	for range 50 {
		var sink int64
		t0 := nanotime()
		for range 1000 {
			sink += clk.tick()
		}
		ns := float64(nanotime()-t0) / 1000
		if sink == 42 {
			ns++ // keep the reads
		}
		if best == 0 || ns < best {
			best = ns
		}
	}
	return best
}
