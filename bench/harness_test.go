package bench

import (
	"testing"
	"time"
)

// BenchmarkHarness is the harness alone: the roles of both sides of a cell
// in one loop over the no-op transport (what Run reports as the harness
// row). ns/op is its cost per message (stream) or per round trip
// (pingpong), to set beside the ring's own cost per message
// (go test -bench 'BenchmarkSPSC/64B/unbatched' ./ring/).
func BenchmarkHarness(b *testing.B) {
	for _, wl := range []string{Stream, PingPong} {
		for _, size := range []int{64, 4 << 10} {
			b.Run(wl+"/"+SizeName(size), func(b *testing.B) {
				c := cell{Workload: wl, Size: size, Warmup: time.Nanosecond, Duration: time.Nanosecond, MinMsgs: b.N}
				b.ResetTimer()
				st, err := harnessCost(&c)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(st.elapsed.Nanoseconds())/float64(max(st.msgs, 1)), "ns/op")
				b.ReportMetric(float64(st.cpu.Nanoseconds())/float64(max(st.msgs, 1)), "cpu-ns/op")
			})
		}
	}
}
