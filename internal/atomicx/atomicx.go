package atomicx

import "sync/atomic"

// LoadAcquire32 loads *p with acquire semantics: loads and stores after it
// are not performed before it.
func LoadAcquire32(p *atomic.Uint32) uint32 { return p.Load() }

// LoadAcquire64 loads *p with acquire semantics.
func LoadAcquire64(p *atomic.Uint64) uint64 { return p.Load() }
