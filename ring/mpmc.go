package ring

import (
	"fmt"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/shmkit/shmkit/futex"

	"github.com/shmkit/shmkit/internal/atomicx"
)

// Layout of an MPMC slot: a turn word, the message length, a reserved word,
// then the payload. docs/ring.md (table mpmc_slot) lists them and
// TestMPMCLayout checks the table against these constants.
const (
	mpmcTurnOff    = 0  // uint64 turn (see MPMC)
	mpmcLenOff     = 8  // uint32 message length
	mpmcResvOff    = 12 // uint32 reserved, zero
	mpmcSlotHeader = 16 // payload offset
)

// mpmcClosed is the bit of the MPMC enqueue index (tail) that Close sets.
// Folding the closed flag into the index that every producer claims with a
// compare-and-swap makes Close exact (no enqueue succeeds after it) and
// costs the fast path no extra load.
const mpmcClosed = 1 << 63

// mpmcMaxRun bounds how many positions one compare-and-swap claims in a
// batch: a claim record holds the count in 8 bits (see mpmc_claims.go).
const mpmcMaxRun = 255

// MPMC is a multi-producer multi-consumer ring of fixed-size slots in a
// shared region, after D. Vyukov's bounded queue, with a per-slot turn
// number. Position p uses slot p&(capacity-1) in lap p>>log2(capacity):
//
//	turn == 4*lap     the slot is free for lap's producer
//	turn == 4*lap+1   it holds lap's message
//	turn == 4*lap+2   it holds a tombstone: a producer claimed it and died,
//	                  and Repair marked it to be skipped
//	turn == 4*lap+4   the consumer of lap freed it: free for lap+1
//
// A producer claims a position with one compare-and-swap on the enqueue
// index, a consumer with one on the dequeue index; nothing else is locked.
// Each message goes to exactly one consumer, and messages from one producer
// handle are dequeued in the order it enqueued them.
//
// The MPMC value is shared by every goroutine of a process; Producer and
// Consumer hand out side handles, any number, one per goroutine. A ring
// created with WithClaimSlots records each handle's claim in flight in a
// claim table in the region, so that Repair can finish the claims of a
// participant that died between claiming a position and publishing it;
// without claim slots such a death stalls the ring at that slot.
type MPMC struct {
	mem      []byte
	c        *control
	base     unsafe.Pointer // first slot; every slot address is base + (pos&mask)*stride
	rbase    unsafe.Pointer // the same slots in the WithReadView view (base without one)
	capacity uint64
	mask     uint64
	shift    uint
	slotSize int
	stride   int
	claims   unsafe.Pointer // claim table (nclaims entries of mpmcClaimSize), nil if none
	nclaims  int
	owner    uint32
	opts     options
	canPut   func() bool
	canGet   func() bool
}

// mpmcStride is the distance between MPMC slots: header plus payload
// rounded up to whole cache lines, so that two producers (or a producer and
// a consumer) working on neighbouring positions never write the same line.
// 8-byte messages take 64-byte slots, 64-byte messages 128-byte slots.
func mpmcStride(slotSize uint64) uint64 {
	return (mpmcSlotHeader + align8(slotSize) + cacheLine - 1) &^ (cacheLine - 1)
}

// mpmcParams checks the geometry and computes the region size: control
// block, slots, then claims claim records.
func mpmcParams(capacity, slotSize, claims int) (params, error) {
	p, err := slotParams(KindMPMC, capacity, slotSize, mpmcStride)
	if err != nil {
		return params{}, err
	}
	if claims < 0 || claims > MaxClaimSlots {
		return params{}, fmt.Errorf("%w: %d MPMC claim slots, want 0 to %d", ErrConfig, claims, MaxClaimSlots)
	}
	p.size += uint64(claims) * mpmcClaimSize
	return p, nil
}

// MPMCSize returns the number of bytes an MPMC ring with capacity slots (a
// power of two) of slotSize payload bytes occupies, with the claim slots
// WithClaimSlots asks for (other options are ignored).
func MPMCSize(capacity, slotSize int, opts ...Option) (int, error) {
	p, err := mpmcParams(capacity, slotSize, applyOptions(opts).claims)
	if err != nil {
		return 0, err
	}
	return int(p.size), nil
}

// NewMPMC initialises an empty MPMC ring at the start of mem, which must be
// 64-byte aligned and at least MPMCSize(capacity, slotSize, opts...) bytes
// long, and returns a handle to it. Options: WithWaiter, WithClaimSlots
// (fixed at creation), WithOwner. The handle is valid while mem stays
// mapped.
func NewMPMC(mem []byte, capacity, slotSize int, opts ...Option) (*MPMC, error) {
	o := applyOptions(opts)
	p, err := mpmcParams(capacity, slotSize, o.claims)
	if err != nil {
		return nil, err
	}
	if err := checkRegion(mem, p.size); err != nil {
		return nil, err
	}
	if err := checkView(mem, p.size, o.view, false); err != nil {
		return nil, err
	}
	// Every turn 0: every slot waits for lap 0; every claim record free.
	clear(mem[dataOffset:p.size])
	return newMPMC(mem, initControl(mem, p), p, o), nil
}

// AttachMPMC returns a handle to the MPMC ring initialised at the start of
// mem, after validating its header. The number of claim slots comes from
// the region; WithClaimSlots is ignored here.
func AttachMPMC(mem []byte, opts ...Option) (*MPMC, error) {
	c, p, err := attachControl(mem, KindMPMC)
	if err != nil {
		return nil, err
	}
	base, err := mpmcParams(int(min(p.capacity, MaxCapacity+1)), int(min(p.slotSize, MaxSlotSize+1)), 0)
	if err != nil {
		return nil, err
	}
	extra := p.size - base.size
	if p.size < base.size || extra%mpmcClaimSize != 0 || extra/mpmcClaimSize > MaxClaimSlots {
		return nil, fmt.Errorf("%w: header size %d, slots need %d plus claim records of %d bytes", ErrConfig, p.size, base.size, mpmcClaimSize)
	}
	o := applyOptions(opts)
	o.claims = int(extra / mpmcClaimSize)
	if err := checkView(mem, p.size, o.view, true); err != nil {
		return nil, err
	}
	return newMPMC(mem, c, p, o), nil
}

func newMPMC(mem []byte, c *control, p params, o options) *MPMC {
	stride := mpmcStride(uint64(p.slotSize))
	r := &MPMC{
		mem:      mem[:p.size:p.size],
		c:        c,
		base:     unsafe.Pointer(&mem[dataOffset]),
		rbase:    unsafe.Pointer(&mem[dataOffset]),
		capacity: p.capacity,
		mask:     p.capacity - 1,
		shift:    log2(p.capacity),
		slotSize: int(p.slotSize),
		stride:   int(stride),
		nclaims:  o.claims,
		owner:    o.owner,
		opts:     o,
	}
	if o.claims > 0 {
		r.claims = unsafe.Pointer(&mem[dataOffset+p.capacity*stride])
	}
	if o.view != nil {
		r.rbase = unsafe.Pointer(&o.view[dataOffset])
	}
	// Wait conditions. A producer may go on when the slot at the enqueue
	// index no longer holds an earlier lap, or the ring is closed; a
	// consumer when the slot at the dequeue index holds this lap's message
	// or tombstone, or the ring is closed and no position is claimed beyond
	// it. Any other state (corrupt ones included) reads as ready, so the
	// next try reports it instead of waiting on it.
	r.canPut = func() bool {
		pos := r.c.tail.Load()
		return pos&mpmcClosed != 0 || int64(r.turn(pos).Load()-r.putTurn(pos)) >= 0
	}
	r.canGet = func() bool {
		pos := r.c.head.Load()
		if int64(r.turn(pos).Load()-r.getTurn(pos)) >= 0 {
			return true
		}
		t := r.c.tail.Load()
		return t&mpmcClosed != 0 && t&^mpmcClosed == pos
	}
	return r
}

// Cap returns the number of slots.
func (r *MPMC) Cap() int { return int(r.capacity) }

// SlotSize returns the largest message, in bytes, a slot holds.
func (r *MPMC) SlotSize() int { return r.slotSize }

// ClaimSlots returns the number of claim records the ring was created with
// (WithClaimSlots): how many handles can work on it at once with crash
// repair.
func (r *MPMC) ClaimSlots() int { return r.nclaims }

// Len returns the number of claimed positions not yet dequeued at the moment
// of the call, clamped to [0, Cap].
func (r *MPMC) Len() int {
	h := r.c.head.Load()
	t := r.c.tail.Load() &^ mpmcClosed
	if t-h > r.capacity {
		return 0
	}
	return int(t - h)
}

// NotEmpty is the event consumers park on (producers notify it after a
// publication, when someone sleeps); NotFull the one producers waiting for
// a free slot park on (consumers notify it after freeing one). A caller
// that parks on them itself (a channel waiting with its own liveness
// checks) does what this package's waits do (wait.go): it bounds each sleep
// by ParkBound, and calls FenceRecheck(e) before each re-check of its
// condition made while counted as a sleeper on e (false: treat the
// condition as true; futex.Waiter.Fence, as for Log.NotEmpty). CanPut and
// CanGet are the conditions.
func (r *MPMC) NotEmpty() *futex.Event { return &r.c.notEmpty }

// NotFull: see NotEmpty.
func (r *MPMC) NotFull() *futex.Event { return &r.c.notFull }

// ParkBound returns the longest one futex sleep on the ring's events may
// last (0: no bound of the ring's own); see NotEmpty.
func (r *MPMC) ParkBound() time.Duration { return r.c.parkBound() }

// FenceRecheck is the waiter's half of the asymmetric fence; see NotEmpty.
func (r *MPMC) FenceRecheck(e *futex.Event) bool { return r.c.fenceRecheck(e) }

// CanPut reports whether a producer may find a free slot now (or the ring
// is closed): the condition to wait for on NotFull.
func (r *MPMC) CanPut() bool { return r.canPut() }

// CanGet reports whether a consumer may find a message (or a tombstone to
// skip) now, or the ring is closed and drained: the condition to wait for
// on NotEmpty.
func (r *MPMC) CanGet() bool { return r.canGet() }

// Closed reports whether a producer has closed the ring.
func (r *MPMC) Closed() bool { return r.c.tail.Load()&mpmcClosed != 0 }

// close sets the closed bit of the enqueue index (after which no claim
// succeeds), mirrors it in the header's closed word for tools, and wakes
// everyone.
func (r *MPMC) close() {
	r.c.tail.Or(mpmcClosed)
	r.c.hdr.closed.Store(1)
	r.c.notEmpty.Notify()
	r.c.notFull.Notify()
}

// slot returns the address of the slot for position pos. The mask keeps it
// inside the slots that checkRegion validated.
func (r *MPMC) slot(pos uint64) unsafe.Pointer {
	return unsafe.Add(r.base, uintptr(pos&r.mask)*uintptr(r.stride))
}

func (r *MPMC) turn(pos uint64) *atomic.Uint64 { return (*atomic.Uint64)(r.slot(pos)) }

// slotLen is the length word of slot s. It is published and freed by the
// turn stores that follow it, but a consumer reads it before claiming the
// slot (to refuse a message that does not fit), so it is written with a
// release store and read with an atomic load: both plain MOVs on amd64, and
// no data race for the race detector when the ring is in Go memory.
func slotLen(s unsafe.Pointer) *atomic.Uint32 { return (*atomic.Uint32)(unsafe.Add(s, mpmcLenOff)) }

func setSlotLen(s unsafe.Pointer, n int) { atomicx.StoreRelease32(slotLen(s), uint32(n)) }

func (r *MPMC) payload(s unsafe.Pointer, n int) []byte {
	return unsafe.Slice((*byte)(unsafe.Add(s, mpmcSlotHeader)), n)
}

// readPayload is payload for a slot a consumer returns in place (TryPeek):
// from the WithReadView view when there is one.
func (r *MPMC) readPayload(s unsafe.Pointer, n int) []byte {
	return r.payload(unsafe.Add(r.rbase, uintptr(s)-uintptr(r.base)), n)
}

// putTurn is the turn of pos's slot while it is free for pos's producer,
// getTurn while it holds pos's message (getTurn+1: a tombstone), and
// putTurn+4 once pos's consumer has freed it.
func (r *MPMC) putTurn(pos uint64) uint64 { return 4 * ((pos &^ mpmcClosed) >> r.shift) }
func (r *MPMC) getTurn(pos uint64) uint64 { return 4*((pos&^mpmcClosed)>>r.shift) + 1 }

func (r *MPMC) corrupt(what string, pos, turn uint64) error {
	return fmt.Errorf("%w: mpmc %s position %d, slot turn %d, index unmoved", ErrCorrupt, what, pos, turn)
}

// Wake-ups after a publication go through control.mayWake (inline: one
// load of the sleeper count and one of the fence word, no call) and
// control.wake, only when someone sleeps or the ring is not in fast mode
// (wait.go).

// mpmcStep names the points inside MPMC operations at which the crash test
// kills a participant.
type mpmcStep uint8

const (
	stepPutIntent    mpmcStep = iota + 1 // claim recorded, compare-and-swap not yet made
	stepPutClaimed                       // position claimed, slot not written
	stepPutWritten                       // message written, turn not stored
	stepPutPublished                     // turn stored, consumers not yet notified
	stepGetIntent                        // claim recorded, compare-and-swap not yet made
	stepGetClaimed                       // position claimed, message not copied
	stepGetCopied                        // message copied, slot not freed
	stepGetFreed                         // slot freed, producers not yet notified
	stepCount
)

// mpmcHook, when set, is called at every step of every MPMC operation. Only
// the package's tests set it (to kill the process at a chosen step); in
// production it is nil and costs a load and a branch per step.
var mpmcHook func(mpmcStep)

// Memory ordering of the MPMC ring (docs/ring.md has the table of pairs).
//
//   - Claims: tail and head change only by compare-and-swap, and a position
//     belongs to the handle whose compare-and-swap moved the index past it.
//     The indices carry no data; nothing is published through them.
//   - Publication: the producer writes len and payload with plain stores,
//     then stores the turn 4L+1 with publish64 (a release store; a plain MOV
//     on amd64). A consumer loads the turn (acquire) before it reads len or
//     payload, so it never sees a message the producer has not finished.
//   - Freeing: the consumer reads the payload, then stores the turn 4L+4
//     with publish64. The next lap's producer loads the turn before it
//     writes, so it never overwrites a slot still being read.
//   - The length a consumer reads before its claim: if the claim succeeds,
//     nobody claimed the position in between, and only its consumer frees
//     the slot, so the length read is the one published.
//   - Wake-ups: publish64 followed by Notify's load of the sleeper count is
//     a store followed by a load, which amd64 may reorder; the waiting side
//     pays for it with the asymmetric fence in options.wait (wait.go).
//   - Close: the closed bit is set with an atomic OR on tail, ordered with
//     every claim's compare-and-swap on the same word; a consumer that sees
//     the bit and tail == head knows no position is claimed beyond it.
//   - Claim records and Repair: mpmc_claims.go.

// claimPut claims one free position on the enqueue index: the single
// message fast path. It returns ok false when the ring is full.
func (r *MPMC) claimPut(cl *mpmcClaim) (pos uint64, ok bool, err error) {
	pos = r.c.tail.Load()
	for {
		if pos&mpmcClosed != 0 {
			return 0, false, ErrClosed
		}
		t := r.turn(pos).Load()
		switch d := int64(t - r.putTurn(pos)); {
		case d == 0:
			if cl != nil {
				cl.record(pos, 1)
			}
			if r.c.tail.CompareAndSwap(pos, pos+1) {
				if mpmcHook != nil {
					mpmcHook(stepPutClaimed)
				}
				return pos, true, nil
			}
			if cl != nil {
				cl.clear()
			}
			pos = r.c.tail.Load()
		case d < 0:
			// The slot still holds the previous lap: full.
			return 0, false, nil
		default:
			// Another producer took pos; the index must have moved on.
			np := r.c.tail.Load()
			if np == pos {
				return 0, false, r.corrupt("enqueue", pos, t)
			}
			pos = np
		}
	}
}

// claimPutRun claims up to k (at most mpmcMaxRun) consecutive free
// positions with one compare-and-swap and returns the first and how many
// (0 when the ring is full).
func (r *MPMC) claimPutRun(cl *mpmcClaim, k int) (uint64, int, error) {
	k = min(k, mpmcMaxRun)
	pos := r.c.tail.Load()
	for {
		if pos&mpmcClosed != 0 {
			return 0, 0, ErrClosed
		}
		t := r.turn(pos).Load()
		switch d := int64(t - r.putTurn(pos)); {
		case d == 0:
			n := 1
			for n < k && r.turn(pos+uint64(n)).Load() == r.putTurn(pos+uint64(n)) {
				n++
			}
			if cl != nil {
				cl.record(pos, n)
			}
			if r.c.tail.CompareAndSwap(pos, pos+uint64(n)) {
				if mpmcHook != nil {
					mpmcHook(stepPutClaimed)
				}
				return pos, n, nil
			}
			if cl != nil {
				cl.clear()
			}
			pos = r.c.tail.Load()
		case d < 0:
			return 0, 0, nil
		default:
			np := r.c.tail.Load()
			if np == pos {
				return 0, 0, r.corrupt("enqueue", pos, t)
			}
			pos = np
		}
	}
}

// getReady reports whether turn t lets the consumer of pos take the slot:
// 0 not ready, 1 a message, 2 a tombstone.
func (r *MPMC) getReady(pos, t uint64) int {
	switch t - r.getTurn(pos) {
	case 0:
		return 1
	case 1:
		return 2
	}
	return 0
}

// claimGet claims the next published position (message or tombstone) on
// the dequeue index for a buffer of room bytes: the single message fast
// path. It returns ok false when the ring is empty, ErrClosed when it is
// closed and drained, ErrShortBuffer (claiming nothing) when the message is
// longer than room. tomb reports a tombstone.
func (r *MPMC) claimGet(cl *mpmcClaim, room int) (pos uint64, tomb, ok bool, err error) {
	pos = r.head()
	for {
		t := r.turn(pos).Load()
		d := int64(t - r.getTurn(pos))
		if d == 0 || d == 1 {
			// The length is read before the compare-and-swap: if the
			// claim succeeds nobody took pos in between, so the slot,
			// which only pos's consumer frees, still holds what was read.
			if d == 0 {
				if l := int(slotLen(r.slot(pos)).Load()); l > room && l <= r.slotSize {
					return 0, false, false, fmt.Errorf("%w: message of %d bytes, buffer of %d", ErrShortBuffer, l, room)
				}
			}
			if cl != nil {
				cl.record(pos, 1)
			}
			if r.c.head.CompareAndSwap(pos, pos+1) {
				if mpmcHook != nil {
					mpmcHook(stepGetClaimed)
				}
				return pos, d == 1, true, nil
			}
			if cl != nil {
				cl.clear()
			}
			if pos, err = r.headAfterLoss(pos, t); err != nil {
				return 0, false, false, err
			}
			continue
		}
		if d < 0 {
			// Empty, or pos's producer has not published yet.
			if t := r.c.tail.Load(); t&mpmcClosed != 0 && t&^mpmcClosed == pos {
				return 0, false, false, ErrClosed
			}
			return 0, false, false, nil
		}
		np := r.head()
		if np == pos {
			return 0, false, false, r.corrupt("dequeue", pos, t)
		}
		pos = np
	}
}

// head loads the dequeue index. Only a hostile peer sets its closed bit;
// masking it keeps positions in the range producers use.
func (r *MPMC) head() uint64 { return r.c.head.Load() &^ mpmcClosed }

// headAfterLoss is the dequeue index to try next after a consumer's
// compare-and-swap from pos (whose slot showed turn t) failed: another
// consumer took pos. An index word with the closed bit set (a hostile
// peer's) fails every compare-and-swap from a masked position, which would
// loop for ever: ErrCorrupt.
func (r *MPMC) headAfterLoss(pos, t uint64) (uint64, error) {
	h := r.c.head.Load()
	if h&mpmcClosed != 0 {
		return 0, r.corrupt("dequeue (closed bit on the dequeue index)", pos, t)
	}
	return h, nil
}

// claimGetRun claims up to k consecutive published positions with one
// compare-and-swap, stopping before a message longer than the capacity of
// the buffer it would go to (bufs, tombstones taking none). It returns
// ErrShortBuffer when the first message does not fit bufs[0].
func (r *MPMC) claimGetRun(cl *mpmcClaim, bufs [][]byte) (uint64, int, error) {
	k := min(len(bufs), mpmcMaxRun)
	pos := r.head()
	for {
		t := r.turn(pos).Load()
		d := int64(t - r.getTurn(pos))
		if d == 0 || d == 1 {
			n, used := 0, 0
			for n < k {
				q := pos + uint64(n)
				switch r.getReady(q, r.turn(q).Load()) {
				case 1:
					if l := int(slotLen(r.slot(q)).Load()); l <= r.slotSize && l > cap(bufs[used]) {
						if n == 0 {
							return 0, 0, fmt.Errorf("%w: message of %d bytes, buffer of %d", ErrShortBuffer, l, cap(bufs[used]))
						}
						k = n // stop here
						continue
					}
					used++
					n++
					if used == len(bufs) {
						k = n
					}
				case 2:
					n++
				default:
					k = n
				}
			}
			if cl != nil {
				cl.record(pos, n)
			}
			if r.c.head.CompareAndSwap(pos, pos+uint64(n)) {
				if mpmcHook != nil {
					mpmcHook(stepGetClaimed)
				}
				return pos, n, nil
			}
			if cl != nil {
				cl.clear()
			}
			k = min(len(bufs), mpmcMaxRun)
			var err error
			if pos, err = r.headAfterLoss(pos, t); err != nil {
				return 0, 0, err
			}
			continue
		}
		if d < 0 {
			if t := r.c.tail.Load(); t&mpmcClosed != 0 && t&^mpmcClosed == pos {
				return 0, 0, ErrClosed
			}
			return 0, 0, nil
		}
		np := r.head()
		if np == pos {
			return 0, 0, r.corrupt("dequeue", pos, t)
		}
		pos = np
	}
}
