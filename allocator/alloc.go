package allocator

import (
	"context"
	"fmt"

	"github.com/shmkit/shmkit/internal/atomicx"
)

// classFor returns the smallest class whose chunks hold n bytes.
func (a *Allocator) classFor(n int) (*class, error) {
	if n >= 0 {
		for i := range a.classes {
			if uint64(n) <= a.classes[i].size {
				return &a.classes[i], nil
			}
		}
	}
	return nil, fmt.Errorf("%w: alloc %d bytes, largest class is %d", ErrTooLarge, n, a.classes[len(a.classes)-1].size)
}

// Alloc allocates a chunk from the smallest class whose chunks hold n bytes
// and returns a Ref to it with a reference count of 1, a length of n and
// this handle's owner id. With a cache (WithCache) it takes the chunk from
// the handle's magazine, refilling it from the class's free list when
// empty. When the class has no free chunk, Alloc returns an error wrapping
// ErrNoMemory at once and counts a failed allocation: it never takes a
// chunk from a larger class, nor from another handle's cache. n larger than
// the largest class (or negative) is ErrTooLarge. Alloc is lock-free.
func (a *Allocator) Alloc(n int) (Ref, error) {
	c, err := a.classFor(n)
	if err != nil {
		return 0, err
	}
	r, err := a.allocFrom(c, n)
	if err == errEmpty {
		c.failed.Add(1)
		return 0, fmt.Errorf("%w: alloc %d bytes from class %d", ErrNoMemory, n, c.size)
	}
	return r, err
}

// AllocContext is Alloc that waits while the class that fits n is empty: it
// parks on the class's futex event (spinning briefly first, see WithWaiter)
// until a chunk of that class is freed to the shared list, then tries again.
// When ctx ends first it counts a failed allocation and returns an error
// wrapping both ErrNoMemory and ctx.Err().
func (a *Allocator) AllocContext(ctx context.Context, n int) (Ref, error) {
	c, err := a.classFor(n)
	if err != nil {
		return 0, err
	}
	nonEmpty := func() bool { return headTop(c.head.Load()) != 0 }
	for {
		r, err := a.allocFrom(c, n)
		if err != errEmpty {
			return r, err
		}
		if werr := a.opts.waiter.Wait(ctx, c.event, nonEmpty); werr != nil {
			c.failed.Add(1)
			return 0, fmt.Errorf("%w: alloc %d bytes from class %d: %w", ErrNoMemory, n, c.size, werr)
		}
	}
}

// allocFrom allocates from the magazine of c, refilling it, or, without a
// cache, from the free list. errEmpty means the class has no free chunk.
func (a *Allocator) allocFrom(c *class, n int) (Ref, error) {
	if a.mags == nil {
		return a.allocShared(c, n)
	}
	mg := &a.mags[c.idx]
	if r, ok := a.allocCached(c, mg, n); ok {
		return r, nil
	}
	if err := a.refill(c, mg); err != nil {
		return 0, err
	}
	if r, ok := a.allocCached(c, mg, n); ok {
		return r, nil
	}
	return 0, errEmpty
}

// allocShared pops a chunk from the free list of c and allocates it.
func (a *Allocator) allocShared(c *class, n int) (Ref, error) {
	i, err := c.pop(a.owner, false)
	if err != nil {
		return 0, err
	}
	m := c.chunk(i)
	s := m.state.Load()
	if !isClaim(s) || stateID(s) != a.owner || m.class.Load() != uint32(c.idx) {
		return 0, fmt.Errorf("%w: class %d: chunk %d claimed by participant %d is %s (class field %d)",
			ErrCorrupt, c.size, i, a.owner, stateString(s), m.class.Load())
	}
	// Chunk i is claimed by us and off the list: nobody else writes its
	// header until the allocation is published (helpers only unlink a
	// claimed top; ReclaimOwner waits for our death). So release stores
	// suffice, in this order: owner and length, then the state that makes
	// the allocation live (see allocCached). Loads first: a chunk is often
	// reused by the same participant for the same size.
	if m.owner.Load() != a.owner {
		atomicx.StoreRelease32(&m.owner, a.owner)
	}
	if m.length.Load() != uint32(n) {
		atomicx.StoreRelease32(&m.length, uint32(n))
	}
	atomicx.StoreRelease64(&m.state, withLow(s, 1))
	hook(stepAllocated)
	c.took(1)
	return makeRef(c.dataOff+uint64(i)*c.size, stateGen(s)), nil
}

// refError explains why state s does not match r: the chunk was freed by
// this very allocation (double free) or r is stale or forged.
func refError(op string, r Ref, s uint64) error {
	if !isAlloc(s) && (stateGen(s)-1)&refGenMask == r.Gen() {
		return fmt.Errorf("%w: %s %v", ErrDoubleFree, op, r)
	}
	return fmt.Errorf("%w: %s %v: chunk is %s at generation %d", ErrBadRef, op, r, stateString(s), stateGen(s)&refGenMask)
}

// live resolves r and checks that it names the chunk's current allocation.
func (a *Allocator) live(op string, r Ref) (*class, uint32, *chunkMeta, error) {
	c, i, err := a.resolve(op, r)
	if err != nil {
		return nil, 0, nil, err
	}
	m := c.chunk(i)
	if s := m.state.Load(); !isAlloc(s) || stateGen(s)&refGenMask != r.Gen() {
		return nil, 0, nil, refError(op, r, s)
	}
	return c, i, m, nil
}

// dropOp says what drop does to a reference count.
type dropOp uint8

const (
	opFree    dropOp = iota // drop every reference
	opRelease               // drop one
	opRetain                // add one
)

var dropNames = [...]string{opFree: "free", opRelease: "release", opRetain: "retain"}

// drop applies op to the chunk r names, after checking r against it, and
// frees the chunk when the last reference goes: into the handle's magazine
// when it has one, else onto the class's free list.
func (a *Allocator) drop(op dropOp, r Ref) error {
	c, i, err := a.resolve(dropNames[op], r)
	if err != nil {
		return err
	}
	m := c.chunk(i)
	for {
		s := m.state.Load()
		if !isAlloc(s) || stateGen(s)&refGenMask != r.Gen() {
			return refError(dropNames[op], r, s)
		}
		var ns uint64
		switch {
		case op == opRetain && stateLow(s) == MaxRefCount:
			return fmt.Errorf("%w: retain %v", ErrRefCount, r)
		case op == opRetain:
			ns = s + 1
		case op == opRelease && stateLow(s) > 1:
			ns = s - 1
		case a.mags != nil:
			ns = cachedBy(s, a.owner)
		default:
			ns = freeing(s, a.owner)
		}
		// A compare-and-swap even when this handle holds the only
		// reference: the state word is where concurrent holders meet, and
		// where a double free by two processes at once is caught (exactly
		// one CAS from the allocated state wins).
		if m.state.CompareAndSwap(s, ns) {
			switch {
			case isCached(ns):
				hook(stepToCache)
				return a.putCached(c, &a.mags[c.idx], i, ns)
			case isPush(ns):
				hook(stepFreeing)
				return c.release(i, a.owner)
			}
			return nil
		}
	}
}

// Free frees the chunk r names at once, whatever its reference count: into
// the handle's magazine with a cache, else back to its class's free list.
// Use Release when the chunk may be shared. A Free of a chunk already freed
// by this allocation is ErrDoubleFree and changes nothing; a stale, forged
// or misaligned r is ErrBadRef. After Free, slices from Bytes(r) must no
// longer be used.
func (a *Allocator) Free(r Ref) error {
	return a.drop(opFree, r)
}

// Retain adds a reference to the chunk r names, for one more holder (for
// example each subscriber a chunk is delivered to). Each Retain needs a
// Release. r must name a live allocation (ErrBadRef, ErrDoubleFree).
func (a *Allocator) Retain(r Ref) error {
	return a.drop(opRetain, r)
}

// Release drops one reference to the chunk r names and frees the chunk, as
// Free does, when it was the last. Errors are those of Free.
func (a *Allocator) Release(r Ref) error {
	return a.drop(opRelease, r)
}
