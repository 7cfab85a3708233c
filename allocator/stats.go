package allocator

// ClassStats are the counters of one size class.
type ClassStats struct {
	Size      int    // chunk payload size in bytes
	Total     int    // chunks in the class
	Free      int    // chunks free
	InUse     int    // chunks allocated
	InFlight  int    // chunks inside an Alloc, Free, refill or Flush right now (or left there by a dead participant)
	Cached    int    // chunks in the magazines of handles (WithCache), marked with their owners
	HighWater int    // most chunks off the free list at once: in use, in flight or cached
	Failed    uint64 // allocations that found the class empty (Alloc, or AllocContext whose context ended)
}

// Stats returns the counters of every class: Free, InUse, InFlight and
// Cached from the chunk states (so Free+InUse+InFlight+Cached == Total),
// HighWater and Failed from shared counters. It only loads shared words, so it does not disturb
// allocators in other processes; while they run, the figures are not one
// snapshot. It costs one load per chunk.
func (a *Allocator) Stats() []ClassStats {
	out := make([]ClassStats, len(a.classes))
	for i := range a.classes {
		out[i] = a.classes[i].stats()
	}
	return out
}

func (c *class) stats() ClassStats {
	st := ClassStats{Size: int(c.size), Total: int(c.count), Failed: c.failed.Load()}
	for i := uint32(0); uint64(i) < c.count; i++ {
		switch s := c.chunk(i).state.Load(); {
		case isFree(s):
			st.Free++
		case isAlloc(s):
			st.InUse++
		case isCached(s):
			st.Cached++
		default:
			st.InFlight++
		}
	}
	// Shared memory: clamp what a faulty peer may have written.
	st.HighWater = int(min(c.high.Load(), c.count))
	return st
}

// ReadStats validates the header and class table of the slab region in mem
// and returns its counters, like Stats. It only loads, so mem may be a
// read-only mapping (shmctl inspect uses one); it needs 8-byte alignment.
func ReadStats(mem []byte) ([]ClassStats, error) {
	if err := checkAlign(mem, 8); err != nil {
		return nil, err
	}
	geom, _, err := readLayout(mem)
	if err != nil {
		return nil, err
	}
	a := build(mem, geom, options{})
	return a.Stats(), nil
}
