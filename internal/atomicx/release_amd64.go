//go:build amd64 && !race

package atomicx

import (
	"sync/atomic"
	"unsafe"
)

// StoreRelease32 stores v into *p with release semantics: every load and
// store before the call is visible to a thread that observes v with an
// acquire load. On amd64 this is one plain MOV (see the package comment).
func StoreRelease32(p *atomic.Uint32, v uint32) { storeRelease32((*uint32)(unsafe.Pointer(p)), v) }

// StoreRelease64 stores v into *p with release semantics; one plain MOV on
// amd64.
func StoreRelease64(p *atomic.Uint64, v uint64) { storeRelease64((*uint64)(unsafe.Pointer(p)), v) }

//go:noescape
func storeRelease32(p *uint32, v uint32)

//go:noescape
func storeRelease64(p *uint64, v uint64)

// StoreRelease64s stores src[i] into dst[i] for i below the shorter
// length, in increasing order, each as a release store: on amd64 a loop of
// plain MOVs (x86-TSO keeps the stores in program order, after every
// earlier store of the thread). For a seqlock's data words: one call
// instead of one per word.
func StoreRelease64s(dst []atomic.Uint64, src []uint64) {
	if n := min(len(dst), len(src)); n > 0 {
		storeRelease64s((*uint64)(unsafe.Pointer(&dst[0])), &src[0], n)
	}
}

//go:noescape
func storeRelease64s(dst, src *uint64, n int)
