package futex

import (
	"context"
	"testing"
	"time"
)

// BenchmarkPingPong measures a cross-process round trip through two Events
// for each waiting strategy: the parent flips the turn word and notifies,
// the child (a separate process, started before the timer) answers. ns/op is
// the round trip.
func BenchmarkPingPong(b *testing.B) {
	for _, st := range []Strategy{BusySpin, Yield, SpinThenPark, Park} {
		b.Run(st.String(), func(b *testing.B) {
			s := newShared(b)
			cmd := startChild(b, s, "echo", "FUTEX_TEST_STRATEGY="+st.String())
			waitReady(b, s)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			w := Waiter{Strategy: st}
			// Warm up: both sides running, caches hot.
			t, err := pingPong(ctx, s, w, 0, 100)
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			if _, err := pingPong(ctx, s, w, t, b.N); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/roundtrip")
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "roundtrips/s")
			stopChild(b, s, cmd)
		})
	}
}

// BenchmarkNotifyNoSleeper is the cost the waking side pays on every message
// when nobody sleeps: one atomic load, no system call.
func BenchmarkNotifyNoSleeper(b *testing.B) {
	var e Event
	for i := 0; i < b.N; i++ {
		e.Notify()
	}
}

// BenchmarkWakeSyscall is the cost of a futex wake system call that finds
// nobody: what Notify would pay on every message without the sleeper count.
func BenchmarkWakeSyscall(b *testing.B) {
	var e Event
	for i := 0; i < b.N; i++ {
		_, _ = Wake(&e.seq, 1)
	}
}
