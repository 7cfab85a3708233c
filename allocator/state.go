package allocator

// The state word of a chunk header is generation<<32 | low, where the low
// 32 bits say what the chunk is doing:
//
//	low == 0                   free (on the free list, or about to be popped from its top)
//	low == n, 1 <= n < 2^30    allocated, with n references
//	low == 01<<30 | id         claimed by participant id, which is popping it from the free list
//	low == 10<<30 | id         being freed by participant id, which is pushing it onto the free list
//
// The generation is bumped when an allocated chunk is freed, so each
// allocation of a chunk has its own generation. Recording the participant
// in the claimed and being-freed states makes every operation in flight
// attributable: ReclaimOwner(id) can finish what a dead id left half done.
const (
	lowKindMask = 3 << 30
	lowClaim    = 1 << 30
	lowPush     = 2 << 30
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
func stateID(s uint64) uint32  { return stateLow(s) & lowIDMask }

// withLow returns s with its low word replaced.
func withLow(s uint64, low uint32) uint64 { return s&^0xffffffff | uint64(low) }

// freeing returns the state that frees allocated state s on behalf of id:
// next generation, being pushed by id.
func freeing(s uint64, id uint32) uint64 { return uint64(stateGen(s)+1)<<32 | lowPush | uint64(id) }

// takenBack returns the state that puts a claimed chunk (state s before the
// claim) back on its way to the free list on behalf of id, without
// allocating it. Its generation is bumped all the same, so that no state a
// chunk passes through off the list ever repeats an earlier one (pop relies
// on this, see topState).
func takenBack(s uint64, id uint32) uint64 { return uint64(stateGen(s)+1)<<32 | lowPush | uint64(id) }

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
	}
	return "invalid"
}
