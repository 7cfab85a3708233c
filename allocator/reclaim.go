package allocator

import (
	"errors"
	"fmt"
)

// ReclaimOwner returns to the free lists every chunk participant id held or
// was moving when it died, and reports how many. That is:
//
//   - every allocated chunk whose owner is id, whatever its reference count
//     (the references other holders took with Retain are dropped with it);
//   - a chunk id had claimed in Alloc but not yet handed out;
//   - a chunk id was freeing (in Free, Release, Flush or ReclaimOwner) but
//     had not yet linked, or linked but not yet marked free;
//   - every chunk in the magazines of id's handles (WithCache).
//
// Call it only once participant id is dead (or has left for good); other
// participants may go on allocating and freeing while it runs. References
// that others still hold to id's chunks become stale (ErrBadRef), and slices
// from Bytes on them must no longer be used. Chunk headers that contradict
// the layout are skipped and reported as ErrCorrupt.
func (a *Allocator) ReclaimOwner(id uint32) (int, error) {
	if id > MaxOwner {
		return 0, fmt.Errorf("%w: reclaim %d > %d", ErrConfig, id, MaxOwner)
	}
	me := a.owner
	n := 0
	var errs []error
	for ci := range a.classes {
		c := &a.classes[ci]
		for i := uint32(0); uint64(i) < c.count; i++ {
			m := c.chunk(i)
			for {
				// The state first, then the owner: if the owner we read
				// belongs to a later allocation, the state has moved on and
				// the CAS below fails.
				s := m.state.Load()
				var next uint64
				switch {
				case isAlloc(s) && m.owner.Load() == id:
					if cl := m.class.Load(); cl != uint32(ci) {
						errs = append(errs, fmt.Errorf("%w: class %d chunk %d: class field %d", ErrCorrupt, c.size, i, cl))
						break
					}
					next = freeing(s, me)
				case isCached(s) && stateID(s) == id:
					next = withLow(s, lowPush|me)
				case isClaim(s) && stateID(s) == id:
					// Claimed: the top of a popping head, or already unlinked.
					if err := c.finishUnlink(i); err != nil {
						errs = append(errs, err)
						break
					}
					next = takenBack(s, me)
				case isPush(s) && stateID(s) == id:
					// Being freed: a linked one is the top of the list (nothing
					// is linked above it before it is marked free), and then
					// only needs marking; an unlinked one needs pushing.
					if headTop(c.head.Load()) == i+1 {
						if !m.state.CompareAndSwap(s, withLow(s, 0)) {
							continue
						}
						n++
						break
					}
					next = withLow(s, lowPush|me)
				}
				if next == 0 {
					break
				}
				if !m.state.CompareAndSwap(s, next) {
					continue
				}
				if isAlloc(s) || isCached(s) {
					c.gave(1) // counted off the list by its allocation or refill
				}
				if err := c.push(i, me); err != nil {
					errs = append(errs, err)
				}
				n++
				break
			}
		}
	}
	return n, errors.Join(errs...)
}

// ClassCheck is what Check found in one class.
type ClassCheck struct {
	Size     int
	Total    int
	Free     int   // chunks whose state is free
	InUse    int   // chunks whose state is allocated
	InFlight int   // chunks claimed or being freed
	Cached   int   // chunks in handles' magazines
	Listed   int   // chunks on the free list
	Counter  int64 // the in-use counter behind HighWater
}

// walk follows the free list of c, at most count links, and marks the
// chunks on it. It reports ErrCorrupt for a link out of range or a chunk
// listed twice (a cycle).
func (c *class) walk(on []bool) (int, error) {
	top := headTop(c.head.Load())
	n := 0
	for top != 0 {
		if uint64(top) > c.count {
			return n, fmt.Errorf("%w: class %d: link %d beyond %d chunks", ErrCorrupt, c.size, top, c.count)
		}
		i := top - 1
		if on[i] {
			return n, fmt.Errorf("%w: class %d: chunk %d listed twice (cycle)", ErrCorrupt, c.size, i)
		}
		on[i] = true
		n++
		top = c.chunk(i).next.Load()
	}
	return n, nil
}

// Check verifies every class of a quiescent pool — one in which no
// participant is inside Alloc, Free, a refill or Flush — and returns what it
// counted. The free list must be well formed and hold exactly the free
// chunks; cached chunks are counted (they belong to handles' magazines); a
// chunk left claimed or being freed (its participant died inside the call, and
// ReclaimOwner has not run for it) is ErrInFlight; anything else is
// ErrCorrupt. Check only reads; run while others allocate, it may report
// their operations in flight. The in-use counter (Counter) is not checked:
// a participant killed between a state change and its counter update
// leaves it off by one, which only skews HighWater (Recover resets it).
func (a *Allocator) Check() ([]ClassCheck, error) {
	out := make([]ClassCheck, len(a.classes))
	var errs []error
	for ci := range a.classes {
		c := &a.classes[ci]
		cc := ClassCheck{Size: int(c.size), Total: int(c.count), Counter: int64(c.inUse.Load())}
		on := make([]bool, c.count)
		listed, err := c.walk(on)
		cc.Listed = listed
		if err != nil {
			errs = append(errs, err)
		}
		var flying []string
		for i := uint32(0); uint64(i) < c.count; i++ {
			m := c.chunk(i)
			if cl := m.class.Load(); cl != uint32(ci) {
				errs = append(errs, fmt.Errorf("%w: class %d chunk %d: class field %d", ErrCorrupt, c.size, i, cl))
			}
			s := m.state.Load()
			switch {
			case isFree(s):
				cc.Free++
				if err == nil && !on[i] {
					errs = append(errs, fmt.Errorf("%w: class %d: free chunk %d is on no list", ErrCorrupt, c.size, i))
				}
			case isAlloc(s):
				cc.InUse++
				if on[i] {
					errs = append(errs, fmt.Errorf("%w: class %d: allocated chunk %d is on the free list", ErrCorrupt, c.size, i))
				}
			case isCached(s):
				cc.Cached++
				if on[i] {
					errs = append(errs, fmt.Errorf("%w: class %d: cached chunk %d is on the free list", ErrCorrupt, c.size, i))
				}
			case isClaim(s), isPush(s):
				cc.InFlight++
				flying = append(flying, fmt.Sprintf("chunk %d %s by %d", i, stateString(s), stateID(s)))
			default:
				errs = append(errs, fmt.Errorf("%w: class %d: chunk %d has invalid state %#x", ErrCorrupt, c.size, i, s))
			}
		}
		if len(flying) > 0 {
			errs = append(errs, fmt.Errorf("%w: class %d: %v", ErrInFlight, c.size, flying))
		}
		out[ci] = cc
	}
	return out, errors.Join(errs...)
}

// Recover rebuilds every free list from the chunk states and resets the
// in-use counters. It repairs what Check reports — a malformed list, free
// chunks on no list, chunks left in flight by participants nobody
// reclaimed — but must run while no other process uses the region (it is
// not safe against concurrent Alloc or Free): at start-up, or when every
// other participant is known dead. Allocated chunks stay allocated; cached
// chunks go back on the lists (the magazines that listed them are gone, and
// a magazine of this process that still lists one drops the entry). It
// returns how many chunks it changed or relinked.
func (a *Allocator) Recover() int {
	n := 0
	for ci := range a.classes {
		c := &a.classes[ci]
		on := make([]bool, c.count)
		if _, err := c.walk(on); err != nil {
			clear(on)
		}
		head := newHead(c.head.Load(), 0, false)
		inUse := uint64(0)
		for i := uint32(c.count); i > 0; i-- {
			idx := i - 1
			m := c.chunk(idx)
			m.class.Store(uint32(ci))
			s := m.state.Load()
			if isAlloc(s) {
				inUse++
				continue
			}
			if !isFree(s) || !on[idx] {
				m.state.Store(withLow(s, 0))
				n++
			}
			m.next.Store(headTop(head))
			head = newHead(head, i, false)
		}
		c.head.Store(head)
		c.inUse.Store(inUse)
		if c.high.Load() < inUse {
			c.high.Store(inUse)
		}
	}
	return n
}
