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
			mem := alignedBuf(tapRegionSize(DefaultTapSlots, DefaultTapSnap))
			initTapRegion(mem, DefaultTapSlots, DefaultTapSnap)
			g, err := decodeTapRegion(mem, len(mem))
			if err != nil {
				b.Fatal(err)
			}
			t := newTapRing(mem, g)
			msg := alignedBuf(size)
			b.ReportAllocs()
			for i := range b.N {
				t.copyOut(4, 4, uint64(i), msg)
			}
		})
	}
}
