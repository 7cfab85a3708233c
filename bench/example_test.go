package bench_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/shmkit/shmkit/bench"
	"github.com/shmkit/shmkit/futex"
)

// A program that embeds the suite must let the benchmark's children run:
// each cell re-executes the program, and ChildMain is the child's side.
func ExampleIsChild() {
	if bench.IsChild() {
		os.Exit(bench.ChildMain())
	}
	// ... the program's own work, e.g. ExampleRun.
}

// Run measures the cells a Config asks for; the formats print them.
func ExampleRun() {
	cfg := bench.Config{
		Sizes:      []int{64, 64 << 10},
		Transports: []string{"spsc", "spsc-zc", "pipe", "unix"},
		Waits:      []futex.Strategy{futex.SpinThenPark},
		Workloads:  []string{bench.Stream, bench.PingPong},
		Duration:   200 * time.Millisecond,
	}
	results, err := bench.Run(context.Background(), cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	_ = bench.WriteTable(os.Stdout, results)
	for _, r := range results {
		if r.Transport == "spsc-zc/spin-then-park" && r.Workload == bench.Stream && r.VsPipe != nil {
			fmt.Printf("%s: %.1fx the pipe (harness %.0f ns/msg)\n", bench.SizeName(r.Size), *r.VsPipe, *r.HarnessNsPerMsg)
		}
	}
}
