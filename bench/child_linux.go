//go:build linux

package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

// childReport is what a child prints on its standard output, as one JSON
// object, when its role ends.
type childReport struct {
	Msgs      int64  `json:"msgs"`
	ElapsedNs int64  `json:"elapsed_ns"`
	CPUNs     int64  `json:"cpu_ns"`
	Verified  int64  `json:"verified"`
	Error     string `json:"error,omitempty"`
}

// IsChild reports whether this process was started by Run as the child of
// a cell (EnvChild is set). A binary that runs benchmarks calls ChildMain
// first thing when it is.
func IsChild() bool { return os.Getenv(EnvChild) != "" }

// ChildMain runs the child side of the cell described in EnvChild and
// returns the process exit code: 0 when the role completed, 1 otherwise
// (the report on standard output says why). It exits early, with code 3,
// when its standard input (a pipe from the parent) closes: the parent is
// gone.
func ChildMain() int {
	var spec cellSpec
	if err := json.Unmarshal([]byte(os.Getenv(EnvChild)), &spec); err != nil {
		fmt.Fprintf(os.Stderr, "bench child: bad %s: %v\n", EnvChild, err)
		return 2
	}
	if spec.Size < 0 || spec.Size > MaxSize || (spec.Size < MinSize && !strings.HasPrefix(spec.Kind, "probe/")) {
		fmt.Fprintf(os.Stderr, "bench child: message size %d out of range\n", spec.Size)
		return 2
	}
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(3)
	}()
	st, err := runChild(spec)
	rep := childReport{Msgs: st.msgs, ElapsedNs: st.elapsed.Nanoseconds(), CPUNs: st.cpu.Nanoseconds(), Verified: st.verified}
	if err != nil {
		rep.Error = err.Error()
	}
	if err := json.NewEncoder(os.Stdout).Encode(rep); err != nil {
		return 1
	}
	if rep.Error != "" {
		return 1
	}
	return 0
}

func runChild(spec cellSpec) (sideStats, error) {
	restore, err := pinThread(spec.CPU)
	if err != nil {
		return sideStats{}, err
	}
	defer restore()
	switch spec.Kind {
	case probeAtomic:
		return atomicChild(spec)
	case probeFutex:
		return futexChild(spec)
	}
	up, down, err := attachLink(spec)
	if err != nil {
		return sideStats{}, err
	}
	if spec.CrashAfter > 0 {
		up = &crashingEndpoint{endpoint: up, left: spec.CrashAfter}
	}
	if spec.pingpong() {
		return pong(down, up, spec.Size)
	}
	return produce(up, pace{size: spec.Size, warmup: spec.Warmup, duration: spec.Duration, minMsgs: spec.MinMsgs})
}
