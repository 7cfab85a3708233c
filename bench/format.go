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

// CSVHeader is the header row WriteCSV writes: the JSON field names.
var CSVHeader = []string{
	"transport", "workload", "size", "wait", "msgs", "seconds", "msgs_per_sec", "mb_per_sec",
	"p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns", "min_ns",
	"cpu_ns_per_msg", "cpu_parent_ns_per_msg", "cpu_child_ns_per_msg",
	"verified_whole", "vs_pipe", "vs_limit", "error",
}

// WriteCSV writes results as CSV with the header CSVHeader. Absent values
// (latency of a stream, ratios without a baseline) are empty fields.
func WriteCSV(w io.Writer, results []Result) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
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
			r.Transport, r.Workload, strconv.Itoa(r.Size), r.Wait, i(r.Msgs), f(r.Seconds), f(r.MsgsPerSec), f(r.MBPerSec),
			pi(r.P50), pi(r.P90), pi(r.P99), pi(r.P999), pi(r.Max), pi(r.Min),
			f(r.CPUNsPerMsg), f(r.CPUParentNsPerMsg), f(r.CPUChildNsPerMsg),
			i(r.Verified), pf(r.VsPipe), pf(r.VsLimit), r.Error,
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

// WriteTable writes results as aligned text tables, one per workload, with
// the ratio columns: "x pipe" (speed-up over the pipe) and "of limit"
// (fraction of the machine's limit reached).
func WriteTable(w io.Writer, results []Result) error {
	ew := &errWriter{w: w}
	for _, wl := range []string{Stream, PingPong} {
		var rows []Result
		for _, r := range results {
			if r.Workload == wl {
				rows = append(rows, r)
			}
		}
		if len(rows) == 0 {
			continue
		}
		tw := tabwriter.NewWriter(ew, 2, 8, 2, ' ', tabwriter.AlignRight)
		if wl == Stream {
			fmt.Fprintf(ew, "streaming: child produces, parent consumes (messages/s over the measured time)\n")
			fmt.Fprintf(tw, "transport\tsize\tmsgs/s\tMB/s\tCPU/msg\tx pipe\tof limit\t\n")
		} else {
			fmt.Fprintf(ew, "ping-pong: parent sends, child echoes (round-trip time)\n")
			fmt.Fprintf(tw, "transport\tsize\tmin\tp50\tp90\tp99\tp99.9\tmax\tCPU/rt\tx pipe\tof limit\t\n")
		}
		for _, r := range rows {
			if !r.OK() {
				// The reason trails the row, outside the columns, so a
				// long one does not widen them.
				cols := 5
				if wl == PingPong {
					cols = 9
				}
				fmt.Fprintf(tw, "%s\t%s\t%s %s\n", r.Transport, SizeName(r.Size), strings.Repeat("-\t", cols), r.Error)
				continue
			}
			if wl == Stream {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Transport, SizeName(r.Size),
					fmtCount(r.MsgsPerSec), fmtCount(r.MBPerSec), fmtNs(r.CPUNsPerMsg), fmtRatio(r.VsPipe), fmtPct(r.VsLimit))
			} else {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Transport, SizeName(r.Size),
					fmtPNs(r.Min), fmtPNs(r.P50), fmtPNs(r.P90), fmtPNs(r.P99), fmtPNs(r.P999), fmtPNs(r.Max),
					fmtNs(r.CPUNsPerMsg), fmtRatio(r.VsPipe), fmtPct(r.VsLimit))
			}
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(ew)
	}
	return ew.err
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
