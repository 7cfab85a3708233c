package atomicx

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"unsafe"
)

// The assembly treats *atomic.Uint32 / *atomic.Uint64 as the address of the
// value itself: their other fields must stay zero-sized.
func TestTypedAtomicsAreBareWords(t *testing.T) {
	if s := unsafe.Sizeof(atomic.Uint32{}); s != 4 {
		t.Fatalf("atomic.Uint32 is %d bytes", s)
	}
	if s := unsafe.Sizeof(atomic.Uint64{}); s != 8 {
		t.Fatalf("atomic.Uint64 is %d bytes", s)
	}
}

func TestStoreLoad(t *testing.T) {
	var a atomic.Uint32
	var b atomic.Uint64
	for _, v := range []uint64{0, 1, 0xdeadbeef, 1<<63 | 5, ^uint64(0)} {
		StoreRelease32(&a, uint32(v))
		StoreRelease64(&b, v)
		if got := LoadAcquire32(&a); got != uint32(v) {
			t.Fatalf("32: stored %#x, loaded %#x", uint32(v), got)
		}
		if got := LoadAcquire64(&b); got != v {
			t.Fatalf("64: stored %#x, loaded %#x", v, got)
		}
	}
	// Neighbouring words are untouched.
	var w [3]atomic.Uint32
	w[0].Store(7)
	w[2].Store(9)
	StoreRelease32(&w[1], 0xffffffff)
	if w[0].Load() != 7 || w[2].Load() != 9 {
		t.Fatalf("neighbours changed: %d %d", w[0].Load(), w[2].Load())
	}
}

// TestMessagePassing is the litmus test the hot paths rely on: a writer
// fills a payload with plain stores, then publishes a sequence number with
// StoreRelease64; a reader that sees the sequence with LoadAcquire64 must
// see the whole payload. Any reordering shows up as a torn payload.
func TestMessagePassing(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		t.Skip("needs two Ps")
	}
	const rounds = 200000
	var payload [8]atomic.Uint64 // written with relaxed-equivalent stores below
	var seq atomic.Uint64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := uint64(1); i <= rounds; i++ {
			for seq.Load() != i-1 { // wait until the reader took the last one
				runtime.Gosched()
			}
			for j := range payload {
				StoreRelease64(&payload[j], i) // ordered among themselves; the test is the seq publish
			}
			StoreRelease64(&seq, i)
			for seq.Load() != i+rounds { // reader acknowledges
				runtime.Gosched()
			}
			seq.Store(i)
		}
	}()
	for i := uint64(1); i <= rounds; i++ {
		for LoadAcquire64(&seq) != i {
			runtime.Gosched()
		}
		for j := range payload {
			if got := payload[j].Load(); got != i {
				t.Fatalf("round %d: payload[%d] = %d", i, j, got)
			}
		}
		seq.Store(i + rounds)
	}
	wg.Wait()
}

func BenchmarkStore(b *testing.B) {
	var w atomic.Uint64
	b.Run("StoreRelease64", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			StoreRelease64(&w, uint64(i))
		}
	})
	b.Run("atomic.Store", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			w.Store(uint64(i))
		}
	})
}

func TestStoreRelease64s(t *testing.T) {
	for _, n := range []int{0, 1, 2, 7, 33} {
		dst := make([]atomic.Uint64, n+1)
		src := make([]uint64, n)
		for i := range src {
			src[i] = uint64(i)*0x0101010101010101 + 1
		}
		StoreRelease64s(dst[:n], src)
		for i := range n {
			if got := LoadAcquire64(&dst[i]); got != src[i] {
				t.Fatalf("n %d: word %d is %#x, want %#x", n, i, got, src[i])
			}
		}
		if dst[n].Load() != 0 {
			t.Fatalf("n %d: stored past the end", n)
		}
		StoreRelease64s(dst, src[:0]) // the shorter length: nothing
	}
}
