//go:build linux

package bench

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/shmkit/shmkit/futex"
	"github.com/shmkit/shmkit/segment"
)

// Child kinds of the cross-process probes.
const (
	probeAtomic = "probe/atomic"
	probeFutex  = "probe/futex"
)

// memcpyProbe measures copy bandwidth at each size on one thread, between
// two buffers that stay in cache when they fit: the most a transport that
// copies each message once could reach.
func memcpyProbe(cfg Config) []Result {
	var out []Result
	per := max(cfg.Duration/2, 20*time.Millisecond)
	for _, size := range cfg.Sizes {
		res := Result{Transport: LimitMemcpy, Family: FamilyLimit, Workload: Stream, Size: size}
		src, dst := make([]byte, size), make([]byte, size)
		fillPayload(src)
		batch := max(1, (256<<10)/size)
		for i := 0; i < batch*4; i++ { // warm-up: fault the pages in, fill the caches
			copy(dst, src)
		}
		var n int64
		cpu0, t0 := processCPU(), time.Now()
		for time.Since(t0) < per {
			for range batch {
				copyChunked(dst, src)
			}
			n += int64(batch)
		}
		res.setRate(n, time.Since(t0))
		res.setCPU(processCPU()-cpu0, 0)
		out = append(out, res)
	}
	return out
}

// syscallProbe measures a trivial system call (getppid). The latency
// fields are means of batches of 100 calls.
func syscallProbe(cfg Config) Result {
	res := Result{Transport: LimitSyscall, Family: FamilyLimit, Workload: PingPong}
	h := newHist()
	const batch = 100
	per := max(cfg.Duration/2, 20*time.Millisecond)
	for range 1000 {
		unix.Getppid()
	}
	var n int64
	cpu0, t0 := processCPU(), time.Now()
	for time.Since(t0) < per {
		s := time.Now()
		for range batch {
			unix.Getppid()
		}
		_ = h.RecordValue(max(time.Since(s).Nanoseconds()/batch, 1))
		n += batch
	}
	res.setRate(n, time.Since(t0))
	res.MBPerSec = 0
	res.setHist(h)
	res.setCPU(processCPU()-cpu0, 0)
	return res
}

// probeWord returns the shared 64-bit word at the start of mem.
func probeWord(mem []byte) *atomic.Uint64 { return (*atomic.Uint64)(unsafe.Pointer(&mem[0])) }

// probeWord32 returns the shared 32-bit futex word at the start of mem.
func probeWord32(mem []byte) *atomic.Uint32 { return (*atomic.Uint32)(unsafe.Pointer(&mem[0])) }

// stopWord (and its low half, stopWord32) tells a probe's child to stop.
const (
	stopWord   = ^uint64(0)
	stopWord32 = ^uint32(0)
)

// runProbe runs a cross-process probe: a one-region Memfd segment shared
// with a child of kind, and parent over it.
func runProbe(ctx context.Context, res Result, cfg Config, kind string, parentCPU, childCPU int,
	parent func(mem []byte) (sideStats, error)) Result {
	res.Family = FamilyLimit
	seg, err := segment.Create(segment.Memfd, "bench-probe", 64<<10, nil)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	defer seg.Close()
	r, err := seg.AddRegion("word", segment.FourCC("PROB"), 64, 64)
	var mem []byte
	if err == nil {
		mem, err = seg.Bytes(r.Offset, r.Length)
	}
	var f *os.File
	if err == nil {
		var fd int
		fd, err = unix.FcntlInt(seg.File().Fd(), unix.F_DUPFD_CLOEXEC, 0)
		f = os.NewFile(uintptr(fd), "memfd")
	}
	if err != nil {
		res.Error = err.Error()
		return res
	}
	c := cell{Transport: kind, Workload: PingPong, Warmup: cfg.Warmup, Duration: cfg.Duration,
		MinMsgs: cfg.MinMsgs, CPU: childCPU, Timeout: cfg.Warmup + cfg.Duration + cellSlack, Files: 1}
	abort := func() { probeWord(mem).Store(stopWord); futex.Wake(probeWord32(mem), 1) }
	pst, _, err := runWithChild(ctx, c, []*os.File{f}, abort, func() (sideStats, error) {
		restore, err := pinThread(parentCPU)
		if err != nil {
			return sideStats{}, err
		}
		defer restore()
		return parent(mem)
	})
	if err != nil {
		res.Error = err.Error()
		return res
	}
	// The child's CPU time covers its whole life, warm-up included, so
	// only the parent's measured window is reported.
	fill(&res, pst, 0)
	return res
}

// probeMem attaches the probe's region in the child.
func probeMem(c *cell) ([]byte, error) {
	files := childFiles(1)
	_, mems, err := attachSegment(files[0], []string{"word"})
	if err != nil {
		return nil, err
	}
	return mems[0], nil
}

// atomicProbe measures the round trip of one cache line between two
// processes on two CPUs, both spinning: the floor under any shared-memory
// hand-off.
func atomicProbe(ctx context.Context, cfg Config) Result {
	res := Result{Transport: LimitAtomic, Family: FamilyLimit, Workload: PingPong, Size: 8}
	a, b, ok := twoCPUs()
	if len(cfg.CPUs) == 2 {
		a, b, ok = cfg.CPUs[0], cfg.CPUs[1], cfg.CPUs[0] != cfg.CPUs[1]
	}
	if !ok {
		res.Error = unavailable("the cross-core probe needs two distinct CPUs").Error()
		return res
	}
	return runProbe(ctx, res, cfg, probeAtomic, a, b, func(mem []byte) (sideStats, error) {
		w := probeWord(mem)
		defer w.Store(stopWord)
		// Each round trip is timed alone, with the latency clock the
		// ping-pong cells use, so the floor and the cells compare like
		// with like (both include one clock read).
		clk := latencyClock()
		lat := newSamples(clk)
		var st sideStats
		start := nanotime()
		var t0 int64
		var cpu0 time.Duration
		var v uint64
		for i := 0; ; i++ {
			s := clk.tick()
			w.Store(v + 1)
			for spins := 0; w.Load() != v+2; spins++ {
				if spins&(1<<20-1) == 1<<20-1 && nanotime()-start > int64(cfg.Warmup+cfg.Duration+5*time.Second) {
					return st, fmt.Errorf("atomic probe: no answer from the child in 5s")
				}
			}
			rtt := clk.tick() - s
			v += 2
			if t0 != 0 {
				lat.add(rtt)
				st.msgs++
			}
			if i%64 != 0 {
				continue
			}
			now := nanotime()
			switch {
			case t0 == 0 && now-start >= int64(cfg.Warmup):
				t0, cpu0 = nanotime(), processCPU()
			case t0 != 0 && now-t0 >= int64(cfg.Duration) && st.msgs >= int64(cfg.MinMsgs):
				st.elapsed, st.cpu = time.Duration(nanotime()-t0), processCPU()-cpu0
				st.hist = lat.hist()
				return st, nil
			}
		}
	})
}

func atomicChild(spec *cell) (sideStats, error) {
	mem, err := probeMem(spec)
	if err != nil {
		return sideStats{}, err
	}
	w := probeWord(mem)
	cpu0 := processCPU()
	var st sideStats
	last := time.Now()
	for expect, spins := uint64(1), 0; ; spins++ {
		v := w.Load()
		if v == stopWord {
			st.cpu = processCPU() - cpu0
			return st, nil
		}
		if v == expect {
			w.Store(v + 1)
			expect += 2
			st.msgs++
			continue
		}
		if spins&(1<<20-1) == 0 {
			if time.Since(last) > spec.Timeout {
				return st, fmt.Errorf("atomic probe: parent silent for %v", spec.Timeout)
			}
			last = time.Now()
		}
	}
}

// futexProbe measures a futex wake + wait round trip between two
// processes that both park (no spinning): what a hand-off costs when the
// receiver sleeps.
func futexProbe(ctx context.Context, cfg Config) Result {
	res := Result{Transport: LimitFutex, Family: FamilyLimit, Workload: PingPong, Size: 4}
	parentCPU, childCPU := -1, -1
	if len(cfg.CPUs) == 2 {
		parentCPU, childCPU = cfg.CPUs[0], cfg.CPUs[1]
	}
	return runProbe(ctx, res, cfg, probeFutex, parentCPU, childCPU, func(mem []byte) (sideStats, error) {
		w := probeWord32(mem)
		defer func() { w.Store(stopWord32); futex.Wake(w, 1) }()
		st := sideStats{hist: newHist()}
		start := time.Now()
		var t0 time.Time
		var cpu0 time.Duration
		for v := uint32(0); ; v += 2 {
			s := time.Now()
			if t0.IsZero() && s.Sub(start) >= cfg.Warmup {
				cpu0 = processCPU()
				s = time.Now()
				t0 = s
			}
			w.Store(v + 1)
			if _, err := futex.Wake(w, 1); err != nil {
				return st, err
			}
			for w.Load() != v+2 {
				if err := futex.Wait(w, v+1, 5*time.Second); err != nil {
					return st, fmt.Errorf("futex probe: %w", err)
				}
			}
			if !t0.IsZero() {
				_ = st.hist.RecordValue(max(time.Since(s).Nanoseconds(), 1))
				st.msgs++
				if time.Since(t0) >= cfg.Duration && st.msgs >= int64(cfg.MinMsgs) {
					st.elapsed, st.cpu = time.Since(t0), processCPU()-cpu0
					return st, nil
				}
			}
		}
	})
}

func futexChild(spec *cell) (sideStats, error) {
	mem, err := probeMem(spec)
	if err != nil {
		return sideStats{}, err
	}
	w := probeWord32(mem)
	cpu0 := processCPU()
	var st sideStats
	for expect := uint32(1); ; {
		v := w.Load()
		if v == stopWord32 {
			st.cpu = processCPU() - cpu0
			return st, nil
		}
		if v == expect {
			w.Store(v + 1)
			if _, err := futex.Wake(w, 1); err != nil {
				return st, err
			}
			expect += 2
			st.msgs++
			continue
		}
		if err := futex.Wait(w, v, spec.Timeout); err != nil {
			return st, fmt.Errorf("futex probe: %w", err)
		}
	}
}
