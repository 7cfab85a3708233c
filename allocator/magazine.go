package allocator

import (
	"errors"
	"fmt"

	"github.com/shmkit/shmkit/internal/atomicx"
)

// A magazine is a handle's process-local cache of chunks of one class, as
// in DPDK's mempool and tcmalloc: Free puts a chunk in it and Alloc takes it
// back without touching the class's free list, so an alloc+free pair that
// hits the magazine writes only the chunk's own header — one
// compare-and-swap (the free, which must stay one so that a double free by
// two processes at once is caught) and plain release stores.
//
// Every chunk in a magazine is marked in its own header as cached by the
// handle's owner (state 11<<30|owner, see state.go), so the shared memory
// alone says where it is: ReclaimOwner(owner) returns the magazine's chunks
// after the process is killed, and Stats counts them. The magazine itself
// only lists them.
//
// Each entry is the chunk's expected state word with the chunk index in its
// low 32 bits (the state's low word is implied: cached by the owner). Alloc
// takes an entry only if the state still equals it, so an entry whose chunk
// was taken away (ReclaimOwner of a live owner, Recover — both outside their
// contract — or a corrupt peer) is dropped instead of handing out a chunk
// twice; the generation makes every stay in a cache distinct.
type magazine struct {
	ent []uint64 // len = chunks cached, cap = cache size
}

func entryOf(s uint64, i uint32) uint64 { return s&^0xffffffff | uint64(i) }

// allocCached takes the most recently cached chunk of c, if any, and
// allocates it with length n.
func (a *Allocator) allocCached(c *class, mg *magazine, n int) (Ref, bool) {
	for k := len(mg.ent) - 1; k >= 0; k-- {
		e := mg.ent[k]
		mg.ent = mg.ent[:k]
		i := uint32(e)
		m := c.chunk(i)
		s := e&^0xffffffff | uint64(lowCached|a.owner)
		if m.state.Load() != s {
			continue // taken from under the magazine: drop the entry
		}
		// Ordering: the chunk is cached by us, and nothing else writes the
		// header of a cached chunk: a free needs the allocated state with
		// the Ref's generation, pops and pushes touch only chunks on the
		// list, ReclaimOwner(owner) runs only once the owner is dead, and
		// Recover only when nobody else uses the region. So plain release
		// stores suffice: owner and length first, then the state that makes
		// the allocation live. A peer that gets the Ref (through a ring,
		// with its own release/acquire) and loads the state allocated sees
		// the owner and length stored before it.
		if m.owner.Load() != a.owner {
			atomicx.StoreRelease32(&m.owner, a.owner)
		}
		if m.length.Load() != uint32(n) {
			atomicx.StoreRelease32(&m.length, uint32(n))
		}
		atomicx.StoreRelease64(&m.state, withLow(s, 1))
		return makeRef(c.dataOff+uint64(i)*c.size, stateGen(s)), true
	}
	return 0, false
}

// refill pops up to half a magazine (at least one chunk) from c's free list
// into mg. It returns errEmpty when the list gave nothing.
func (a *Allocator) refill(c *class, mg *magazine) error {
	want := max(1, cap(mg.ent)/2)
	got := 0
	var err error
	for got < want && len(mg.ent) < cap(mg.ent) {
		var i uint32
		if i, err = c.pop(a.owner, got+1 < want && len(mg.ent)+1 < cap(mg.ent)); err != nil {
			break
		}
		m := c.chunk(i)
		s := m.state.Load()
		if !isClaim(s) || stateID(s) != a.owner || m.class.Load() != uint32(c.idx) {
			err = fmt.Errorf("%w: class %d: chunk %d claimed by participant %d is %s (class field %d)",
				ErrCorrupt, c.size, i, a.owner, stateString(s), m.class.Load())
			break
		}
		// Claimed by us and unlinked: nobody else writes the header of
		// such a chunk (helpers only unlink a claimed top, ReclaimOwner
		// waits for our death), so a release store moves it into the
		// cache; a crash before it leaves a claimed chunk, after it a
		// cached one, and ReclaimOwner returns either.
		ns := cachedBy(s, a.owner)
		atomicx.StoreRelease64(&m.state, ns)
		hook(stepCached)
		mg.ent = append(mg.ent, entryOf(ns, i))
		got++
	}
	if got > 0 {
		hook(stepRefilled)
		c.took(uint64(got))
	}
	if err == errEmpty && got > 0 {
		return nil
	}
	return err
}

// putCached records chunk i, just moved to cached state s, in mg, spilling
// half of a full magazine first.
func (a *Allocator) putCached(c *class, mg *magazine, i uint32, s uint64) error {
	var err error
	if len(mg.ent) == cap(mg.ent) {
		err = a.spill(c, mg, max(1, cap(mg.ent)/2))
	}
	mg.ent = append(mg.ent, entryOf(s, i))
	return err
}

// spill returns the k least recently cached chunks of mg to c's free list.
func (a *Allocator) spill(c *class, mg *magazine, k int) error {
	k = min(k, len(mg.ent))
	// Count them off first, as a Free without a cache does: in_use counts
	// the chunks off the list and not on their way back to it.
	c.gave(uint64(k))
	done := 0
	var err error
	for done < k {
		e := mg.ent[done]
		done++
		i := uint32(e)
		m := c.chunk(i)
		s := e&^0xffffffff | uint64(lowCached|a.owner)
		if m.state.Load() != s {
			continue // taken from under the magazine
		}
		// Cached by us: nobody else writes it (see allocCached), so a
		// release store marks it being freed by us; the pushes below
		// publish it with their compare-and-swaps.
		atomicx.StoreRelease64(&m.state, withLow(s, lowPush|a.owner))
		hook(stepFreeing)
		if err = c.pushOne(i, a.owner); err != nil {
			break
		}
	}
	mg.ent = mg.ent[:copy(mg.ent, mg.ent[done:])]
	c.event.Notify()
	return err
}

// Flush returns every chunk in the handle's magazines to the shared free
// lists, so other participants can allocate them (a handle that is done
// should flush; ReclaimOwner returns the chunks of a handle that died
// holding them). It is a no-op without a cache.
func (a *Allocator) Flush() error {
	var errs []error
	for ci := range a.mags {
		if mg := &a.mags[ci]; len(mg.ent) > 0 {
			if err := a.spill(&a.classes[ci], mg, len(mg.ent)); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// Cached returns how many chunks the handle's magazines hold.
func (a *Allocator) Cached() int {
	n := 0
	for _, mg := range a.mags {
		n += len(mg.ent)
	}
	return n
}
