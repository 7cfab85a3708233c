package bench

import "testing"

// BenchmarkCopy compares one memmove with copyChunked at and above the
// 1 MiB from which Go's memmove uses non-temporal stores, and just below.
func BenchmarkCopy(b *testing.B) {
	for _, n := range []int{1<<20 - 64, 1 << 20, 4 << 20} {
		src, dst := make([]byte, n), make([]byte, n)
		fillPayload(src)
		b.Run(SizeName(n)+"/memmove", func(b *testing.B) {
			b.SetBytes(int64(n))
			for b.Loop() {
				copy(dst, src)
			}
		})
		b.Run(SizeName(n)+"/chunked", func(b *testing.B) {
			b.SetBytes(int64(n))
			for b.Loop() {
				copyChunked(dst, src)
			}
		})
	}
}
