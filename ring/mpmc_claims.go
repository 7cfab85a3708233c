package ring

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/shmkit/shmkit/internal/atomicx"
)

// Crash repair for the MPMC ring.
//
// A handle of a ring created with claim slots owns one claim record (one
// cache line in the region, after the slots). Before each compare-and-swap
// that claims positions it stores, with a release store, which positions it
// is about to claim (its intent); after a failed compare-and-swap it clears
// the intent. It never clears it after a successful one: the turn stores
// that publish (producer) or free (consumer) the claimed slots say that the
// claim is finished. So on the fast path the claim costs one plain store to
// a line nobody else writes, and no locked instruction.
//
// Repair(owners) first marks the records of the dead owners dead, then for
// every position q that a dead record's intent covers:
//
//   - a producer intent: if the enqueue index is past q (someone claimed q)
//     and q's slot is still free for q's lap (nobody published it), and no
//     record that is not dead has an intent covering q, then the claimer of
//     q is dead: Repair turns the slot into a tombstone (compare-and-swap
//     of the turn from 4*lap to 4*lap+2); consumers skip it.
//   - a consumer intent: if the dequeue index is past q and q's slot still
//     holds q's message or tombstone, and no live record covers q, the
//     claimer died before freeing it: Repair hands the message to lost (if
//     the compare-and-swap that frees the slot is its own) and frees it.
//
// Why "no live record covers q" proves the claimer dead: every handle
// records its intent before its compare-and-swap (the store is ordered
// before the locked instruction), and keeps it until it has published or
// freed every claimed slot. Repair loads the index (seeing the claim of q),
// then the records, then compare-and-swaps the turn. If a live handle H
// claimed q, Repair either sees H's intent covering q, or H has moved on to
// a later intent, which H stores only after its turn store for q; Repair's
// compare-and-swap of the turn then fails. A live record that covers q
// without owning it (its compare-and-swap at q failed or is about to) makes
// Repair wait: that state lasts a few instructions.
//
// A record's tag packs the owner, the role, a dead flag and a generation
// (so that a slow repairer's compare-and-swap never frees a record that has
// been freed and taken again).
const (
	mpmcClaimSize      = 2 * cacheLine // one record per pair of cache lines (adjacent-line prefetch)
	mpmcClaimTagOff    = 0             // uint64 tag
	mpmcClaimIntentOff = 8             // uint64 intent

	claimOwnerMask = 1<<32 - 1
	claimRoleShift = 32
	claimRoleMask  = 3
	claimDead      = 1 << 34
	claimGenShift  = 40

	roleProducer = 1
	roleConsumer = 2

	// An intent is count<<56 | position mod 2^56 (count 1 to
	// mpmcMaxRun); 0 means none. The position is recovered from the index
	// it was claimed on, which is at most 2^56 positions ahead.
	intentPosBits = 56
	intentPosMask = 1<<intentPosBits - 1
)

// MaxClaimSlots is the largest number of claim records an MPMC ring holds.
const MaxClaimSlots = 1 << 12

// mpmcClaim is one claim record in the region.
type mpmcClaim struct {
	tag    atomic.Uint64
	intent atomic.Uint64
	_      [mpmcClaimSize - 16]byte
}

// WithClaimSlots makes NewMPMC (and MPMCSize) reserve n claim records, one
// for each handle that may work on the ring at the same time, so that
// Repair can finish the operation of a handle whose process died. A handle
// takes a record at its first operation and keeps it until Detach; with all
// records taken, further handles' operations fail with ErrConfig; a
// process that exits without Detach keeps its records until Repair is
// called for its owner. Zero (the default) reserves none: handles then
// record nothing and Repair reports ErrConfig. Attach reads the number from
// the region.
func WithClaimSlots(n int) Option {
	return func(o *options) { o.claims = n }
}

// WithOwner sets the owner id that the MPMC handles made from this ring
// value record in their claim records: the id that Repair is called with
// once the owner is known to be dead (a channel's participant id, for
// example). The default is 0.
func WithOwner(id uint32) Option {
	return func(o *options) { o.owner = id }
}

func (r *MPMC) claimAt(i int) *mpmcClaim {
	return (*mpmcClaim)(unsafe.Add(r.claims, uintptr(i)*mpmcClaimSize))
}

func claimRole(tag uint64) uint64 { return tag >> claimRoleShift & claimRoleMask }

// record stores the intent to claim n positions from pos with publish64
// (a release store: the inline MOV on amd64, else sequentially
// consistent). It cannot pass the compare-and-swap that follows it (a
// locked instruction on amd64; on other architectures the store is
// sequentially consistent).
func (cl *mpmcClaim) record(pos uint64, n int) {
	publish64(&cl.intent, uint64(n)<<intentPosBits|pos&intentPosMask)
	if mpmcHook != nil {
		mpmcHook(stepIntent(cl))
	}
}

// stepIntent is the hook step of a record: producer or consumer intent.
func stepIntent(cl *mpmcClaim) mpmcStep {
	if claimRole(cl.tag.Load()) == roleProducer {
		return stepPutIntent
	}
	return stepGetIntent
}

func (cl *mpmcClaim) clear() { atomicx.StoreRelease64(&cl.intent, 0) }

// acquireClaim takes a free claim record for a handle of role. It returns
// nil, nil on a ring without claim records.
func (r *MPMC) acquireClaim(role uint64) (*mpmcClaim, error) {
	if r.nclaims == 0 {
		return nil, nil
	}
	for i := range r.nclaims {
		cl := r.claimAt(i)
		t := cl.tag.Load()
		if claimRole(t) != 0 {
			continue
		}
		gen := (t>>claimGenShift + 1) << claimGenShift
		if cl.tag.CompareAndSwap(t, gen|role<<claimRoleShift|uint64(r.owner)) {
			// A stale intent from the record's last user covers only
			// positions that are finished; clear it all the same.
			cl.clear()
			return cl, nil
		}
	}
	return nil, fmt.Errorf("%w: all %d MPMC claim slots are taken (WithClaimSlots)", ErrConfig, r.nclaims)
}

// releaseClaim frees a handle's record.
func (r *MPMC) releaseClaim(cl *mpmcClaim) {
	cl.clear()
	t := cl.tag.Load()
	cl.tag.CompareAndSwap(t, t&^(claimOwnerMask|claimRoleMask<<claimRoleShift|claimDead))
}

// intentRange decodes intent relative to index ref (the index it claimed
// on, loaded after it was recorded): first position and count.
func intentRange(in, ref uint64) (uint64, uint64) {
	n := in >> intentPosBits
	p := ref - (ref-in)&intentPosMask
	return p, n
}

// Repair finishes the claims in flight of handles whose owner is dead: it
// tombstones each position a dead producer claimed and never published
// (the message is lost: its Enqueue never returned), and frees each slot a
// dead consumer claimed and never freed, passing the message to lost (if
// not nil; msg is valid during the call only) so the caller can re-enqueue
// or release what it refers to. It then frees the dead owners' claim
// records. It returns the number of slots it repaired.
//
// Call it only for owners known to be dead (their process gone); a live
// owner's claims would be destroyed under it. Several processes may repair
// the same owner at once. Repair waits while a record that is not dead
// covers a dead claim's position (a live handle between recording and
// claiming, which lasts instructions; a live handle that won that position
// and holds it in Reserve or Peek until Commit or Release; or a dead owner
// not yet passed to Repair: pass every dead owner, in this call or
// another); it returns ctx.Err() when ctx ends first, and can be called
// again. Every call also finishes the records an earlier call marked dead
// and could not finish before its ctx ended (their messages go to this
// call's lost), so a later repair of any owner frees them. A ring without
// claim slots returns ErrConfig.
func (r *MPMC) Repair(ctx context.Context, lost func(msg []byte), owners ...uint32) (int, error) {
	if r.nclaims == 0 {
		return 0, fmt.Errorf("%w: MPMC ring without claim slots cannot be repaired (WithClaimSlots)", ErrConfig)
	}
	// Mark every record of the dead owners dead.
	for i := range r.nclaims {
		cl := r.claimAt(i)
		for {
			t := cl.tag.Load()
			if claimRole(t) == 0 || t&claimDead != 0 || !slices.Contains(owners, uint32(t&claimOwnerMask)) {
				break
			}
			if cl.tag.CompareAndSwap(t, t|claimDead) {
				break
			}
		}
	}
	repaired := 0
	var buf []byte
	for wait := time.Microsecond; ; wait = min(2*wait, time.Millisecond) {
		busy := false
		for i := range r.nclaims {
			cl := r.claimAt(i)
			t := cl.tag.Load()
			if claimRole(t) == 0 || t&claimDead == 0 {
				continue // free, or alive: every dead record is finished here, this call's owners' and any an earlier call left
			}
			in := cl.intent.Load()
			if cl.tag.Load() != t {
				continue // another repairer freed it
			}
			var n int
			var b bool
			if claimRole(t) == roleProducer {
				n, b = r.repairPut(i, in)
			} else {
				n, b, buf = r.repairGet(i, in, lost, buf)
			}
			repaired += n
			if b {
				busy = true
				continue
			}
			cl.tag.CompareAndSwap(t, t&^(claimOwnerMask|claimRoleMask<<claimRoleShift|claimDead))
		}
		if !busy {
			return repaired, nil
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return repaired, ctx.Err()
		case <-timer.C:
		}
	}
}

// coveredByLive reports whether a record other than self, of role, not
// marked dead, has an intent covering q (decoded relative to ref).
func (r *MPMC) coveredByLive(self int, role, q, ref uint64) bool {
	for j := range r.nclaims {
		if j == self {
			continue
		}
		cl := r.claimAt(j)
		t := cl.tag.Load()
		if claimRole(t) != role || t&claimDead != 0 {
			continue
		}
		in := cl.intent.Load()
		if in == 0 {
			continue
		}
		p, n := intentRange(in, ref)
		if q-p < n {
			return true
		}
	}
	return false
}

// repairPut tombstones the positions of a dead producer's intent that it
// claimed and never published. busy reports a position it could not decide
// yet.
func (r *MPMC) repairPut(self int, in uint64) (repaired int, busy bool) {
	if in == 0 {
		return 0, false
	}
	ref := r.c.tail.Load() &^ mpmcClosed
	p, n := intentRange(in, ref)
	for q := p; q-p < n && int64(ref-q) > 0; q++ {
		put := r.putTurn(q)
		if r.turn(q).Load() != put {
			continue // published (or never claimable): nothing to do
		}
		if r.coveredByLive(self, roleProducer, q, ref) {
			busy = true
			continue
		}
		if r.turn(q).CompareAndSwap(put, put+2) {
			repaired++
			r.c.notEmpty.Notify()
		}
	}
	return repaired, busy
}

// repairGet frees the slots of a dead consumer's intent that it claimed and
// never freed, handing their messages to lost.
func (r *MPMC) repairGet(self int, in uint64, lost func([]byte), buf []byte) (repaired int, busy bool, _ []byte) {
	if in == 0 {
		return 0, false, buf
	}
	ref := r.head()
	p, n := intentRange(in, ref)
	for q := p; q-p < n && int64(ref-q) > 0; q++ {
		t := r.turn(q).Load()
		kind := r.getReady(q, t)
		if kind == 0 {
			continue
		}
		if r.coveredByLive(self, roleConsumer, q, ref) {
			busy = true
			continue
		}
		var msg []byte
		if kind == 1 {
			// Copy before the compare-and-swap: once the slot is free
			// a producer may overwrite it. A copy torn that way is
			// discarded, since the compare-and-swap then fails.
			s := r.slot(q)
			if l := int(slotLen(s).Load()); l <= r.slotSize {
				if cap(buf) < r.slotSize {
					buf = make([]byte, r.slotSize)
				}
				msg = buf[:copy(buf[:l], r.payload(s, l))]
			}
		}
		if r.turn(q).CompareAndSwap(t, r.putTurn(q)+4) {
			repaired++
			if msg != nil && lost != nil {
				lost(msg)
			}
			r.c.notFull.Notify()
		}
	}
	return repaired, busy, buf
}

// ClaimsHeld returns the number of claim records taken: by handles that
// have not detached, and by dead owners not yet repaired. Tools and tests
// use it to see that nothing was leaked.
func (r *MPMC) ClaimsHeld() int {
	n := 0
	for i := range r.nclaims {
		if claimRole(r.claimAt(i).tag.Load()) != 0 {
			n++
		}
	}
	return n
}
