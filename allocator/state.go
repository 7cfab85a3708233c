package allocator

// The state word of a chunk header is generation<<32 | low, where the low
// 32 bits say what the chunk is doing:
//
//	low == 0                   free: on the free list (or at the top of a popping head, waiting for a claimer)
//	low == n, 1 <= n < 2^30    allocated, with n references
//	low == 01<<30 | id         claimed by participant id, which is popping it from the free list
//	low == 10<<30 | id         being freed by participant id, which is pushing it onto the free list
//	low == 11<<30 | id         cached: off the list, in the magazine of a handle of participant id
//
// The generation is bumped when an allocated chunk is freed (to the list or
// to a cache), when a claim is given back, and when a claimed chunk enters
// a cache, so each allocation of a chunk has its own generation and no
// state a chunk passes through between two stays on the free list repeats
// an earlier one. Recording the participant in every state but free and
// allocated (where the owner field says it) makes every chunk off the list
// attributable: ReclaimOwner(id) can finish what a dead id left half done
// and empty its caches.
const (
	lowKindMask = 3 << 30
	lowClaim    = 1 << 30
	lowPush     = 2 << 30
	lowCached   = 3 << 30
	lowIDMask   = 1<<30 - 1

	// MaxOwner is the largest participant id (ids share the state word
	// with two flag bits).
	MaxOwner = lowIDMask
	// MaxRefCount is the largest reference count of a chunk.
	MaxRefCount = lowIDMask
)

func stateGen(s uint64) uint32 { return uint32(s >> 32) }
func stateLow(s uint64) uint32 { return uint32(s) }
func isFree(s uint64) bool     { return stateLow(s) == 0 }
func isAlloc(s uint64) bool    { l := stateLow(s); return l != 0 && l&lowKindMask == 0 }
func isClaim(s uint64) bool    { return stateLow(s)&lowKindMask == lowClaim }
func isPush(s uint64) bool     { return stateLow(s)&lowKindMask == lowPush }
func isCached(s uint64) bool   { return stateLow(s)&lowKindMask == lowCached }
func stateID(s uint64) uint32  { return stateLow(s) & lowIDMask }

// withLow returns s with its low word replaced.
func withLow(s uint64, low uint32) uint64 { return s&^0xffffffff | uint64(low) }

// nextGen returns state low at the generation after that of s.
func nextGen(s uint64, low uint32) uint64 { return uint64(stateGen(s)+1)<<32 | uint64(low) }

// freeing returns the state that frees allocated state s on behalf of id:
// next generation, being pushed by id.
func freeing(s uint64, id uint32) uint64 { return nextGen(s, lowPush|id) }

// takenBack returns the state that puts a claimed chunk (state s before the
// claim) back on its way to the free list on behalf of id, without
// allocating it. Its generation is bumped all the same, so that no state a
// chunk passes through off the list ever repeats an earlier one (pop relies
// on this, see topState).
func takenBack(s uint64, id uint32) uint64 { return nextGen(s, lowPush|id) }

// cachedBy returns the state of a chunk that enters a cache of participant
// id, from claimed or allocated state s: the next generation, so a Ref of
// the allocation that ended is stale (ErrDoubleFree on a second free) and
// the free state the chunk reaches when it is flushed is new.
func cachedBy(s uint64, id uint32) uint64 { return nextGen(s, lowCached|id) }

func stateString(s uint64) string {
	switch {
	case isFree(s):
		return "free"
	case isAlloc(s):
		return "allocated"
	case isClaim(s):
		return "claimed"
	case isPush(s):
		return "being freed"
	case isCached(s):
		return "cached"
	}
	return "invalid"
}
