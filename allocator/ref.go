package allocator

import "fmt"

// Ref names one allocation of one chunk. It fits in a 64-bit ring slot and
// means the same thing in every process that maps the region:
//
//	bits 63..30: offset of the chunk's payload from the start of the region, in 64-byte units
//	bits 29..0:  generation of the chunk when it was allocated (low 30 bits)
//
// The zero Ref never names a chunk (offset 0 is the region header). A Ref
// read from shared memory is untrusted: every method of Allocator that takes
// one validates it and answers ErrBadRef for an offset outside every class,
// an offset that is not at a chunk boundary of its class, or a stale
// generation. Generations compare modulo 2^30: a Ref kept across 2^30 reuses
// of its chunk could be mistaken for a live one.
type Ref uint64

const (
	refGenBits    = 30
	refGenMask    = 1<<refGenBits - 1
	refOffsetBits = 64 - refGenBits
)

func makeRef(off uint64, gen uint32) Ref {
	return Ref((off/Align)<<refGenBits | uint64(gen)&refGenMask)
}

// Offset returns the payload's byte offset from the start of the region.
func (r Ref) Offset() uint64 { return uint64(r>>refGenBits) * Align }

// Gen returns the generation the Ref was issued with (30 bits).
func (r Ref) Gen() uint32 { return uint32(r & refGenMask) }

// IsZero reports whether r is the zero Ref.
func (r Ref) IsZero() bool { return r == 0 }

func (r Ref) String() string { return fmt.Sprintf("ref(off=%#x gen=%d)", r.Offset(), r.Gen()) }

// resolve maps r to its class and chunk index without touching shared
// memory: the geometry is the validated local copy made by New or Attach.
func (a *Allocator) resolve(op string, r Ref) (*class, uint32, error) {
	off := r.Offset()
	for i := range a.classes {
		c := &a.classes[i]
		if off < c.dataOff || off >= c.dataEnd {
			continue
		}
		d := off - c.dataOff
		var idx uint64
		if c.shift != 0 {
			if d&(c.size-1) != 0 {
				return nil, 0, fmt.Errorf("%w: %s %v: not at a chunk boundary of class %d", ErrBadRef, op, r, c.size)
			}
			idx = d >> c.shift
		} else {
			if d%c.size != 0 {
				return nil, 0, fmt.Errorf("%w: %s %v: not at a chunk boundary of class %d", ErrBadRef, op, r, c.size)
			}
			idx = d / c.size
		}
		return c, uint32(idx), nil
	}
	return nil, 0, fmt.Errorf("%w: %s %v: outside every class", ErrBadRef, op, r)
}
