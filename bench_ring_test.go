package shmkit_test

import (
	"context"
	"testing"
	"unsafe"

	"github.com/shmkit/shmkit/ring"
)

// bareRing is the baseline of the channel benchmarks: an SPSC ring of
// 64-byte slots over ordinary memory, the same copy in and copy out the
// channel's Send/ReceiveInto do without the pool and the fan-out. It is
// the only use of package ring in the root package's tests.
func bareRing(b *testing.B, depth, slot int) (enq func(context.Context, []byte) error, deq func(context.Context, []byte) (int, error)) {
	size, err := ring.SPSCSize(depth, slot)
	if err != nil {
		b.Fatal(err)
	}
	words := make([]uint64, size/8+8)
	mem := unsafe.Slice((*byte)(unsafe.Pointer(&words[0])), size+64)
	off := (64 - int(uintptr(unsafe.Pointer(&mem[0]))%64)) % 64
	r, err := ring.NewSPSC(mem[off:off+size], depth, slot)
	if err != nil {
		b.Fatal(err)
	}
	return r.Producer().Enqueue, r.Consumer().Dequeue
}
