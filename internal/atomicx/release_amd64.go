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
