package shmkit

import (
	"fmt"
	"testing"
)

// BenchmarkTapCopyOut is the publisher's side of a tap alone: one copy of a
// message into the tap ring (no reader), on ordinary memory.
//
//	nice -n 10 go test -run '^$' -bench TapCopyOut -count 5 .
func BenchmarkTapCopyOut(b *testing.B) {
	for _, size := range []int{64, 1024} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			t, _, _ := testTapRing(b, DefaultTapSlots, DefaultTapSnap)
			msg := alignedBuf(size)
			b.ReportAllocs()
			for i := range b.N {
				t.copyOut(4, 4, uint64(i), msg)
			}
		})
	}
}

// BenchmarkTapReceive is the tap's side alone: TryReceive of copies that
// are ready (refilled by copyOut outside the timer), on ordinary memory.
//
//	nice -n 10 go test -run '^$' -bench TapReceive -count 5 .
func BenchmarkTapReceive(b *testing.B) {
	for _, size := range []int{64, 1024} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			t, mem, g := testTapRing(b, DefaultTapSlots, DefaultTapSnap)
			cfg := Config{MaxMessage: size}.withDefaults()
			lo := 0 // the first publisher's index (Sample.Publisher, generation 0)
			tp := &Tap{t: t, cfg: cfg, e: mem[tpEntries : tpEntries+teSize], buf: make([]uint64, g.snap/8)}
			msg := alignedBuf(size)
			seq := uint64(0)
			b.ReportAllocs()
			for range b.N {
				if _, err := tp.TryReceive(); err != nil {
					b.StopTimer()
					for range DefaultTapSlots {
						seq++
						t.copyOut(lo, lo, seq, msg)
					}
					b.StartTimer()
					if _, err := tp.TryReceive(); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
