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
