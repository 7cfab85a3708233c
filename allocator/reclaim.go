package allocator

import (
	"errors"
	"fmt"
)

// ReclaimOwner frees every chunk whose recorded owner is id, whatever its
// reference count, and returns how many it freed. Call it when participant
// id has died (or left): other participants may keep allocating and freeing
// while it runs, but references they still hold to id's chunks become stale
// (ErrBadRef) and slices from Bytes must no longer be used.
//
// It recovers every chunk whose allocation by id completed. It cannot
// recover a chunk that id was in the middle of unlinking or linking when it
// died (a window of a few instructions in Alloc and in Free, see
// docs/allocator.md): such a chunk is free but on no list. Check reports it
// as ErrUnlinked and Recover relinks it once no other process uses the
// region. A chunk header with a wrong class field is skipped and reported
// as ErrCorrupt.
func (a *Allocator) ReclaimOwner(id uint32) (int, error) {
	n := 0
	var errs []error
	for ci := range a.classes {
		c := &a.classes[ci]
		for i := uint32(0); uint64(i) < c.count; i++ {
			m := c.chunk(i)
			for {
				// State before owner: if the owner we read belongs to a
				// later allocation, the state has changed and the CAS fails.
				s := m.state.Load()
				if stateCount(s) == 0 || m.owner.Load() != id {
					break
				}
				if cl := m.class.Load(); cl != uint32(ci) {
					errs = append(errs, fmt.Errorf("class %d chunk %d: class field %d: %w", c.size, i, cl, ErrCorrupt))
					break
				}
				if m.state.CompareAndSwap(s, freedState(s)) {
					c.release(i)
					n++
					break
				}
			}
		}
	}
	return n, errors.Join(errs...)
}

// ClassCheck is what Check found in one class.
type ClassCheck struct {
	Size   int
	Total  int
	InUse  int // chunks whose state says allocated
	Free   int // chunks whose state says free
	Listed int // chunks on the free list
}

// walk follows the free list of c, at most count links, and marks the
// chunks on it. It reports ErrCorrupt for a link out of range, a chunk
// listed twice (a cycle) or a listed chunk that is in use.
func (c *class) walk(on []bool) (int, error) {
	top := headTop(c.head.Load())
	n := 0
	for top != 0 {
		if uint64(top) > c.count {
			return n, fmt.Errorf("class %d: link %d beyond %d chunks: %w", c.size, top, c.count, ErrCorrupt)
		}
		i := top - 1
		if on[i] {
			return n, fmt.Errorf("class %d: chunk %d listed twice (cycle): %w", c.size, i, ErrCorrupt)
		}
		on[i] = true
		n++
		if stateCount(c.chunk(i).state.Load()) != 0 {
			return n, fmt.Errorf("class %d: chunk %d is listed but in use: %w", c.size, i, ErrCorrupt)
		}
		top = c.chunk(i).next.Load()
	}
	return n, nil
}

// Check verifies every class: the free list is well formed, holds exactly
// the chunks whose state is free, and the in-use counter matches the chunks
// whose state is allocated. It only reads. Its answer is exact only while no
// other process allocates or frees in the region (a quiescent pool); run
// concurrently, it may report inconsistencies that are just operations in
// flight. It returns the counts it found and an error wrapping ErrCorrupt
// or ErrUnlinked.
func (a *Allocator) Check() ([]ClassCheck, error) {
	out := make([]ClassCheck, len(a.classes))
	var errs []error
	for ci := range a.classes {
		c := &a.classes[ci]
		cc := ClassCheck{Size: int(c.size), Total: int(c.count)}
		on := make([]bool, c.count)
		listed, err := c.walk(on)
		cc.Listed = listed
		if err != nil {
			errs = append(errs, err)
		}
		for i := uint32(0); uint64(i) < c.count; i++ {
			m := c.chunk(i)
			if cl := m.class.Load(); cl != uint32(ci) {
				errs = append(errs, fmt.Errorf("class %d chunk %d: class field %d: %w", c.size, i, cl, ErrCorrupt))
			}
			if stateCount(m.state.Load()) == 0 {
				cc.Free++
			} else {
				cc.InUse++
			}
		}
		unlinked := 0
		if err == nil && cc.Listed != cc.Free {
			unlinked = cc.Free - cc.Listed
			errs = append(errs, fmt.Errorf("class %d: %d free chunks, %d on the free list: %w", c.size, cc.Free, cc.Listed, ErrUnlinked))
		}
		// A participant that died inside Alloc or Free may have counted its
		// chunk in use without marking it (or marked it free without
		// uncounting it): such a counter is high by at most the number of
		// unlinked chunks, and Recover resets it. Any other difference is
		// corruption.
		if u := int64(c.inUse.Load()); u != int64(cc.InUse) {
			d := u - int64(cc.InUse)
			if d < 0 || d > int64(unlinked) {
				errs = append(errs, fmt.Errorf("class %d: in-use counter %d, %d chunks in use: %w", c.size, u, cc.InUse, ErrCorrupt))
			}
		}
		out[ci] = cc
	}
	return out, errors.Join(errs...)
}

// Recover repairs the free lists and counters after participants died inside
// Alloc or Free. It must run while no other process uses the region (for
// example when every participant but the caller is known dead, or before the
// region is handed out again): it is not safe against concurrent Alloc or
// Free. For each class it relinks free chunks that are on no list, rebuilds
// the list from the chunk states if it is malformed, and resets the in-use
// counter from the states. It returns the number of chunks it relinked.
func (a *Allocator) Recover() int {
	n := 0
	for ci := range a.classes {
		c := &a.classes[ci]
		on := make([]bool, c.count)
		if _, err := c.walk(on); err != nil {
			// Malformed list: start again from the chunk states.
			c.head.Store(nextHead(c.head.Load(), 0))
			clear(on)
		}
		inUse := uint64(0)
		for i := uint64(c.count); i > 0; i-- {
			idx := uint32(i - 1)
			m := c.chunk(idx)
			m.class.Store(uint32(ci))
			if stateCount(m.state.Load()) != 0 {
				inUse++
				continue
			}
			if !on[idx] {
				c.push(idx)
				n++
			}
		}
		c.inUse.Store(inUse)
		if c.high.Load() < inUse {
			c.high.Store(inUse)
		}
	}
	return n
}
