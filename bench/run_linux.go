//go:build linux

package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/shmkit/shmkit/futex"
	"github.com/shmkit/shmkit/internal/reexec"
)

// cellSlack is how long past its warm-up and duration a cell may take
// before it is abandoned (slow start-up, a peer starved of CPU).
const cellSlack = 20 * time.Second

// exitGrace is how long the parent side may go on after its child exited
// before it is aborted.
const exitGrace = 300 * time.Millisecond

// job is one step of a run: a cell or a probe of the limits.
type job struct {
	name string
	run  func(ctx context.Context) []Result
}

// Run measures every cell cfg asks for and returns the results: the limit
// probes and the harness's own cost first, then the cells grouped by
// workload and size, then the verification cells and the scaling rows,
// with the ratios filled in. A cell that fails or is ruled out by a kernel
// limit becomes a result with Error set; Run itself fails only for a bad
// cfg or when ctx ends (it then returns what it has).
func Run(ctx context.Context, cfg Config) ([]Result, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	jobs := plan(cfg)
	var results []Result
	for i, j := range jobs {
		if err := ctx.Err(); err != nil {
			return results, err
		}
		if cfg.Progress != nil {
			cfg.Progress(i, len(jobs), j.name)
		}
		results = append(results, j.run(ctx)...)
	}
	if cfg.Progress != nil {
		cfg.Progress(len(jobs), len(jobs), "")
	}
	results = mergeRuns(results)
	AddRatios(results)
	return results, ctx.Err()
}

// Cells returns the number of steps (cells and probes) cfg runs, for
// estimating its duration.
func Cells(cfg Config) int {
	return len(plan(cfg.withDefaults()))
}

// baseCell is a cell of cfg with the timing fields filled in.
func baseCell(cfg Config, transport, workload string, size int) cell {
	return cell{Transport: transport, Workload: workload, Size: size,
		Warmup: cfg.Warmup, Duration: cfg.Duration, MinMsgs: cfg.MinMsgs,
		CPU: -1, Timeout: cfg.Warmup + cfg.Duration + cellSlack, child: childName}
}

func plan(cfg Config) []job {
	var jobs []job
	parentCPU := -1
	if len(cfg.CPUs) == 2 {
		parentCPU = cfg.CPUs[0]
	}
	if !cfg.NoLimits {
		jobs = append(jobs,
			job{"limit: memcpy", func(context.Context) []Result { return memcpyProbe(cfg) }},
			job{"limit: syscall", func(context.Context) []Result { return []Result{syscallProbe(cfg)} }},
			job{"limit: atomic ping-pong", func(ctx context.Context) []Result { return []Result{atomicProbe(ctx, cfg)} }},
			job{"limit: futex round trip", func(ctx context.Context) []Result { return []Result{futexProbe(ctx, cfg)} }},
		)
	}
	workloads := []string{Stream, PingPong}
	for _, wl := range workloads {
		if !slices.Contains(cfg.Workloads, wl) {
			continue
		}
		for _, size := range cfg.Sizes {
			// Unpaced even at a fixed rate: the harness's cost, not a rate.
			c := baseCell(cfg, Harness, wl, size)
			jobs = append(jobs, job{fmt.Sprintf("%s harness %s", wl, SizeName(size)),
				func(context.Context) []Result { return []Result{runHarness(c)} }})
		}
	}
	rows := func(name string) []string {
		t := transports[name]
		if !t.waits() {
			return []string{""}
		}
		var w []string
		for _, s := range cfg.Waits {
			w = append(w, s.String())
		}
		return w
	}
	for _, wl := range workloads {
		if !slices.Contains(cfg.Workloads, wl) {
			continue
		}
		for _, size := range cfg.Sizes {
			var group []job
			var extra func() job
			for _, name := range Transports() {
				if !slices.Contains(cfg.Transports, name) || (wl == PingPong && streamOnly(transports[name])) {
					continue
				}
				for _, w := range rows(name) {
					c := baseCell(cfg, name, wl, size)
					c.Wait = w
					if wl == Stream {
						c.Rate = cfg.Rate
					}
					if len(cfg.CPUs) == 2 {
						c.CPU = cfg.CPUs[1]
					}
					group = append(group, job{fmt.Sprintf("%s %s %s", wl, c.row(), SizeName(size)),
						func(ctx context.Context) []Result { return []Result{runCell(ctx, c, parentCPU)} }})
					if name == baseline {
						extra = func() job {
							return job{fmt.Sprintf("%s %s %s (again)", wl, c.row(), SizeName(size)),
								func(ctx context.Context) []Result {
									r := runCell(ctx, c, parentCPU)
									r.again = true
									return []Result{r}
								}}
						}
					}
				}
			}
			if extra != nil && len(group) > 1 {
				// The baseline runs three times, first, in its place and
				// last, and Run keeps the median: the ratios of the whole
				// group rest on it.
				group = append(append([]job{extra()}, group...), extra())
			}
			jobs = append(jobs, group...)
		}
	}
	if !cfg.NoVerify && (slices.Contains(cfg.Workloads, Stream) || slices.Contains(cfg.Workloads, PingPong)) {
		for _, name := range Transports() {
			if !slices.Contains(cfg.Transports, name) {
				continue
			}
			// One waiting mode: it changes when a side sleeps, not what
			// the bytes go through.
			w := rows(name)[0]
			if ws := rows(name); slices.Contains(ws, futex.SpinThenPark.String()) {
				w = futex.SpinThenPark.String()
			}
			{
				for _, size := range cfg.Sizes {
					c := baseCell(cfg, name, Verify, size)
					c.Wait, c.Verify = w, true
					c.Warmup, c.Duration, c.MinMsgs = time.Nanosecond, time.Nanosecond, DefaultVerifyMsgs
					jobs = append(jobs, job{fmt.Sprintf("verify %s %s", c.row(), SizeName(size)),
						func(ctx context.Context) []Result { return []Result{runCell(ctx, c, parentCPU)} }})
				}
			}
		}
	}
	if slices.Contains(cfg.Workloads, Scaling) && slices.Contains(cfg.Transports, "mpmc") {
		for _, n := range cfg.Scaling {
			c := baseCell(cfg, "mpmc", Scaling, 64)
			c.Wait = futex.SpinThenPark.String()
			c.Senders, c.Receivers = n, n
			jobs = append(jobs, job{fmt.Sprintf("scaling mpmc/%dx%d", n, n),
				func(ctx context.Context) []Result { return []Result{runScaling(ctx, c)} }})
		}
	}
	return jobs
}

// baseline is the transport the ratios compare with; it runs three times
// per workload and size.
const baseline = "pipe"

// mergeRuns folds the repeated runs of a cell (Result.again) into the
// cell's own row: the median run by the headline figure (messages/s for a
// stream, p50 for a ping-pong), with Runs and Spread set.
func mergeRuns(results []Result) []Result {
	type key struct {
		transport, workload string
		size                int
	}
	runs := map[key][]Result{}
	for _, r := range results {
		k := key{r.Transport, r.Workload, r.Size}
		runs[k] = append(runs[k], r)
	}
	var out []Result
	for _, r := range results {
		if r.again {
			continue
		}
		k := key{r.Transport, r.Workload, r.Size}
		rs := runs[k]
		if len(rs) > 1 {
			r = median(rs)
		}
		out = append(out, r)
	}
	return out
}

// median returns the median of the runs of one cell that ran (a failed run
// if none did), with Runs and Spread (max/min of the headline figure).
func median(rs []Result) Result {
	var ok []Result
	for _, r := range rs {
		if r.OK() {
			ok = append(ok, r)
		}
	}
	if len(ok) == 0 {
		r := rs[0]
		r.again = false
		return r
	}
	head := func(r Result) float64 {
		if r.Workload == PingPong && r.P50 != nil {
			return -float64(*r.P50) // lower is better
		}
		return r.MsgsPerSec
	}
	slices.SortFunc(ok, func(a, b Result) int {
		switch {
		case head(a) < head(b):
			return -1
		case head(a) > head(b):
			return 1
		}
		return 0
	})
	m := ok[len(ok)/2]
	m.again = false
	m.Runs = len(ok)
	lo, hi := math.Abs(head(ok[0])), math.Abs(head(ok[len(ok)-1]))
	if lo > hi {
		lo, hi = hi, lo
	}
	if lo > 0 {
		m.Spread = hi / lo
	}
	return m
}

// runHarness measures the harness alone over the no-op transport.
func runHarness(c cell) Result {
	res := Result{Transport: Harness, Family: FamilyHarness, Workload: c.Workload, Size: c.Size}
	st, err := harnessCost(&c)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	res.setRate(st.msgs, st.elapsed)
	if st.hist != nil && st.hist.TotalCount() > 0 && c.Workload == PingPong {
		res.setHist(st.hist)
	}
	// Both roles ran in one loop on one thread: the CPU time of the
	// measured window per message is the harness's cost, and unlike the
	// wall time it does not grow when other work takes the CPU away.
	res.setCPU(st.cpu, 0)
	if res.CPUNsPerMsg <= 0 { // no CPU clock: fall back on the wall time
		res.CPUNsPerMsg = 1e9 / max(res.MsgsPerSec, 1e-9)
		res.CPUParentNsPerMsg = res.CPUNsPerMsg
	}
	res.Summed = st.summed
	clk := latencyClock()
	res.Clock, res.ClockNs = clk.name(), clockCost(clk)
	return res
}

// runCell runs one cell: a child process (or goroutine, for an in-process
// transport) and the parent over a transport.
func runCell(ctx context.Context, c cell, parentCPU int) Result {
	t := transports[c.Transport]
	res := Result{Transport: c.row(), Family: t.family(), Workload: c.Workload, Size: c.Size, Wait: c.Wait}
	if c.Rate > 0 && c.Workload == Stream {
		res.Rate = c.Rate
	}
	l, err := t.open(&c)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	defer l.doRelease()
	parent := func() (sideStats, error) {
		restore, err := pinThread(parentCPU)
		if err != nil {
			return sideStats{}, err
		}
		defer restore()
		p := paceOf(&c)
		if c.pingpong() {
			pg := newPinger(l.out, l.in, p)
			err := runRole(pg)
			return pg.st, err
		}
		co := newConsumer(l.in, p)
		err = runRole(co)
		return co.st, err
	}
	var pst sideStats
	var rep childReport
	if l.child != nil {
		pst, rep, err = runInProcess(ctx, &c, l, parent)
	} else {
		c.Files = len(l.files)
		pst, rep, err = runWithChild(ctx, c, l.files, l.doAbort, parent)
	}
	if err != nil {
		res.Error = err.Error()
		return res
	}
	if !c.pingpong() && pst.msgs != rep.Msgs {
		res.Error = fmt.Sprintf("%v: producer sent %d measured messages, consumer received %d", ErrCorrupt, rep.Msgs, pst.msgs)
		return res
	}
	fill(&res, pst, time.Duration(rep.CPUNs))
	if c.Workload == Verify {
		// The cell is untimed: only what it checked counts.
		res.MsgsPerSec, res.MBPerSec, res.CPUNsPerMsg, res.CPUParentNsPerMsg, res.CPUChildNsPerMsg = 0, 0, 0, 0, 0
		res.P50, res.P90, res.P99, res.P999, res.Max, res.Min = nil, nil, nil, nil, nil, nil
	}
	res.Summed = pst.summed + rep.Summed
	return res
}

// runInProcess runs the child's role of an in-process transport on a
// goroutine.
func runInProcess(ctx context.Context, c *cell, l *link, parent func() (sideStats, error)) (sideStats, childReport, error) {
	type outcome struct {
		st  sideStats
		err error
	}
	child := make(chan outcome, 1)
	cpu0 := processCPU()
	go func() {
		st, err := childSide(c, *l.child)
		if err != nil {
			l.doAbort()
		}
		child <- outcome{st, err}
	}()
	done := make(chan outcome, 1)
	go func() {
		st, err := parent()
		if err != nil {
			l.doAbort()
		}
		done <- outcome{st, err}
	}()
	var p, ch outcome
	timer := time.NewTimer(c.Timeout)
	defer timer.Stop()
	select {
	case p = <-done:
		select {
		case ch = <-child:
		case <-timer.C:
			l.doAbort()
			ch = <-child
		}
	case <-timer.C:
		l.doAbort()
		p, ch = <-done, <-child
		p.err = errors.Join(fmt.Errorf("cell took over %v", c.Timeout), p.err)
	case <-ctx.Done():
		l.doAbort()
		p, ch = <-done, <-child
		p.err = errors.Join(ctx.Err(), p.err)
	}
	// One process: its CPU time is both roles'; report it as the parent's.
	p.st.cpu = processCPU() - cpu0
	rep := childReport{Msgs: ch.st.msgs, Summed: ch.st.summed}
	switch {
	case p.err != nil && ch.err != nil:
		return p.st, rep, fmt.Errorf("%w (sender: %v)", p.err, ch.err)
	case p.err != nil:
		return p.st, rep, p.err
	case ch.err != nil:
		return p.st, rep, fmt.Errorf("sender: %w", ch.err)
	}
	return p.st, rep, nil
}

// fill sets the rate, latency and CPU fields of res from the parent's
// measurements and the child's CPU time.
func fill(res *Result, pst sideStats, childCPU time.Duration) {
	res.setRate(pst.msgs, pst.elapsed)
	if h := pst.hist; h != nil && h.TotalCount() > 0 {
		res.setHist(h)
	}
	res.setCPU(pst.cpu, childCPU)
}

// limitedBuffer keeps the first 64 KiB written to it.
type limitedBuffer struct{ bytes.Buffer }

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := 64<<10 - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// runWithChild starts the child of c with files as its descriptors 3, 4,
// ..., runs parent alongside it, and returns both sides' results. When the
// child dies or the cell overruns c.Timeout, abort unblocks parent.
func runWithChild(ctx context.Context, c cell, files []*os.File, abort func(), parent func() (sideStats, error)) (sideStats, childReport, error) {
	closeFiles := func() {
		for _, f := range files {
			f.Close()
		}
	}
	env, err := json.Marshal(c)
	if err != nil {
		closeFiles()
		return sideStats{}, childReport{}, err
	}
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		closeFiles()
		return sideStats{}, childReport{}, err
	}
	defer stdinW.Close()
	name := c.child
	if name == "" {
		name = childName
	}
	// A race-enabled binary sleeps 1s at exit by default
	// (atexit_sleep_ms); a child has nothing left to report by then.
	cmd, err := reexec.Command(name, nil, envCell+"="+string(env),
		"GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	if err != nil {
		stdinR.Close()
		closeFiles()
		return sideStats{}, childReport{}, err
	}
	cmd.ExtraFiles = files
	cmd.Stdin = stdinR
	var stdout, stderr limitedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Start()
	stdinR.Close()
	closeFiles()
	if err != nil {
		return sideStats{}, childReport{}, fmt.Errorf("%w: start child: %v", ErrChild, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	type outcome struct {
		st  sideStats
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		st, err := parent()
		done <- outcome{st, err}
	}()

	var out outcome
	var waitErr error
	childGone := false
	deadline := time.NewTimer(c.Timeout)
	defer deadline.Stop()
	// finish waits a moment for the parent side after aborting it.
	finish := func(why string) outcome {
		abort()
		select {
		case o := <-done:
			if o.err == nil {
				return o
			}
			return outcome{o.st, fmt.Errorf("%s: %w", why, o.err)}
		case <-time.After(3 * time.Second):
			return outcome{err: fmt.Errorf("%s; the parent side stayed blocked", why)}
		}
	}
	select {
	case out = <-done:
	case waitErr = <-exited:
		childGone = true
		select {
		case out = <-done: // it was draining the last messages
		case <-time.After(exitGrace):
			// Aborting lets a parent still draining finish: a closed ring
			// or pipe delivers what it holds first.
			out = finish("child exited early")
		}
	case <-deadline.C:
		cmd.Process.Kill()
		out = finish(fmt.Sprintf("cell took over %v", c.Timeout))
	case <-ctx.Done():
		cmd.Process.Kill()
		out = finish(ctx.Err().Error())
	}
	if !childGone {
		select {
		case waitErr = <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			waitErr = <-exited
		}
	}

	var rep childReport
	repErr := json.NewDecoder(&stdout.Buffer).Decode(&rep)
	var childErr error
	switch {
	case repErr == nil && rep.Error != "":
		childErr = fmt.Errorf("child: %s", rep.Error)
	case repErr != nil:
		msg := strings.TrimSpace(stderr.String())
		if i := strings.LastIndexByte(msg, '\n'); i >= 0 && len(msg) > 400 {
			msg = msg[i+1:]
		}
		if msg != "" {
			msg = " (" + msg + ")"
		}
		childErr = fmt.Errorf("%w: child %v, no report%s", ErrChild, waitErr, msg)
	case waitErr != nil:
		childErr = fmt.Errorf("%w: child: %v", ErrChild, waitErr)
	}
	switch {
	case out.err != nil && childErr != nil:
		return out.st, rep, fmt.Errorf("%w (%v)", out.err, childErr)
	case out.err != nil:
		return out.st, rep, out.err
	case childErr != nil:
		return out.st, rep, childErr
	}
	return out.st, rep, nil
}
