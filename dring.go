package shmkit

import (
	"fmt"
	"runtime"
	"sync/atomic"

	"github.com/shmkit/shmkit/futex"
	"github.com/shmkit/shmkit/internal/atomicx"
)

// A delivery ring carries message refs to one subscriber (or to the
// consumers of a work queue). It is a bounded multi-producer queue after
// Vyukov's design in which every claim is recorded in the slot itself:
//
//	slot sequence word = pos<<16 | state<<8 | participant
//
// A writer claims position t by CAS of slot t%depth from EMPTY(t) to
// WRITING(t, me), then advances the tail (anyone who sees a claimed slot at
// the tail helps), stores the ref and publishes FULL(t). A reader claims
// by CAS from FULL(r) to READING(r, me), advances the read index (helped
// the same way), takes the ref, and frees the slot for the next lap with
// EMPTY(r+depth). Because the claimant is in the slot, a slot left WRITING
// or READING by a participant that died can be finished by whoever cleans
// that participant up: a WRITING slot becomes a hole (FULL with ref 0,
// skipped by readers), a READING slot has its ref released and is freed.
// Nothing stalls on a dead participant longer than it takes to notice the
// death.
//
// Bit 63 of the tail closes the ring (its subscriber left or died). A writer
// re-checks it after claiming a slot and turns its claim into a hole if the
// ring was closed meanwhile, so once the cleaner has seen every claimed
// slot finished, no message can enter a closed ring.
type dring struct {
	slots    []byte
	depth    uint64
	mask     uint64
	tail     *atomic.Uint64
	read     *atomic.Uint64
	notEmpty *futex.Event
	notFull  *futex.Event
}

const (
	stEmpty   = 0
	stWriting = 1
	stFull    = 2
	stReading = 3
	closedBit = uint64(1) << 63
	posMask   = uint64(1)<<48 - 1
)

func seqWord(pos uint64, st, id int) uint64 { return pos<<16 | uint64(st)<<8 | uint64(id) }
func seqPos(w uint64) uint64                { return w >> 16 }
func seqState(w uint64) int                 { return int(w>>8) & 0xff }
func seqID(w uint64) int                    { return int(w & 0xff) }

// newDring lays out an empty ring in mem (ringSize(depth) bytes).
func newDring(mem []byte, depth int) *dring {
	clear(mem[:ringSize(depth)])
	r := attachDring(mem, depth)
	for i := uint64(0); i < r.depth; i++ {
		r.seq(i).Store(seqWord(i, stEmpty, 0))
	}
	return r
}

// attachDring maps a ring of depth slots (validated by the caller from the
// channel header) in mem. Every word read from it later is checked.
func attachDring(mem []byte, depth int) *dring {
	mem = mem[:ringSize(depth):ringSize(depth)]
	ne, _ := futex.EventAt(mem[rgNotEmpty:])
	nf, _ := futex.EventAt(mem[rgNotFull:])
	return &dring{
		slots: mem[rgSlots:], depth: uint64(depth), mask: uint64(depth - 1),
		tail: u64(mem, rgTail), read: u64(mem, rgRead), notEmpty: ne, notFull: nf,
	}
}

func (r *dring) seq(pos uint64) *atomic.Uint64 {
	return u64(r.slots, int(pos&r.mask)*slotSize+slotSeq)
}

func (r *dring) ref(pos uint64) *atomic.Uint64 {
	return u64(r.slots, int(pos&r.mask)*slotSize+slotRef)
}

func (r *dring) corrupt(what string, pos, w uint64) error {
	return fmt.Errorf("%w: delivery ring %s position %d, slot word %#x", ErrCorrupt, what, pos, w)
}

// maxHelpSpins bounds the rounds put and take spend helping an index along
// whose CAS keeps failing: live participants move it on within a few
// rounds each, so a million failures mean a corrupt index, not contention.
const maxHelpSpins = 1 << 20

// putResult is what put did.
type putResult int

const (
	putDone   putResult = iota // the ref is in the ring
	putFull                    // no room: the slot at the tail holds the previous lap
	putClosed                  // the ring is closed (or valid said no): the ref is not in it
)

// target is what a put checks after claiming a slot: the ring still
// belongs to the subscriber the caller means (its state word is unchanged),
// so a subscriber slot reused by a newcomer never gets a message published
// before it joined. A nil word means no check (the work queue).
type target struct {
	word *atomic.Uint64
	want uint64
}

func (t target) valid() bool { return t.word == nil || t.word.Load() == t.want }

// put appends ref on behalf of participant me, for target to.
func (r *dring) put(v ref, me int, to target) (putResult, error) {
	for spins := 0; ; spins++ {
		t := r.tail.Load()
		if t&^(posMask|closedBit) != 0 {
			// Bits no writer sets: every CAS of the tail below would fail
			// and the loop would never end.
			return putFull, r.corrupt("tail", t&posMask, t)
		}
		if t&closedBit != 0 {
			return putClosed, nil
		}
		t &= posMask
		s := r.seq(t)
		w := s.Load()
		p := seqPos(w)
		switch {
		case p == t && seqState(w) == stEmpty:
			if !s.CompareAndSwap(w, seqWord(t, stWriting, me)) {
				continue
			}
			if r.tail.Load()&closedBit != 0 || !to.valid() {
				r.ref(t).Store(0) // a hole: readers skip it
				s.Store(seqWord(t, stFull, 0))
				r.tail.CompareAndSwap(t, t+1)
				r.notEmpty.Notify()
				return putClosed, nil
			}
			r.tail.CompareAndSwap(t, t+1)
			atomicx.StoreRelease64(r.ref(t), v)
			// A sequentially consistent store, not a release store: Notify
			// loads the sleeper count next, and a reader that counts
			// itself and then re-checks this word must not miss both
			// (store-buffer pattern; a release store may still sit in the
			// store buffer when the count is loaded, and the wake-up would
			// be lost until the reader's next re-check).
			s.Store(seqWord(t, stFull, 0))
			r.notEmpty.Notify()
			return putDone, nil
		case p == t:
			if !r.tail.CompareAndSwap(t, t+1) && spins > maxHelpSpins { // claimed by another writer: help
				return putFull, r.corrupt("tail", t, w)
			}
		case p+r.depth == t && seqState(w) != stEmpty:
			return putFull, nil
		default:
			if r.tail.Load()&posMask == t {
				if spins > 1000 {
					return putFull, r.corrupt("tail", t, w)
				}
				runtime.Gosched() // a reader is between its claim and EMPTY(next lap)
			}
		}
	}
}

// canPut reports whether a put would not find the ring full.
func (r *dring) canPut() bool {
	t := r.tail.Load()
	if t&closedBit != 0 {
		return true
	}
	w := r.seq(t & posMask).Load()
	return seqPos(w) != (t&posMask)-r.depth || seqState(w) == stEmpty
}

// take claims the oldest message for participant me and returns its
// position and ref (0 for a hole). ok is false when there is nothing to
// take: the ring is empty or its oldest message is still being written.
// The caller must finish(pos) once the ref is safe elsewhere.
func (r *dring) take(me int) (pos uint64, v ref, ok bool, err error) {
	for spins := 0; ; spins++ {
		rd := r.read.Load()
		s := r.seq(rd)
		w := s.Load()
		p := seqPos(w)
		if seqState(w) > stReading {
			// No writer produces it: a broken or hostile peer. (It was
			// taken for "empty" here and "ready" by canTake: a receive
			// spun for ever.)
			return 0, 0, false, r.corrupt("read", rd, w)
		}
		switch {
		case p == rd && seqState(w) == stFull:
			if !s.CompareAndSwap(w, seqWord(rd, stReading, me)) {
				continue
			}
			r.read.CompareAndSwap(rd, rd+1)
			return rd, r.ref(rd).Load(), true, nil
		case p == rd && seqState(w) == stReading, p == rd+r.depth:
			if !r.read.CompareAndSwap(rd, rd+1) && spins > maxHelpSpins { // taken already: help
				return 0, 0, false, r.corrupt("read", rd, w)
			}
		case p == rd, p+r.depth == rd:
			// Empty, or being written; or empty with the previous lap's
			// last reader still between its claim and its finish.
			return 0, 0, false, nil
		default:
			if r.read.Load() == rd {
				if spins > 1000 {
					return 0, 0, false, r.corrupt("read", rd, w)
				}
				runtime.Gosched()
			}
		}
	}
}

// finish frees the slot of position pos (taken with take) for the next lap.
func (r *dring) finish(pos uint64) {
	// Sequentially consistent for the same reason as put's FULL store: a
	// blocked writer counts itself, then re-checks this word.
	r.seq(pos).Store(seqWord(pos+r.depth, stEmpty, 0))
	r.notFull.Notify()
}

// canTake reports whether a take may find something (or the ring changed).
func (r *dring) canTake() bool {
	rd := r.read.Load()
	w := r.seq(rd).Load()
	p := seqPos(w)
	return !(p == rd && (seqState(w) == stEmpty || seqState(w) == stWriting)) && p+r.depth != rd
}

// empty reports whether nothing is waiting to be read.
func (r *dring) empty() bool {
	rd := r.read.Load()
	w := r.seq(rd).Load()
	return (seqPos(w) == rd && seqState(w) == stEmpty) || seqPos(w)+r.depth == rd
}

func (r *dring) close() {
	for {
		t := r.tail.Load()
		if t&closedBit != 0 || r.tail.CompareAndSwap(t, t|closedBit) {
			break
		}
	}
	r.notFull.Notify()
	r.notEmpty.Notify()
}

// repair finishes every slot left WRITING or READING by participant id,
// which is dead: a WRITING slot becomes a hole; a READING slot's ref is
// passed to drop and the slot freed. It returns the refs of the holes'
// former claims are unknown, so only READING refs are reported to drop.
func (r *dring) repair(id int, drop func(ref)) {
	for i := uint64(0); i < r.depth; i++ {
		s := u64(r.slots, int(i)*slotSize+slotSeq)
		w := s.Load()
		if seqID(w) != id {
			continue
		}
		p := seqPos(w)
		switch seqState(w) {
		case stWriting:
			r.ref(p).Store(0)
			if s.CompareAndSwap(w, seqWord(p, stFull, 0)) {
				r.tail.CompareAndSwap(p, p+1)
				r.notEmpty.Notify()
			}
		case stReading:
			v := r.ref(p).Load()
			if v != 0 {
				drop(v)
			}
			if s.CompareAndSwap(w, seqWord(p+r.depth, stEmpty, 0)) {
				r.read.CompareAndSwap(p, p+1)
				r.notFull.Notify()
			}
		}
	}
}

// drain empties a closed ring on behalf of cleaner me: every message in it
// goes to drop. Slots that live participants are writing or reading are
// waited for (they finish within a few instructions); slots of dead ones
// are left to alive to judge: alive(id) false means drain may repair them.
// After drain the read index equals the tail.
func (r *dring) drain(me int, alive func(id int) bool, drop func(ref)) error {
	for pass := 0; ; pass++ {
		busy := false
		for i := uint64(0); i < r.depth; i++ {
			s := u64(r.slots, int(i)*slotSize+slotSeq)
			w := s.Load()
			p := seqPos(w)
			if p&r.mask != i {
				return r.corrupt("drain", i, w)
			}
			switch seqState(w) {
			case stFull:
				if !s.CompareAndSwap(w, seqWord(p, stReading, me)) {
					busy = true
					continue
				}
				if v := r.ref(p).Load(); v != 0 {
					drop(v)
				}
				s.Store(seqWord(p+r.depth, stEmpty, 0))
			case stWriting, stReading:
				if seqID(w) == me || !alive(seqID(w)) {
					r.repair(seqID(w), drop)
				}
				busy = true
			}
		}
		if !busy {
			break
		}
		if pass > 100000 {
			return fmt.Errorf("%w: delivery ring: slots stay claimed by live participants", ErrCorrupt)
		}
		runtime.Gosched()
	}
	// Every slot is EMPTY for some position; the smallest is where both
	// indices stand now.
	lo := ^uint64(0)
	for i := uint64(0); i < r.depth; i++ {
		lo = min(lo, seqPos(u64(r.slots, int(i)*slotSize+slotSeq).Load()))
	}
	r.read.Store(lo)
	r.tail.Store(lo | closedBit)
	r.notFull.Notify()
	return nil
}

// reopen opens a drained ring for a new subscriber.
func (r *dring) reopen() {
	r.tail.Store(r.tail.Load() &^ closedBit)
}

// len returns how many messages wait in the ring (0 for indices that
// cannot be: the count is for an error message, not a decision).
func (r *dring) len() int {
	t, rd := r.tail.Load()&posMask, r.read.Load()&posMask
	if t < rd || t-rd > r.depth {
		return 0
	}
	return int(t - rd)
}
