package shmkit

import (
	"errors"
	"fmt"
	"sync/atomic"
	"unsafe"

	"github.com/shmkit/shmkit/allocator"
	"github.com/shmkit/shmkit/futex"
)

// This file is the only one that uses package allocator: the pool of
// message chunks. Every chunk starts with the message header (layout.go);
// the payload follows it.

// ref names a pool chunk (allocator.Ref), the 8-byte value the delivery
// rings carry.
type ref = uint64

// poolClasses returns the size classes of a channel's pool: powers of two
// from 128 bytes, the last one just large enough for MaxMessage plus the
// message header. A power of two that the last class would double at most
// is left out (for 4 KiB messages the classes end 2048, 4160: a 4096 class
// beside 4160 cost a sixth more pool for nothing).
func poolClasses(c Config) []allocator.Class {
	need := (c.MaxMessage + msgHeaderSize + 63) &^ 63
	var cs []allocator.Class
	for sz := 128; ; sz *= 2 {
		if sz >= need || 2*sz > need && sz < need {
			cs = append(cs, allocator.Class{Size: need, Count: c.ChunksPerClass})
			return cs
		}
		cs = append(cs, allocator.Class{Size: sz, Count: c.ChunksPerClass})
	}
}

func poolSize(c Config) (int, error) {
	n, err := allocator.Size(allocator.Config{Classes: poolClasses(c)})
	if err != nil {
		return 0, fmt.Errorf("%w: pool: %w", ErrConfig, err)
	}
	return n, nil
}

// pool is one participant's handle on the chunk pool. freed and frees (in
// the channel header) let a loan wait for a chunk: every free through the
// channel counts and notifies.
type pool struct {
	a       *allocator.Allocator
	freed   *futex.Event
	frees   *atomic.Uint32
	waiters *atomic.Uint32 // loans waiting for a chunk (Publisher.waitAlloc)
}

// sharedOwner owns chunks once they are published: no participant's
// ReclaimOwner returns them; the delivery mask decides their life.
const sharedOwner = 0

func newPool(mem []byte, c Config) (*pool, error) {
	a, err := allocator.New(mem, allocator.Config{Classes: poolClasses(c)})
	if err != nil {
		return nil, fmt.Errorf("%w: pool: %w", ErrConfig, err)
	}
	return &pool{a: a}, nil
}

func attachPool(mem []byte) (*pool, error) {
	a, err := allocator.Attach(mem)
	if err != nil {
		return nil, fmt.Errorf("%w: pool: %w", ErrCorrupt, err)
	}
	return &pool{a: a}, nil
}

// owner returns a handle that allocates and frees on behalf of participant
// slot id (allocator owner id+1; 0 is sharedOwner).
func (p *pool) owner(slot int) *pool {
	a, err := p.a.Handle(allocator.WithOwner(uint32(slot) + 1))
	if err != nil {
		panic("shmkit: participant slot beyond the allocator's owners") // MaxParticipants < allocator.MaxOwner
	}
	return &pool{a: a, freed: p.freed, frees: p.frees, waiters: p.waiters}
}

// alloc takes a chunk for a message of n payload bytes without waiting
// (ErrNoMemory when the class is empty). A caller that waits announces
// itself in waiters, reads frees before the attempt and parks on freed
// until frees moves (not
// allocator.AllocContext: its wake-up on cancellation may touch the
// mapping after it returned, which Channel.Close cannot wait for).
func (p *pool) alloc(n int) (ref, error) {
	r, err := p.a.Alloc(n + msgHeaderSize)
	switch {
	case err == nil:
		return ref(r), nil
	case errors.Is(err, allocator.ErrNoMemory):
		return 0, fmt.Errorf("%w: %d bytes: %w", ErrNoMemory, n, err)
	case errors.Is(err, allocator.ErrTooLarge):
		return 0, fmt.Errorf("%w: %d bytes: %w", ErrTooLarge, n, err)
	}
	return 0, fmt.Errorf("%w: alloc: %w", ErrCorrupt, err)
}

// chunk returns the whole chunk r names (header and payload, its class's
// size) after validating r; the slice stays valid until the chunk is freed.
func (p *pool) chunk(r ref) ([]byte, error) {
	b, err := p.a.Bytes(allocator.Ref(r))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	b = b[:cap(b)]
	if len(b) < msgHeaderSize || uintptr(unsafe.Pointer(unsafe.SliceData(b)))%64 != 0 {
		return nil, fmt.Errorf("%w: chunk of %d bytes", ErrCorrupt, len(b))
	}
	return b, nil
}

// free returns a chunk whose delivery mask reached zero. A chunk freed
// already (by a cleaner that redid the same step) is not an error: stale
// and double frees are recognised by the allocator from the ref's
// generation.
func (p *pool) free(r ref) error {
	err := p.a.Free(allocator.Ref(r))
	// Count and notify only while a loan waits: the count is a shared word
	// every publisher reads, and a locked add on it per message moved its
	// cache line between the cores. The Free above ends in a sequentially
	// consistent atomic (the push), so a waiter that announced itself
	// before its retry is seen here (see Publisher.waitAlloc).
	if err == nil && p.waiters.Load() != 0 {
		p.frees.Add(1)
		p.freed.Notify()
	}
	if err == nil || errors.Is(err, allocator.ErrBadRef) || errors.Is(err, allocator.ErrDoubleFree) {
		return nil
	}
	return fmt.Errorf("%w: free: %w", ErrCorrupt, err)
}

// disown hands a published chunk to sharedOwner.
func (p *pool) disown(r ref) error {
	if err := p.a.SetOwner(allocator.Ref(r), sharedOwner); err != nil {
		return fmt.Errorf("%w: set owner: %w", ErrCorrupt, err)
	}
	return nil
}

// ownedBy reports whether r names a live chunk owned by slot.
func (p *pool) ownedBy(r ref, slot int) bool {
	id, err := p.a.Owner(allocator.Ref(r))
	return err == nil && id == uint32(slot)+1
}

// live reports whether r names a live allocation.
func (p *pool) live(r ref) bool {
	_, err := p.a.RefCount(allocator.Ref(r))
	return err == nil
}

// reclaim returns every chunk participant slot held or was moving.
func (p *pool) reclaim(slot int) (int, error) {
	n, err := p.a.ReclaimOwner(uint32(slot) + 1)
	if n > 0 {
		p.frees.Add(1)
		p.freed.Notify()
	}
	return n, err
}

// PoolStats are the pool's counters, summed over its size classes.
type PoolStats struct {
	Total, Free, InUse, InFlight int
	Failed                       uint64 // loans that found their class empty
}

func (p *pool) stats() PoolStats { return sumClasses(p.a.Stats()) }

func sumClasses(cs []allocator.ClassStats) PoolStats {
	var s PoolStats
	for _, c := range cs {
		s.Total += c.Total
		s.Free += c.Free
		s.InUse += c.InUse
		s.InFlight += c.InFlight
		s.Failed += c.Failed
	}
	return s
}

// check verifies a quiescent pool (allocator.Check).
func (p *pool) check() error {
	_, err := p.a.Check()
	return err
}

// setWords points the pool at the channel header's free event and count.
func (p *pool) setWords(hdr []byte) {
	p.freed, _ = futex.EventAt(hdr[hdrFreed:]) // 8-aligned in a 64-aligned region
	p.frees = u32(hdr, hdrFrees)
	p.waiters = u32(hdr, hdrLoanWaiters)
}
