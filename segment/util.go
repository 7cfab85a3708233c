package segment

import (
	"os"
	"strings"
	"sync/atomic"
	"unsafe"
)

// touch faults in every page of mem: a read of one byte per page, or an
// atomic add of zero to one word per page (a write that changes nothing,
// safe while others use the memory).
func touch(mem []byte, write bool) {
	page := os.Getpagesize()
	var sink byte
	for off := 0; off+4 <= len(mem); off += page {
		if write {
			(*atomic.Uint32)(unsafe.Pointer(&mem[off])).Add(0)
		} else {
			sink += mem[off]
		}
	}
	_ = sink
}

// writeZeros fills f with size zero bytes from offset 0, allocating its
// blocks for real (the fallback where fallocate is missing).
func writeZeros(f *os.File, size int64) error {
	buf := make([]byte, 1<<20)
	for off := int64(0); off < size; {
		n := min(int64(len(buf)), size-off)
		if _, err := f.WriteAt(buf[:n], off); err != nil {
			return err
		}
		off += n
	}
	return nil
}

func splitLines(s string) []string { return strings.Split(s, "\n") }
