package ring

import (
	"math"
	"testing"
	"unsafe"
)

// alignedMem returns n zeroed bytes of ordinary Go memory at a 64-byte
// aligned address, as the rings require.
func alignedMem(tb testing.TB, n int) []byte {
	tb.Helper()
	b := make([]byte, n+Alignment)
	off := 0
	if r := uintptr(unsafe.Pointer(unsafe.SliceData(b))) % Alignment; r != 0 {
		off = Alignment - int(r)
	}
	return b[off : off+n : off+n]
}

// twice returns 2n, or math.MaxInt where that overflows an int (32-bit
// platforms): either way a capacity over the limit.
func twice(n int) int {
	if n > math.MaxInt/2 {
		return math.MaxInt
	}
	return 2 * n
}
