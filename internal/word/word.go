// Package word gives typed atomic views of 32- and 64-bit words at
// explicit offsets inside a shared byte region.
//
// The offsets are the ones documented in docs/ for each structure. A bad
// offset (out of range or misaligned) is a programmer error and panics with
// a message naming it; offsets read from shared memory must be validated by
// the caller before they reach this package (shared memory is untrusted).
// The returned pointer is valid for as long as mem stays mapped.
package word

import (
	"fmt"
	"sync/atomic"
	"unsafe"
)

// U32 returns the 32-bit word at mem[off:off+4]. off must be in range and
// the word 4-byte aligned in memory.
func U32(mem []byte, off int) *atomic.Uint32 {
	p := at(mem, off, 4)
	return (*atomic.Uint32)(p)
}

// U64 returns the 64-bit word at mem[off:off+8]. off must be in range and
// the word 8-byte aligned in memory (a split or misaligned 64-bit atomic is
// slow on amd64 and faults on other architectures).
func U64(mem []byte, off int) *atomic.Uint64 {
	p := at(mem, off, 8)
	return (*atomic.Uint64)(p)
}

// Aligned reports whether mem starts at an address that is a multiple of
// align (a power of two). An empty slice is aligned.
func Aligned(mem []byte, align uintptr) bool {
	if len(mem) == 0 {
		return true
	}
	return uintptr(unsafe.Pointer(unsafe.SliceData(mem)))%align == 0
}

func at(mem []byte, off, size int) unsafe.Pointer {
	if off < 0 || off > len(mem)-size {
		panic(fmt.Sprintf("word: %d-byte word at offset %d outside a %d-byte region", size, off, len(mem)))
	}
	p := unsafe.Pointer(&mem[off])
	if uintptr(p)%uintptr(size) != 0 {
		panic(fmt.Sprintf("word: %d-byte word at offset %d is misaligned (address %p)", size, off, p))
	}
	return p
}
