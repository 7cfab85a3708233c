//go:build linux

package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/shmkit/shmkit/internal/reexec"
)

// childName is the name the benchmark child is registered under with
// internal/reexec.
const childName = "shmkit-bench"

// envCell holds the cell a child runs, as JSON.
const envCell = "SHMKIT_BENCH_CELL"

func init() { reexec.Register(childName, childMain) }

// childReport is what a child prints on its standard output, as one JSON
// object, when its role ends.
type childReport struct {
	Msgs      int64   `json:"msgs"`
	ElapsedNs int64   `json:"elapsed_ns"`
	CPUNs     int64   `json:"cpu_ns"`
	Summed    int64   `json:"summed"`
	PerSender []int64 `json:"per_sender,omitempty"` // scaling: messages each producer sent
	Error     string  `json:"error,omitempty"`
}

// IsChild reports whether this process was started by Run as the child of
// a cell. A program that runs benchmarks calls ChildMain first thing when
// it is (see cmd/shmctl).
// (The package's tests start children of their own under names with the
// same prefix.)
func IsChild() bool { return strings.HasPrefix(reexec.Name(), childName) }

// ChildMain runs the child side of the cell this process was started for
// and returns the process exit code: 0 when the role completed, 1
// otherwise (the report on standard output says why), 2 for a bad start.
// It exits early, with code 3, when its standard input (a pipe from the
// parent) closes: the parent is gone.
func ChildMain() int {
	code, ok := reexec.Main()
	if !ok {
		fmt.Fprintln(os.Stderr, "bench: ChildMain in a process that is no benchmark child")
		return 2
	}
	return code
}

// childSetup reads the cell and starts the orphan watch.
func childSetup() (cell, error) {
	var c cell
	if err := json.Unmarshal([]byte(os.Getenv(envCell)), &c); err != nil {
		return c, fmt.Errorf("bad %s: %v", envCell, err)
	}
	if c.Size < 0 || c.Size > MaxSize {
		return c, fmt.Errorf("message size %d out of range", c.Size)
	}
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(3)
	}()
	return c, nil
}

// childFiles are the descriptors the parent passed (3, 4, ...).
func childFiles(n int) []*os.File {
	files := make([]*os.File, n)
	for i := range files {
		files[i] = os.NewFile(uintptr(3+i), fmt.Sprintf("fd%d", 3+i))
	}
	return files
}

// report prints rep and returns the exit code.
func report(st sideStats, perSender []int64, err error) int {
	rep := childReport{Msgs: st.msgs, ElapsedNs: st.elapsed.Nanoseconds(), CPUNs: st.cpu.Nanoseconds(),
		Summed: st.summed, PerSender: perSender}
	if err != nil {
		rep.Error = err.Error()
	}
	if err := json.NewEncoder(os.Stdout).Encode(rep); err != nil || rep.Error != "" {
		return 1
	}
	return 0
}

func childMain() int {
	c, err := childSetup()
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench child: %v\n", err)
		return 2
	}
	st, per, err := childRole(&c, nil)
	return report(st, per, err)
}

// childRole runs the child's side of c; wrap, when set, may wrap the ends
// (tests make a child crash through it).
func childRole(c *cell, wrap func(ends) ends) (sideStats, []int64, error) {
	restore, err := pinThread(c.CPU)
	if err != nil {
		return sideStats{}, nil, err
	}
	defer restore()
	switch c.Transport {
	case probeAtomic:
		st, err := atomicChild(c)
		return st, nil, err
	case probeFutex:
		st, err := futexChild(c)
		return st, nil, err
	}
	if c.Size < MinSize {
		return sideStats{}, nil, fmt.Errorf("%w: message size %d under %d", ErrConfig, c.Size, MinSize)
	}
	if c.Workload == Scaling {
		return scaleChild(c)
	}
	t, ok := transports[c.Transport]
	if !ok {
		return sideStats{}, nil, fmt.Errorf("%w: unknown transport %q", ErrConfig, c.Transport)
	}
	e, err := t.attach(c, childFiles(min(max(c.Files, 0), 16)))
	if err != nil {
		return sideStats{}, nil, err
	}
	if wrap != nil {
		e = wrap(e)
	}
	st, err := childSide(c, e)
	return st, nil, err
}

// childSide runs the child's role of c over its ends: produce a stream or
// echo pings.
func childSide(c *cell, e ends) (sideStats, error) {
	p := paceOf(c)
	if c.pingpong() {
		ec := newEchoer(e.in, e.out, p)
		err := runRole(ec)
		return ec.st, err
	}
	pr := newProducer(e.out, p)
	err := runRole(pr)
	return pr.st, err
}
