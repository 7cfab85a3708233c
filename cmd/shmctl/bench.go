package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/shmkit/shmkit/bench"
)

// benchFlags are the flags of `shmctl bench`.
type benchFlags struct {
	sizes, transports, waits, workloads, cpus, scaling string
	duration, warmup                                   time.Duration
	minMsgs                                            int
	rate                                               float64
	noLimits, noVerify                                 bool
	json, csv, benchfmt                                bool
	plot, from                                         string
	progress                                           string
}

func init() {
	// The benchmark re-executes this binary as the child of each cell.
	if bench.IsChild() {
		os.Exit(bench.ChildMain())
	}
	rootCmd.AddCommand(newBenchCmd())
}

func newBenchCmd() *cobra.Command {
	var f benchFlags
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Benchmark shmkit rings and channels against pipes, sockets and message queues, across processes",
		Long: `bench moves messages between this process and a child process over each
transport and prints throughput (stream), round-trip latency (pingpong) and CPU
time per message, with ratios against the pipe and against the machine's limits
probed in the same run (memcpy, a cross-core atomic ping-pong, a futex round
trip, a trivial system call), and the harness's own cost per message measured
over a no-op transport. Every message's sequence number and tail stamp are
checked and one in 64 is checksummed (CRC-32C); an untimed verification cell
per transport and size checksums every message. A kernel limit makes a cell
"n/a" with the reason. The channel rows (pubsub, fanout: one publisher, four
subscribers, -zc: Loan/Publish, Receive/Release) use the root package's public
API. The scaling rows run an MPMC ring and a work queue channel with 1, 2, 4
and 8 producers and consumers.

The quick default (64B,4KiB,64KiB,1MiB, every transport) takes under a minute
on 2 cores.`,
		Args:              cobra.NoArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBench(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.sizes, "sizes", "64,4KiB,64KiB,1MiB", "message sizes, comma-separated (24B to 64MiB)")
	fl.StringVar(&f.transports, "transports", strings.Join(bench.Transports(), ","), "transports, comma-separated (-zc: zero-copy Reserve/Commit, Peek/Release)")
	fl.StringVar(&f.waits, "wait", "spin,park,spin-then-park", "waiting modes of the shmkit rings (spin, park, spin-then-park, yield)")
	fl.StringVar(&f.workloads, "workloads", "stream,pingpong,scaling", "workloads: stream, pingpong, scaling (MPMC ring and work queue, N producers and N consumers)")
	fl.StringVar(&f.scaling, "scaling", "1,2,4,8", "producer (= consumer) counts of the scaling rows")
	fl.Float64Var(&f.rate, "rate", 0, "pace every stream at this many messages/s and report one-way latency (corrected for coordinated omission); 0: as fast as possible")
	fl.BoolVar(&f.noVerify, "no-verify", false, "skip the untimed verification cells (every message checksummed)")
	fl.DurationVar(&f.duration, "duration", bench.DefaultDuration, "measured time per cell")
	fl.DurationVar(&f.warmup, "warmup", bench.DefaultWarmup, "verified but unmeasured time before each cell's measurement")
	fl.IntVar(&f.minMsgs, "min-msgs", bench.DefaultMinMsgs, "measured messages per cell at least")
	fl.StringVar(&f.cpus, "cpus", "", "pin the parent's and the child's measuring threads: PARENT,CHILD (e.g. 0,1)")
	fl.BoolVar(&f.noLimits, "no-limits", false, "skip the probes of the machine's limits")
	fl.BoolVar(&f.json, "json", false, "print the results as a JSON array")
	fl.BoolVar(&f.csv, "csv", false, "print the results as CSV")
	fl.BoolVar(&f.benchfmt, "benchfmt", false, "print Go benchmark lines (for benchstat)")
	fl.StringVar(&f.plot, "plot", "", "also draw the results into FILE.png or FILE.svg")
	fl.StringVar(&f.from, "from", "", "measure nothing: print (and plot) the results saved in FILE.json by --json")
	fl.StringVar(&f.progress, "progress", "auto", "progress bar on stderr: auto (when stderr is a terminal), always, never")
	completeFixed(cmd, "transports", bench.Transports()...)
	completeFixed(cmd, "wait", "spin", "park", "spin-then-park", "yield")
	completeFixed(cmd, "workloads", "stream", "pingpong", "scaling")
	completeFixed(cmd, "progress", "auto", "always", "never")
	_ = cmd.MarkFlagFilename("plot", "png", "svg")
	_ = cmd.MarkFlagFilename("from", "json")
	return cmd
}

func (f benchFlags) config() (bench.Config, error) {
	var c bench.Config
	var err error
	if c.Sizes, err = bench.ParseSizes(f.sizes); err != nil {
		return c, err
	}
	c.Transports = splitList(f.transports)
	if c.Waits, err = bench.ParseWaits(f.waits); err != nil {
		return c, err
	}
	c.Workloads = splitList(f.workloads)
	if c.CPUs, err = bench.ParseCPUs(f.cpus); err != nil {
		return c, err
	}
	if f.duration <= 0 || f.warmup < 0 || f.minMsgs < 1 {
		return c, fmt.Errorf("--duration and --min-msgs must be positive, --warmup not negative: %w", bench.ErrConfig)
	}
	c.Duration, c.Warmup, c.MinMsgs, c.NoLimits = f.duration, f.warmup, f.minMsgs, f.noLimits
	c.Rate, c.NoVerify = f.rate, f.noVerify
	for _, n := range splitList(f.scaling) {
		v, err := strconv.Atoi(n)
		if err != nil {
			return c, fmt.Errorf("%w: --scaling %q: %v", bench.ErrConfig, n, err)
		}
		c.Scaling = append(c.Scaling, v)
	}
	if c.Warmup == 0 {
		c.Warmup = time.Nanosecond // no warm-up: a zero Config field would mean the default
	}
	n := 0
	for _, b := range []bool{f.json, f.csv, f.benchfmt} {
		if b {
			n++
		}
	}
	if n > 1 {
		return c, fmt.Errorf("--json, --csv and --benchfmt exclude each other: %w", bench.ErrConfig)
	}
	if f.plot != "" && !strings.HasSuffix(f.plot, ".png") && !strings.HasSuffix(f.plot, ".svg") {
		return c, fmt.Errorf("--plot %q: want a .png or .svg file: %w", f.plot, bench.ErrConfig)
	}
	switch f.progress {
	case "auto", "always", "never":
	default:
		return c, fmt.Errorf("--progress %q: want auto, always or never: %w", f.progress, bench.ErrConfig)
	}
	return c, nil
}

// loadAverage returns the 1-minute load average from /proc/loadavg, or ""
// where there is none.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// estimate is a rough duration of a run: each step costs its warm-up and
// measured time plus a process start.
func estimate(c bench.Config) time.Duration {
	return time.Duration(bench.Cells(c)) * (c.Duration + c.Warmup + 30*time.Millisecond)
}

func runBench(ctx context.Context, stdout, stderr io.Writer, f benchFlags) error {
	cfg, err := f.config()
	if err != nil {
		return err
	}
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()

	showBar := f.progress == "always"
	if f.progress == "auto" {
		ef, ok := stderr.(*os.File)
		showBar = ok && term.IsTerminal(int(ef.Fd())) && estimate(cfg) > 2*time.Second
	}
	if showBar {
		bar := progressbar.NewOptions(bench.Cells(cfg),
			progressbar.OptionSetWriter(stderr),
			progressbar.OptionSetDescription("bench"),
			progressbar.OptionShowCount(),
			progressbar.OptionSetWidth(30),
			progressbar.OptionClearOnFinish(),
		)
		cfg.Progress = func(done, total int, cell string) {
			bar.Describe(fmt.Sprintf("%-32s", cell))
			_ = bar.Set(done)
			if done == total {
				_ = bar.Finish()
			}
		}
	}
	loadBefore := loadAverage()
	var results []bench.Result
	var runErr error
	if f.from != "" {
		// Re-render a saved run: no measurement, no load average.
		loadBefore = ""
		b, err := os.ReadFile(f.from)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &results); err != nil {
			return fmt.Errorf("%w: --from %s: %v", bench.ErrConfig, f.from, err)
		}
		bench.AddRatios(results)
	} else {
		results, runErr = bench.Run(ctx, cfg)
		if runErr != nil && len(results) == 0 {
			return runErr
		}
	}
	switch {
	case f.json:
		err = bench.WriteJSON(stdout, results)
	case f.csv:
		err = bench.WriteCSV(stdout, results)
	case f.benchfmt:
		err = bench.WriteBenchfmt(stdout, results)
	default:
		err = bench.WriteTable(stdout, results)
		if err == nil && loadBefore != "" {
			// Other work on the machine moves every figure: say how busy it was.
			_, err = fmt.Fprintf(stdout, "%d CPUs; 1-minute load average %s before the run, %s after\n",
				runtime.NumCPU(), loadBefore, loadAverage())
		}
	}
	if err != nil {
		return err
	}
	if f.plot != "" {
		if err := bench.Plot(f.plot, results); err != nil {
			return err
		}
	}
	return runErr
}
