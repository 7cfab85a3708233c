//go:build linux

package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/shmkit/shmkit/futex"
)

// cellSlack is how long past its warm-up and duration a cell may take
// before it is abandoned (slow start-up, a peer starved of CPU).
const cellSlack = 20 * time.Second

// job is one step of a run: a cell or a probe of the limits.
type job struct {
	name string
	run  func(ctx context.Context) []Result
}

// Run measures every cell cfg asks for and returns the results, the limit
// probes first, then the cells grouped by workload and size, with the
// ratios filled in. A cell that fails or is ruled out by a kernel limit
// becomes a result with Error set; Run itself fails only for a bad cfg or
// when ctx ends (it then returns what it has).
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
	AddRatios(results)
	return results, ctx.Err()
}

// Cells returns the number of steps (cells and probes) cfg runs, for
// estimating its duration.
func Cells(cfg Config) int {
	return len(plan(cfg.withDefaults()))
}

func plan(cfg Config) []job {
	var jobs []job
	if !cfg.NoLimits {
		jobs = append(jobs,
			job{"limit: memcpy", func(context.Context) []Result { return memcpyProbe(cfg) }},
			job{"limit: syscall", func(context.Context) []Result { return []Result{syscallProbe(cfg)} }},
			job{"limit: atomic ping-pong", func(ctx context.Context) []Result { return []Result{atomicProbe(ctx, cfg)} }},
			job{"limit: futex round trip", func(ctx context.Context) []Result { return []Result{futexProbe(ctx, cfg)} }},
		)
	}
	for _, wl := range []string{Stream, PingPong} {
		if !slices.Contains(cfg.Workloads, wl) {
			continue
		}
		for _, size := range cfg.Sizes {
			for _, kind := range AllKinds() {
				if !slices.Contains(cfg.Transports, kind) {
					continue
				}
				waits := []futex.Strategy{0}
				isRing := slices.Contains(RingKinds, kind)
				if isRing {
					waits = cfg.Waits
				}
				for _, w := range waits {
					spec := cellSpec{
						Kind: kind, Workload: wl, Size: size,
						Warmup: cfg.Warmup, Duration: cfg.Duration, MinMsgs: cfg.MinMsgs,
						CPU: -1, Timeout: cfg.Warmup + cfg.Duration + cellSlack,
					}
					name := kind
					if isRing {
						spec.Wait = w.String()
						name += "/" + spec.Wait
					}
					parentCPU := -1
					if len(cfg.CPUs) == 2 {
						parentCPU, spec.CPU = cfg.CPUs[0], cfg.CPUs[1]
					}
					jobs = append(jobs, job{
						name: fmt.Sprintf("%s %s %s", wl, name, SizeName(size)),
						run: func(ctx context.Context) []Result {
							return []Result{runCell(ctx, name, spec, parentCPU)}
						},
					})
				}
			}
		}
	}
	return jobs
}

// runCell runs one cell: a child process and the parent over a transport.
func runCell(ctx context.Context, name string, spec cellSpec, parentCPU int) Result {
	res := Result{Transport: name, Workload: spec.Workload, Size: spec.Size, Wait: spec.Wait}
	if spec.Kind == "chan" {
		return runChan(ctx, res, spec, parentCPU)
	}
	l, err := openLink(&spec)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	defer l.release()
	p := pace{size: spec.Size, warmup: spec.Warmup, duration: spec.Duration, minMsgs: spec.MinMsgs}
	pst, rep, err := runWithChild(ctx, spec, l.files, l.abort, func() (sideStats, error) {
		restore, err := pinThread(parentCPU)
		if err != nil {
			return sideStats{}, err
		}
		defer restore()
		if spec.pingpong() {
			return ping(l.down, l.up, p)
		}
		return consume(l.up, spec.Size)
	})
	if err != nil {
		res.Error = err.Error()
		return res
	}
	if !spec.pingpong() && pst.msgs != rep.Msgs {
		res.Error = fmt.Sprintf("producer sent %d measured messages, consumer received %d: %v", rep.Msgs, pst.msgs, ErrCorrupt)
		return res
	}
	fill(&res, pst, time.Duration(rep.CPUNs))
	res.Verified = pst.verified + rep.Verified
	return res
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

// runWithChild starts the child of spec with files as its descriptors 3,
// 4, ..., runs parent alongside it, and returns both sides' results. When
// the child dies or the cell overruns spec.Timeout, abort unblocks parent.
func runWithChild(ctx context.Context, spec cellSpec, files []*os.File, abort func(), parent func() (sideStats, error)) (sideStats, childReport, error) {
	closeFiles := func() {
		for _, f := range files {
			f.Close()
		}
	}
	env, err := json.Marshal(spec)
	if err != nil {
		closeFiles()
		return sideStats{}, childReport{}, err
	}
	exe, err := os.Executable()
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
	cmd := exec.Command(exe)
	// A race-enabled binary sleeps 1s at exit by default
	// (atexit_sleep_ms); a child has nothing left to report by then.
	cmd.Env = append(os.Environ(), EnvChild+"="+string(env),
		"GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	cmd.ExtraFiles = files
	cmd.Stdin = stdinR
	var stdout, stderr limitedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Start()
	stdinR.Close()
	closeFiles()
	if err != nil {
		return sideStats{}, childReport{}, fmt.Errorf("start child: %v: %w", err, ErrChild)
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
	deadline := time.NewTimer(spec.Timeout)
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
		case <-time.After(time.Second):
			out = finish("child exited early")
		}
	case <-deadline.C:
		cmd.Process.Kill()
		out = finish(fmt.Sprintf("cell took over %v", spec.Timeout))
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
	dec := json.NewDecoder(&stdout.Buffer)
	repErr := dec.Decode(&rep)
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
		childErr = fmt.Errorf("child %v, no report%s: %w", waitErr, msg, ErrChild)
	case waitErr != nil:
		childErr = fmt.Errorf("child: %v: %w", waitErr, ErrChild)
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
