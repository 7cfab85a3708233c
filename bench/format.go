package bench

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
)

// WriteJSON writes results as one JSON array of Result objects.
func WriteJSON(w io.Writer, results []Result) error {
	if results == nil {
		results = []Result{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(results)
}

// CSVHeader returns the header row WriteCSV writes: the JSON field names.
func CSVHeader() []string {
	return []string{
		"transport", "family", "workload", "size", "wait", "rate", "senders", "receivers",
		"msgs", "seconds", "msgs_per_sec", "mb_per_sec",
		"p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns", "min_ns",
		"cpu_ns_per_msg", "cpu_parent_ns_per_msg", "cpu_child_ns_per_msg",
		"checksummed", "harness_ns_per_msg", "vs_pipe", "vs_limit", "error",
	}
}

// WriteCSV writes results as CSV with the header CSVHeader. Absent values
// (latency of a stream, ratios without a baseline) are empty fields.
func WriteCSV(w io.Writer, results []Result) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader()); err != nil {
		return err
	}
	i := func(v int64) string { return strconv.FormatInt(v, 10) }
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }
	pi := func(v *int64) string {
		if v == nil {
			return ""
		}
		return i(*v)
	}
	pf := func(v *float64) string {
		if v == nil {
			return ""
		}
		return f(*v)
	}
	for _, r := range results {
		row := []string{
			r.Transport, r.Family, r.Workload, strconv.Itoa(r.Size), r.Wait, f(r.Rate), strconv.Itoa(r.Senders), strconv.Itoa(r.Receivers),
			i(r.Msgs), f(r.Seconds), f(r.MsgsPerSec), f(r.MBPerSec),
			pi(r.P50), pi(r.P90), pi(r.P99), pi(r.P999), pi(r.Max), pi(r.Min),
			f(r.CPUNsPerMsg), f(r.CPUParentNsPerMsg), f(r.CPUChildNsPerMsg),
			i(r.Summed), pf(r.HarnessNsPerMsg), pf(r.VsPipe), pf(r.VsLimit), r.Error,
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// BenchName returns the Go benchmark name of a result, in the key=value
// form benchstat groups by, without the GOMAXPROCS suffix:
// BenchmarkIPC/workload=stream/transport=spsc-spin/size=64B.
func BenchName(r Result) string {
	t := strings.ReplaceAll(r.Transport, "/", "-")
	return fmt.Sprintf("BenchmarkIPC/workload=%s/transport=%s/size=%s", r.Workload, t, SizeName(r.Size))
}

// WriteBenchfmt writes the results that ran as Go benchmark lines that
// benchstat reads: ns/op is the time per message (per round trip for
// ping-pong), with MB/s, CPU time per message and latency percentiles as
// extra units. Cells that did not run are left out.
func WriteBenchfmt(w io.Writer, results []Result) error {
	bw := &errWriter{w: w}
	bw.printf("goos: %s\ngoarch: %s\npkg: github.com/shmkit/shmkit/bench\n", runtime.GOOS, runtime.GOARCH)
	procs := runtime.GOMAXPROCS(0)
	for _, r := range results {
		if !r.OK() || r.MsgsPerSec <= 0 {
			continue
		}
		bw.printf("%s-%d\t%d\t%.2f ns/op", BenchName(r), procs, max(r.Msgs, 1), 1e9/r.MsgsPerSec)
		if r.Size > 0 && r.MBPerSec > 0 {
			bw.printf("\t%.2f MB/s", r.MBPerSec)
		}
		if r.CPUNsPerMsg > 0 {
			bw.printf("\t%.2f cpu-ns/op", r.CPUNsPerMsg)
		}
		for _, p := range []struct {
			unit string
			v    *int64
		}{{"p50-ns", r.P50}, {"p90-ns", r.P90}, {"p99-ns", r.P99}, {"p99.9-ns", r.P999}, {"max-ns", r.Max}, {"min-ns", r.Min}} {
			if p.v != nil {
				bw.printf("\t%d %s", *p.v, p.unit)
			}
		}
		bw.printf("\n")
	}
	return bw.err
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}

// WriteTable writes results as aligned text tables: streaming, ping-pong,
// scaling, then a summary of the verification cells. Rows keep Run's
// order (by size, then by family: limits, shmkit, OS, reference); the ratio
// columns are "x pipe" (speed-up over the pipe) and "of limit" (fraction
// of the machine's limit reached). Each table ends with the harness's own
// cost at each size, measured over the no-op transport in the same run.
func WriteTable(w io.Writer, results []Result) error {
	ew := &errWriter{w: w}
	for _, wl := range []string{Stream, PingPong} {
		var rows []Result
		paced := false
		for _, r := range results {
			if r.Workload == wl && r.Family != FamilyHarness {
				rows = append(rows, r)
				paced = paced || r.Rate > 0
			}
		}
		if len(rows) == 0 {
			continue
		}
		latency := wl == PingPong || paced
		tw := tabwriter.NewWriter(ew, 2, 8, 2, ' ', tabwriter.AlignRight)
		switch {
		case wl == Stream && paced:
			fmt.Fprintf(ew, "streaming at a fixed rate: child produces, parent consumes (one-way latency from each message's intended send time)\n")
		case wl == Stream:
			fmt.Fprintf(ew, "streaming: child produces, parent consumes (messages/s over the measured time)\n")
		default:
			fmt.Fprintf(ew, "ping-pong: parent sends, child echoes (round-trip time)\n")
		}
		if latency {
			fmt.Fprintf(tw, "transport\tsize\tmsgs/s\tmin\tp50\tp90\tp99\tp99.9\tmax\tCPU/msg\tx pipe\tof limit\t\n")
		} else {
			fmt.Fprintf(tw, "transport\tsize\tmsgs/s\tMB/s\tCPU/msg\tx pipe\tof limit\t\n")
		}
		cols := 5
		if latency {
			cols = 10
		}
		prevSize := -1
		for _, r := range rows {
			if prevSize >= 0 && r.Size != prevSize && !r.IsLimit() {
				fmt.Fprintf(tw, "\t\t\n")
			}
			if !r.IsLimit() {
				prevSize = r.Size
			}
			if !r.OK() {
				// The reason trails the row, outside the columns, so a
				// long one does not widen them.
				fmt.Fprintf(tw, "%s\t%s\t%s %s\n", r.Transport, SizeName(r.Size), strings.Repeat("-\t", cols), r.Error)
				continue
			}
			if latency {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Transport, SizeName(r.Size),
					fmtCount(r.MsgsPerSec), fmtPNs(r.Min), fmtPNs(r.P50), fmtPNs(r.P90), fmtPNs(r.P99), fmtPNs(r.P999), fmtPNs(r.Max),
					fmtNs(r.CPUNsPerMsg), fmtRatio(r.VsPipe), fmtPct(r.VsLimit))
			} else {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Transport, SizeName(r.Size),
					fmtCount(r.MsgsPerSec), fmtCount(r.MBPerSec), fmtNs(r.CPUNsPerMsg), fmtRatio(r.VsPipe), fmtPct(r.VsLimit))
			}
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		writeHarness(ew, results, wl)
		writeBaseline(ew, rows)
		if wl == Stream {
			writeFanOut(ew, rows)
		}
		fmt.Fprintln(ew)
	}
	writeScaling(ew, results)
	writeVerify(ew, results)
	return ew.err
}

// writeHarness writes the harness's cost line of workload wl.
func writeHarness(w io.Writer, results []Result, wl string) {
	var parts []string
	clock := ""
	for _, r := range results {
		if r.Family != FamilyHarness || r.Workload != wl {
			continue
		}
		if !r.OK() {
			parts = append(parts, SizeName(r.Size)+" failed: "+r.Error)
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %s", SizeName(r.Size), fmtNs(r.CPUNsPerMsg)))
		if r.Clock != "" {
			clock = fmt.Sprintf("; latency clock %s, %s per read", r.Clock, fmtNs(r.ClockNs))
		}
	}
	if len(parts) == 0 {
		return
	}
	unit := "per message"
	if wl == PingPong {
		unit = "per round trip"
	}
	fmt.Fprintf(w, "harness alone (no-op transport, same run; CPU time), %s: %s%s\n", unit, strings.Join(parts, ", "), clock)
}

// writeBaseline says which rows are medians of several runs and how far
// their runs were apart.
func writeBaseline(w io.Writer, rows []Result) {
	byName := map[string][]string{}
	var names []string
	for _, r := range rows {
		if r.Runs > 1 {
			if _, ok := byName[r.Transport]; !ok {
				names = append(names, r.Transport)
			}
			byName[r.Transport] = append(byName[r.Transport], fmt.Sprintf("%s %s", SizeName(r.Size), sig3(r.Spread)+"x"))
		}
	}
	for _, n := range names {
		fmt.Fprintf(w, "%s: median of runs first, in place and last in each size's group; best/worst: %s\n",
			n, strings.Join(byName[n], ", "))
	}
}

// writeFanOut sets the publisher's cost per message of the fan-out rows
// (one publisher, four subscribers) against the one-subscriber rows': the
// child is the publisher, so its CPU time per message is that cost.
func writeFanOut(w io.Writer, rows []Result) {
	type key struct {
		transport string
		size      int
	}
	by := map[key]Result{}
	for _, r := range rows {
		if r.OK() {
			by[key{r.Transport, r.Size}] = r
		}
	}
	var parts []string
	for _, r := range rows {
		one, ok := by[key{strings.Replace(r.Transport, "fanout", "pubsub", 1), r.Size}]
		if !r.OK() || !strings.HasPrefix(r.Transport, "fanout") || !ok || one.CPUChildNsPerMsg <= 0 {
			continue
		}
		x := r.CPUChildNsPerMsg / one.CPUChildNsPerMsg
		parts = append(parts, fmt.Sprintf("%s %s %s vs %s (%s)", r.Transport, SizeName(r.Size),
			fmtNs(r.CPUChildNsPerMsg), fmtNs(one.CPUChildNsPerMsg), fmtRatio(&x)))
	}
	if len(parts) > 0 {
		fmt.Fprintf(w, "fan-out: publisher's CPU per message, 1->%d vs 1->1 (msgs/s above is per subscriber): %s\n",
			fanOutSubscribers, strings.Join(parts, ", "))
	}
}

// fanOutSubscribers is the number of subscribers of the fan-out rows.
const fanOutSubscribers = 4

// writeScaling writes the scaling table.
func writeScaling(w io.Writer, results []Result) {
	var rows []Result
	for _, r := range results {
		if r.Workload == Scaling {
			rows = append(rows, r)
		}
	}
	if len(rows) == 0 {
		return
	}
	ring := "an MPMC ring"
	for _, r := range rows {
		if r.Wait != "" {
			ring += ", " + r.Wait
			break
		}
	}
	fmt.Fprintf(w, "scaling: one shared queue (mpmc: %s; workqueue: a work queue channel), NAME/PxC = P producer goroutines (child) and C consumer goroutines (parent), %s\n",
		ring, SizeName(rows[0].Size))
	if cpus := runtime.NumCPU(); cpus < 2*rows[len(rows)-1].Senders {
		n := cpus/2 + 1
		fmt.Fprintf(w, "(this machine has %d CPUs: from %dx%d on, the goroutines oversubscribe it)\n", cpus, n, n)
	}
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "transport\tmsgs/s\tMB/s\tCPU/msg\tx first\t\n")
	var base float64
	var queue string
	for _, r := range rows {
		if q, _, _ := strings.Cut(r.Transport, "/"); q != queue {
			queue, base = q, 0 // "x first" is per queue
		}
		if !r.OK() {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t- %s\n", r.Transport, r.Error)
			continue
		}
		if base == 0 {
			base = r.MsgsPerSec
		}
		x := r.MsgsPerSec / base
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", r.Transport, fmtCount(r.MsgsPerSec), fmtCount(r.MBPerSec),
			fmtNs(r.CPUNsPerMsg), fmtRatio(&x))
	}
	tw.Flush()
	fmt.Fprintln(w)
}

// writeVerify summarises the verification cells: one line, and a line per
// cell that failed or could not run.
func writeVerify(w io.Writer, results []Result) {
	var cells, msgs, summed int
	var bad []string
	for _, r := range results {
		if r.Workload != Verify {
			continue
		}
		cells++
		if !r.OK() {
			bad = append(bad, fmt.Sprintf("  %s %s: %s", r.Transport, SizeName(r.Size), r.Error))
			continue
		}
		msgs += int(r.Msgs)
		summed += int(r.Summed)
	}
	if cells == 0 {
		return
	}
	fmt.Fprintf(w, "verification (untimed, every message checksummed by both sides): %d cells, %d checksums, %d cells failed or n/a\n",
		cells, summed, len(bad))
	for _, b := range bad {
		fmt.Fprintln(w, b)
	}
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

// fmtNs formats nanoseconds with three significant digits.
func fmtNs(ns float64) string {
	switch {
	case ns <= 0:
		return "-"
	case ns < 1e3:
		return fmt.Sprintf("%.0fns", ns)
	case ns < 1e6:
		return sig3(ns/1e3) + "µs"
	case ns < 1e9:
		return sig3(ns/1e6) + "ms"
	}
	return sig3(ns/1e9) + "s"
}

func fmtPNs(v *int64) string {
	if v == nil {
		return "-"
	}
	return fmtNs(float64(*v))
}

// fmtCount formats a rate with an SI suffix and three significant digits.
func fmtCount(v float64) string {
	switch {
	case v <= 0:
		return "-"
	case v < 1e3:
		return sig3(v)
	case v < 1e6:
		return sig3(v/1e3) + "k"
	case v < 1e9:
		return sig3(v/1e6) + "M"
	}
	return sig3(v/1e9) + "G"
}

func fmtRatio(v *float64) string {
	if v == nil {
		return "-"
	}
	return sig3(*v) + "x"
}

func fmtPct(v *float64) string {
	if v == nil {
		return "-"
	}
	return sig3(*v*100) + "%"
}

// sig3 formats v with about three significant digits and never in
// exponent form.
func sig3(v float64) string {
	switch {
	case v >= 99.95:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 9.995:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case v >= 0.9995:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}
