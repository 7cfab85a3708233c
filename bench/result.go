package bench

import (
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Result is one cell of a run: a transport, a workload and a size. It is
// the JSON object of `shmctl bench --json`.
//
// For Stream, MsgsPerSec counts messages delivered per second and the
// latency fields are null (not measured). For PingPong, MsgsPerSec counts
// round trips per second, MBPerSec the payload bytes of one direction, and
// the latency fields give the round-trip time. CPUNsPerMsg is the CPU time
// of both processes in the measured window divided by the messages (round
// trips); CPUParentNsPerMsg and CPUChildNsPerMsg split it.
type Result struct {
	Transport string `json:"transport"`
	// Family groups rows: FamilyLimit, FamilyHarness, FamilyShmkit,
	// FamilyOS, FamilyRef.
	Family   string `json:"family"`
	Workload string `json:"workload"`
	Size     int    `json:"size"`
	// Wait is the waiting mode of a shmkit ring ("" for other transports).
	Wait string `json:"wait,omitempty"`
	// Rate is the fixed rate (messages/s) of a paced stream; its latency
	// fields are then one-way latencies from each message's intended send
	// time.
	Rate float64 `json:"rate,omitempty"`
	// Senders and Receivers are the goroutines of a scaling row.
	Senders   int `json:"senders,omitempty"`
	Receivers int `json:"receivers,omitempty"`

	Msgs       int64   `json:"msgs"`
	Seconds    float64 `json:"seconds"`
	MsgsPerSec float64 `json:"msgs_per_sec"`
	MBPerSec   float64 `json:"mb_per_sec"`

	P50  *int64 `json:"p50_ns"`
	P90  *int64 `json:"p90_ns"`
	P99  *int64 `json:"p99_ns"`
	P999 *int64 `json:"p999_ns"`
	Max  *int64 `json:"max_ns"`
	// Min is the fastest round trip (for the atomic probe: the fastest
	// batch mean), the floor that VsLimit compares against.
	Min *int64 `json:"min_ns"`

	CPUNsPerMsg       float64 `json:"cpu_ns_per_msg"`
	CPUParentNsPerMsg float64 `json:"cpu_parent_ns_per_msg"`
	CPUChildNsPerMsg  float64 `json:"cpu_child_ns_per_msg"`

	// Summed counts the messages checksummed whole, by both sides
	// together (a sample in timed cells, every message in Verify cells);
	// every message's sequence number and tail stamp are checked.
	Summed int64 `json:"checksummed"`

	// HarnessNsPerMsg is the harness's own cost per message (per round
	// trip) at this workload and size, measured over the no-op transport
	// in the same run: how much of CPUNsPerMsg and of the latency is the
	// harness's.
	HarnessNsPerMsg *float64 `json:"harness_ns_per_msg"`
	// Clock and ClockNs (harness rows) name the latency clock and its
	// cost per read.
	Clock   string  `json:"clock,omitempty"`
	ClockNs float64 `json:"clock_ns,omitempty"`

	// VsPipe is the speed-up over the pipe at the same workload and size:
	// throughput ratio for Stream, inverse p50 ratio for PingPong and for
	// a Stream at a fixed rate.
	VsPipe *float64 `json:"vs_pipe"`
	// VsLimit is the fraction of the machine's limit reached: throughput
	// over memcpy throughput for Stream; for PingPong, the fastest atomic
	// round trip (the probe's Min) plus two memcpys of the message, over
	// p50.
	VsLimit *float64 `json:"vs_limit"`

	// Runs is how many times the cell ran when more than once (the
	// baseline: first, in its place and last of its group), and Spread
	// the ratio of the best to the worst headline figure among them; the
	// row is the median run.
	Runs   int     `json:"runs,omitempty"`
	Spread float64 `json:"spread,omitempty"`

	// again marks a repeated run that Run folds into the cell's row.
	again bool

	// Error is empty for a cell that ran. A cell a kernel limit rules out
	// says "n/a: " and the limit.
	Error string `json:"error"`
}

// OK reports whether the cell ran.
func (r Result) OK() bool { return r.Error == "" }

// NA reports whether the cell could not run because of a limit.
func (r Result) NA() bool { return strings.HasPrefix(r.Error, ErrUnavailable.Error()+":") }

// IsLimit reports whether the row is a probe of the machine's limits.
func (r Result) IsLimit() bool { return r.Family == FamilyLimit }

func ptr[T any](v T) *T { return &v }

// setLatency fills the latency fields from nanosecond percentiles.
func (r *Result) setLatency(p50, p90, p99, p999, mx int64) {
	r.P50, r.P90, r.P99, r.P999, r.Max = ptr(p50), ptr(p90), ptr(p99), ptr(p999), ptr(mx)
}

// setHist fills the latency fields from a histogram of nanoseconds.
func (r *Result) setHist(h *hdrhistogram.Histogram) {
	r.setLatency(h.ValueAtQuantile(50), h.ValueAtQuantile(90), h.ValueAtQuantile(99), h.ValueAtQuantile(99.9), h.Max())
	r.Min = ptr(h.Min())
}

// setRate fills the rate fields from a count over an elapsed time.
func (r *Result) setRate(msgs int64, elapsed time.Duration) {
	r.Msgs = msgs
	r.Seconds = elapsed.Seconds()
	if elapsed > 0 {
		r.MsgsPerSec = float64(msgs) / elapsed.Seconds()
		r.MBPerSec = r.MsgsPerSec * float64(r.Size) / 1e6
	}
}

// setCPU fills the CPU fields from the two processes' CPU times.
func (r *Result) setCPU(parent, child time.Duration) {
	if r.Msgs <= 0 {
		return
	}
	r.CPUParentNsPerMsg = float64(parent.Nanoseconds()) / float64(r.Msgs)
	r.CPUChildNsPerMsg = float64(child.Nanoseconds()) / float64(r.Msgs)
	r.CPUNsPerMsg = r.CPUParentNsPerMsg + r.CPUChildNsPerMsg
}

type cellKey struct {
	workload string
	size     int
}

// AddRatios fills VsPipe and VsLimit of every result that ran, from the
// pipe rows and the limit rows among results.
func AddRatios(results []Result) {
	pipe := map[cellKey]Result{}
	harness := map[cellKey]float64{}
	memcpy := map[int]Result{}
	var atomicFloor int64
	for _, r := range results {
		if !r.OK() {
			continue
		}
		switch r.Transport {
		case Harness:
			if r.CPUNsPerMsg > 0 {
				harness[cellKey{r.Workload, r.Size}] = r.CPUNsPerMsg
			}
		case "pipe":
			pipe[cellKey{r.Workload, r.Size}] = r
		case LimitMemcpy:
			memcpy[r.Size] = r
		case LimitAtomic:
			// The limit is a floor: the fastest round trip measured, which
			// a disturbed probe moves much less than its median.
			if r.Min != nil && *r.Min > 0 {
				atomicFloor = *r.Min
			} else if r.P50 != nil {
				atomicFloor = *r.P50
			}
		}
	}
	for i := range results {
		r := &results[i]
		r.VsPipe, r.VsLimit, r.HarnessNsPerMsg = nil, nil, nil
		if !r.OK() || r.IsLimit() {
			continue
		}
		if h, ok := harness[cellKey{r.Workload, r.Size}]; ok {
			r.HarnessNsPerMsg = ptr(h)
		}
		if r.Workload != Stream && r.Workload != PingPong {
			continue
		}
		if p, ok := pipe[cellKey{r.Workload, r.Size}]; ok {
			switch {
			case r.Workload == Stream && r.Rate > 0 && p.P50 != nil && r.P50 != nil && *r.P50 > 0:
				// Paced: the rates are the same; the latencies differ.
				r.VsPipe = ptr(float64(*p.P50) / float64(*r.P50))
			case r.Workload == Stream && p.MsgsPerSec > 0:
				r.VsPipe = ptr(r.MsgsPerSec / p.MsgsPerSec)
			case r.Workload == PingPong && p.P50 != nil && r.P50 != nil && *r.P50 > 0:
				r.VsPipe = ptr(float64(*p.P50) / float64(*r.P50))
			}
		}
		m, haveCopy := memcpy[r.Size]
		switch {
		case r.Family == FamilyHarness:
		case r.Workload == Stream && strings.Contains(r.Transport, "-zc"):
			// A zero-copy stream copies nothing: memcpy is no limit for it.
		case r.Workload == Stream && haveCopy && m.MsgsPerSec > 0:
			r.VsLimit = ptr(r.MsgsPerSec / m.MsgsPerSec)
		case r.Workload == PingPong && atomicFloor > 0 && r.P50 != nil && *r.P50 > 0:
			limit := float64(atomicFloor)
			if haveCopy && m.MBPerSec > 0 {
				limit += 2 * float64(r.Size) / (m.MBPerSec * 1e6) * 1e9
			}
			r.VsLimit = ptr(limit / float64(*r.P50))
		}
	}
}
