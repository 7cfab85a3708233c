package allocator

import (
	"context"
	"fmt"
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
	return nil, fmt.Errorf("alloc %d bytes, largest class is %d: %w", n, a.classes[len(a.classes)-1].size, ErrTooLarge)
}

// Alloc allocates a chunk from the smallest class whose chunks hold n bytes
// and returns a Ref to it with a reference count of 1, a length of n and
// this Allocator's owner id. When that class has no free chunk, Alloc
// returns an error wrapping ErrNoMemory at once and counts a failed
// allocation: it never takes a chunk from a larger class. n larger than the
// largest class (or negative) is ErrTooLarge. Alloc is lock-free.
func (a *Allocator) Alloc(n int) (Ref, error) {
	c, err := a.classFor(n)
	if err != nil {
		return 0, err
	}
	r, err := a.allocFrom(c, n)
	if err == errEmpty {
		c.failed.Add(1)
		return 0, fmt.Errorf("alloc %d bytes from class %d: %w", n, c.size, ErrNoMemory)
	}
	return r, err
}

// AllocContext is Alloc that waits while the class that fits n is empty: it
// parks on the class's futex event (spinning briefly first, see WithWaiter)
// until a chunk of that class is freed, then tries again. When ctx ends
// first it counts a failed allocation and returns an error wrapping both
// ErrNoMemory and ctx.Err().
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
		if werr := a.waiter.Wait(ctx, c.event, nonEmpty); werr != nil {
			c.failed.Add(1)
			return 0, fmt.Errorf("alloc %d bytes from class %d: %w: %w", n, c.size, ErrNoMemory, werr)
		}
	}
}

func (a *Allocator) allocFrom(c *class, n int) (Ref, error) {
	i, err := c.pop(a.owner)
	if err != nil {
		return 0, err
	}
	// Chunk i is claimed by us and off the list: nobody else changes its
	// header until we publish the allocation with the state CAS below.
	// Owner and length first, so the allocation is whole when it appears.
	// (Loads first: a store is a locked instruction on amd64, and a chunk
	// is often reused by the same participant for the same size.)
	m := c.chunk(i)
	if m.owner.Load() != a.owner {
		m.owner.Store(a.owner)
	}
	if m.length.Load() != uint32(n) {
		m.length.Store(uint32(n))
	}
	s := m.state.Load()
	if !isClaim(s) || stateID(s) != a.owner || m.class.Load() != uint32(c.idx) || !m.state.CompareAndSwap(s, withLow(s, 1)) {
		return 0, fmt.Errorf("class %d: chunk %d claimed by participant %d is %s (class field %d): %w",
			c.size, i, a.owner, stateString(s), m.class.Load(), ErrCorrupt)
	}
	inUse := c.inUse.Add(1)
	for h := c.high.Load(); inUse > h && inUse <= c.count; h = c.high.Load() {
		if c.high.CompareAndSwap(h, inUse) {
			break
		}
	}
	return makeRef(c.dataOff+uint64(i)*c.size, stateGen(s)), nil
}

// refError explains why state s does not match r: the chunk was freed by
// this very allocation (double free) or r is stale or forged.
func refError(op string, r Ref, s uint64) error {
	if !isAlloc(s) && (stateGen(s)-1)&refGenMask == r.Gen() {
		return fmt.Errorf("%s %v: %w", op, r, ErrDoubleFree)
	}
	return fmt.Errorf("%s %v: chunk is %s at generation %d: %w", op, r, stateString(s), stateGen(s)&refGenMask, ErrBadRef)
}

// live resolves r and checks that it names the chunk's current allocation.
func (a *Allocator) live(op string, r Ref) (*class, uint32, *chunkMeta, error) {
	c, i, err := a.resolve(r)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("%s: %w", op, err)
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
// frees the chunk when the last reference goes.
func (a *Allocator) drop(op dropOp, r Ref) error {
	c, i, err := a.resolve(r)
	if err != nil {
		return fmt.Errorf("%s: %w", dropNames[op], err)
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
			return fmt.Errorf("retain %v: %w", r, ErrRefCount)
		case op == opRetain:
			ns = s + 1
		case op == opRelease && stateLow(s) > 1:
			ns = s - 1
		default:
			ns = freeing(s, a.owner)
		}
		if m.state.CompareAndSwap(s, ns) {
			if isPush(ns) {
				return c.release(i, a.owner)
			}
			return nil
		}
	}
}

// Free frees the chunk r names at once, whatever its reference count, and
// returns it to its class. Use Release when the chunk may be shared. A Free
// of a chunk already freed by this allocation is ErrDoubleFree and changes
// nothing; a stale, forged or misaligned r is ErrBadRef. After Free, slices
// from Bytes(r) must no longer be used.
func (a *Allocator) Free(r Ref) error {
	return a.drop(opFree, r)
}

// Retain adds a reference to the chunk r names, for one more holder (for
// example each subscriber a chunk is delivered to). Each Retain needs a
// Release. r must name a live allocation (ErrBadRef, ErrDoubleFree).
func (a *Allocator) Retain(r Ref) error {
	return a.drop(opRetain, r)
}

// Release drops one reference to the chunk r names and frees the chunk when
// it was the last. Errors are those of Free.
func (a *Allocator) Release(r Ref) error {
	return a.drop(opRelease, r)
}
