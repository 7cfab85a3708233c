//go:build !amd64 || race

package atomicx

import "sync/atomic"

// StoreRelease32 stores v into *p with (at least) release semantics. Off
// amd64 it is sync/atomic's Store: STLR on arm64, which is exactly a release
// store; a sequentially consistent store elsewhere.
func StoreRelease32(p *atomic.Uint32, v uint32) { p.Store(v) }

// StoreRelease64 stores v into *p with (at least) release semantics; see
// StoreRelease32.
func StoreRelease64(p *atomic.Uint64, v uint64) { p.Store(v) }

// StoreRelease64s stores src[i] into dst[i] for i below the shorter
// length, in increasing order, each with StoreRelease64 (STLR on arm64).
func StoreRelease64s(dst []atomic.Uint64, src []uint64) {
	n := min(len(dst), len(src))
	for i := range n {
		dst[i].Store(src[i])
	}
}
