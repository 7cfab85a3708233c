//go:build linux

package bench

import (
	"context"
	"testing"
	"time"

	"github.com/shmkit/shmkit/futex"
)

// BenchmarkIPC measures 64-byte messages across two processes for a few
// transports, each next to the pipe in the same run: b.N is the measured
// message (round-trip) count, ns/op the time per message from the
// consumer's (pinger's) clock, and x-pipe the speed-up over the pipe
// (throughput for stream, inverse p50 for ping-pong), and harness-ns/op
// the harness's own share, measured over the no-op transport. The time to
// start the child process is not counted.
func BenchmarkIPC(b *testing.B) {
	for _, wl := range []string{Stream, PingPong} {
		for _, kind := range []string{"spsc", "spsc-zc", "bytering", "mpmc", "unix", "posixmq", "chan"} {
			b.Run(wl+"/"+kind, func(b *testing.B) {
				cfg := Config{
					Sizes: []int{64}, Transports: []string{kind, "pipe"}, Workloads: []string{wl},
					Waits: []futex.Strategy{futex.SpinThenPark}, Duration: time.Nanosecond,
					Warmup: 2 * time.Millisecond, MinMsgs: b.N, NoLimits: true, NoVerify: true,
				}
				results, err := Run(context.Background(), cfg)
				if err != nil {
					b.Fatal(err)
				}
				for _, r := range results {
					if r.Transport == "pipe" || r.Family == FamilyHarness {
						continue
					}
					if !r.OK() {
						b.Fatal(r.Error)
					}
					b.ReportMetric(1e9/r.MsgsPerSec, "ns/op")
					b.ReportMetric(r.MBPerSec, "MB/s")
					b.ReportMetric(r.CPUNsPerMsg, "cpu-ns/op")
					if r.P50 != nil {
						b.ReportMetric(float64(*r.P50), "p50-ns")
						b.ReportMetric(float64(*r.P99), "p99-ns")
					}
					if r.VsPipe != nil {
						b.ReportMetric(*r.VsPipe, "x-pipe")
					}
					if r.HarnessNsPerMsg != nil {
						b.ReportMetric(*r.HarnessNsPerMsg, "harness-ns/op")
					}
				}
			})
		}
	}
}
