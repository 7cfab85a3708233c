package ring

import (
	"context"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/shmkit/shmkit/futex"
)

// # Publishing and parking: the asymmetric fence
//
// A side publishes (a slot's seq word, an index) and then calls Notify on
// the other side's Event, which loads that Event's sleeper count and makes
// the wake system call only when someone sleeps. A waiter that parks does
// the mirror image: it increments the sleeper count, arms the futex word,
// re-checks its condition (loads the published word) and sleeps. This is
// Dekker's pattern: each side stores one word and then loads the other's,
// and it loses a wake-up unless neither load may be performed before the
// same side's store. sync/atomic's sequentially consistent store (XCHG on
// amd64) gives that on every call, at ~14 ns per publication.
//
// On amd64 the hot paths publish with a plain MOV instead
// (atomicx.StoreRelease64), which x86-TSO lets a later load overtake: the
// publisher's load of the sleeper count can be satisfied while its store
// still sits in the store buffer. The cost of ordering is moved to the
// waiter, which is about to sleep anyway: after it has counted itself as a
// sleeper and armed the futex word, and before every re-check of its
// condition, it calls membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)
// (sleeperFence). That makes every running thread of every process
// registered for it (every process that holds a ring handle, registerFence)
// execute a full barrier at some point P during the call. For the
// publisher's program order "store W; load S":
//   - P before the store: the waiter's increment of S precedes P, and the
//     publisher's load of S follows P, so it sees the sleeper and wakes it.
//   - P between the store and the load: the same, and the waiter's re-check
//     after the call sees W.
//   - P after the load: the store precedes P, so the waiter's re-check after
//     the call sees W and it does not sleep.
// A publisher thread that is not running has passed through a context
// switch, which is a full barrier. Off amd64 StoreRelease is sync/atomic's
// store anyway, and a process that cannot register for membarrier
// (fastPublish false) publishes with sequentially consistent stores.
//
// # Fence mode: one per ring, agreed through its header
//
// The argument above needs every waiter of a ring whose publishers use
// plain stores to make the fence, and a process may be unable to: a
// seccomp profile that denies membarrier, an old kernel. Each process
// deciding alone lost wake-ups (docs/security.md, defect 6): a process
// that cannot fence parked without the fence while its amd64 peers
// published to it with plain stores. So the mode is a property of the
// ring, in its header word fence (docs/ring.md), that only moves forward:
//
//   - fenceFast (0): publishers may use plain stores; every waiter calls
//     sleeperFence before its re-check as a sleeper.
//   - fencePending (1): a participant that cannot fence has attached (or
//     its fence failed). Every publisher that sees it puts a full barrier
//     between its store and its loads of the sleeper count and the futex
//     word (mayWake, wake); a publication made just before, with a plain
//     store whose publisher read fenceFast, may still sit in a store
//     buffer, so until the hand-over below is done the waiters that cannot
//     fence sleep at most handOverRecheck at a time.
//   - fenceStrict (2): the hand-over is done: every publisher puts a full
//     barrier between its store and those loads, so a waiter's own locked
//     increment of the sleeper count (and arming of the futex word) is all
//     Dekker's pattern needs, and no waiter needs membarrier. The barrier
//     comes whatever the sleeper count: a waiter that has counted itself
//     but not armed the futex word yet makes Notify load that word, and
//     that load must not pass the store either (a test caught exactly
//     this, once in 277 000 round trips).
//
// The hand-over: any participant that can fence and sees fencePending
// (a fast publisher after its store, a waiter on its way into a park)
// calls sleeperFence and then moves the word to fenceStrict. Every thread
// of every registered process passes a full barrier during that call: a
// plain store it made before is visible from then on, and its later loads
// of the word see fencePending or fenceStrict, so its later publications
// barrier. Whoever then loads fenceStrict and re-checks sees every
// publication made in fast mode. A publisher loads the word after its
// store (mayWake), not before, so there is no window between its check and
// its store. Where nobody can fence, the word stays pending and the waiters'
// bounded re-check is what covers the publications made in fast mode
// (which is why the re-check is never disabled while a ring is pending).

// Fence modes (the header's fence word).
const (
	fenceFast    = 0
	fencePending = 1
	fenceStrict  = 2
)

// handOverRecheck bounds one futex sleep while a ring's fence mode is
// pending and this process cannot complete the hand-over itself.
const handOverRecheck = time.Millisecond

// fastPublish is true when publications may be plain release stores: the
// process is registered for membarrier's global expedited barrier on
// amd64. It is set once by registerFence, before the first handle
// publishes.
var fastPublish bool

// canFence is true while this process can make the sleeper fence (a
// membarrier call that failed clears it).
var canFence atomic.Bool

// agreeFence records in the ring's header that this process cannot fence,
// when it cannot: called by every handle when it creates or attaches the
// ring, before its first wait.
func (c *control) agreeFence() {
	registerFence()
	if !canFence.Load() {
		c.hdr.fence.CompareAndSwap(fenceFast, fencePending)
	}
}

// handOver completes a pending switch to fenceStrict (see above); it does
// nothing when this process cannot fence.
func (c *control) handOver() {
	if !canFence.Load() || !sleeperFence() {
		return
	}
	if f := c.hdr.fence.Load(); f != fenceStrict {
		c.hdr.fence.CompareAndSwap(f, fenceStrict) // any other value (a corrupt word) becomes strict too
	}
}

// publish64 stores v into *p for the other process to see: a release store
// when fastPublish (the waiters fence, see above), else a sequentially
// consistent store. Every store before it is visible to a reader that loads
// v with an acquire load (atomic Load). The publisher then decides whether
// to wake the other side with mayWake and wake, which order the store before its
// load of the sleeper count when the ring is not in fast mode.
//
// Under the race detector it is always sync/atomic's store: the detector
// models that as a release and cannot see what an assembly store orders, so
// it would report every message a ring in Go memory carries as a race.
//
// On amd64 the release store is a plain MOV written inline (no call into
// atomicx's assembly: about 17 instructions with its ABI wrapper). The
// compiler keeps it in place: Go's SSA threads every store through one
// memory chain, so no earlier store moves after it, and the scheduler
// places every load of the memory state it replaces before it; calls (a
// payload's memmove) are barriers. The hardware keeps x86-TSO's order
// (internal/atomicx).
func publish64(p *atomic.Uint64, v uint64) {
	if fastPublish && !raceEnabled {
		*(*uint64)(unsafe.Pointer(p)) = v
		return
	}
	p.Store(v)
}

// mayWake reports whether a publisher that has just published (with
// publish64 or a sequentially consistent store) must call wake(e): when e
// has sleepers, or when the ring is not in fast mode (a count of zero must
// then be loaded again after a full barrier). One more load than the plain
// sleeper check, of a header line nobody writes while the ring runs. The
// fence word is loaded after the store, so a publisher that finds fast
// mode made its store before any hand-over's membarrier (see above).
func (c *control) mayWake(e *futex.Event) bool {
	return e.Sleepers()|c.hdr.fence.Load() != 0
}

// wake wakes e's sleepers after a publication. Unless the ring is in fast
// mode, the sleeper count it decides on (and the futex word Notify loads)
// is loaded after a full barrier that follows the caller's store, and a
// pending hand-over is completed.
func (c *control) wake(e *futex.Event) {
	if c.mustNotify(e) {
		e.Notify()
	}
}

// mustNotify is wake's decision: whether e has sleepers, loaded as wake
// says. Outside fast mode the barrier comes first whatever the count: a
// waiter that has counted itself but not yet armed the futex word makes
// Notify load that word too, and that load must not pass the store either.
func (c *control) mustNotify(e *futex.Event) bool {
	if c.hdr.fence.Load() != fenceFast {
		var b atomic.Uint32
		b.Add(1) // LOCK XADD: a full barrier between the caller's store and the loads below and in Notify
		if c.hdr.fence.Load() != fenceStrict {
			c.handOver()
		}
	}
	return e.Sleepers() != 0
}

// spinPollsPerCheck is how many polls run between reads of the clock and
// of ctx while spinning.
const spinPollsPerCheck = 64

// wait returns nil once cond reports true, or ctx.Err() once ctx is done,
// waiting as o's Waiter says (spin, then park; a park re-checks at least
// every Waiter.Recheck, so a wake-up lost to a killed notifier costs at most
// that). Whoever makes cond true calls e.Notify. cond must read shared
// state with atomic loads; it may be called many times. On the way into
// the futex, with the caller counted as a sleeper, every re-check of cond
// is preceded by sleeperFence.
func (o *options) wait(ctx context.Context, c *control, e *futex.Event, cond func() bool) error {
	w := o.waiter
	// A burst of polls before anything else: on a busy ring the other
	// side answers within a few hundred nanoseconds, less than the clock
	// read and closure set-up that the strategies below start with.
	for range spinPollsPerCheck {
		if cond() {
			return nil
		}
	}
	switch w.Strategy {
	case futex.BusySpin, futex.Yield:
		// Never parks, so it needs no fence.
		return w.Wait(ctx, e, cond)
	case futex.SpinThenPark:
		spin := w.Spin
		if spin <= 0 {
			spin = futex.DefaultSpin
		}
		start := time.Now()
		for i := 1; ; i++ {
			if cond() {
				return nil
			}
			if i%spinPollsPerCheck == 0 {
				if time.Since(start) >= spin {
					break
				}
				if err := ctx.Err(); err != nil {
					return err
				}
			}
		}
	}
	recheck := w.Recheck
	if b := c.parkBound(); b > 0 && (recheck <= 0 || recheck > b) {
		// Pending and this process cannot complete the hand-over: a
		// publication made in fast mode may not be seen by the re-check,
		// so no sleep may last long, whatever the Waiter says.
		recheck = b
	}
	// Only the re-check made while counted as a sleeper needs the fence
	// (see above): the Waiter calls it there, and only when cond is false.
	// A fence that failed (canFence is now false) has raised the ring, and
	// the wait ends as a spurious wake-up; the caller's next is bounded.
	park := futex.Waiter{Strategy: futex.Park, Recheck: recheck, Fence: func() bool { return c.fenceRecheck(e) }}
	return park.Wait(ctx, e, cond)
}

// parkBound is Log.ParkBound and MPMC.ParkBound: it completes a pending
// fence hand-over if this process can, and returns handOverRecheck while
// the ring's fence mode is still pending (0: no bound of its own).
func (c *control) parkBound() time.Duration {
	if f := c.hdr.fence.Load(); f != fenceFast && f != fenceStrict {
		c.handOver()
	}
	if f := c.hdr.fence.Load(); f != fenceFast && f != fenceStrict {
		return handOverRecheck
	}
	return 0
}

// fenceRecheck is Log.FenceRecheck and MPMC.FenceRecheck: the waiter's half
// of the asymmetric fence before a re-check made while counted as a
// sleeper on e (futex.Waiter.Fence). False: the fence failed and the ring
// is raised to pending. Called by a waiter that is not counted, it fences
// whenever another waiter sleeps on e: a membarrier system call per call.
func (c *control) fenceRecheck(e *futex.Event) bool {
	if e.Sleepers() != 0 && c.hdr.fence.Load() == fenceFast && !sleeperFence() {
		c.hdr.fence.CompareAndSwap(fenceFast, fencePending)
		return false
	}
	return true
}
