package allocator

import "fmt"

// ClassStats are the counters of one size class.
type ClassStats struct {
	Size      int    // chunk payload size in bytes
	Total     int    // chunks in the class
	Free      int    // Total - InUse
	InUse     int    // chunks allocated and not yet freed
	HighWater int    // largest InUse seen
	Failed    uint64 // allocations that found the class empty (Alloc, or AllocContext whose context ended)
}

// Stats returns the counters of every class. It only loads shared words, so
// it does not disturb allocators in other processes; while they run, the
// counters of different classes are not a single snapshot.
func (a *Allocator) Stats() []ClassStats {
	out := make([]ClassStats, len(a.classes))
	for i := range a.classes {
		c := &a.classes[i]
		out[i] = makeStats(c.size, c.count, c.inUse.Load(), c.high.Load(), c.failed.Load())
	}
	return out
}

func makeStats(size, count, inUse, high, failed uint64) ClassStats {
	// The counters are shared memory: clamp what a faulty peer may have
	// written into the range that makes sense.
	u := min(max(int64(inUse), 0), int64(count))
	return ClassStats{
		Size: int(size), Total: int(count), InUse: int(u), Free: int(count) - int(u),
		HighWater: int(min(high, count)), Failed: failed,
	}
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
		return nil, fmt.Errorf("read stats: %w", err)
	}
	out := make([]ClassStats, len(geom))
	for i, g := range geom {
		d := uint64(classTableOff + i*ClassDescSize)
		out[i] = makeStats(g.size, g.count, u64at(mem, d+cdInUse).Load(), u64at(mem, d+cdHigh).Load(), u64at(mem, d+cdFailed).Load())
	}
	return out, nil
}
