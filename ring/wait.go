package ring

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/shmkit/shmkit/futex"
	"github.com/shmkit/shmkit/internal/atomicx"
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
// switch, which is a full barrier. Where the registration fails (or off
// amd64, where StoreRelease is sync/atomic's store anyway) fastPublish stays
// false and every publication is sequentially consistent.

// fastPublish is true when publications may be plain release stores; it is
// set once by registerFence, before the first handle publishes.
var fastPublish bool

// publish64 stores v into *p for the other process to see: a release store
// when fastPublish (the waiter side fences, see above), else a sequentially
// consistent store. Every store before it is visible to a reader that loads
// v with an acquire load (atomic Load).
//
// Under the race detector it is always sync/atomic's store: the detector
// models that as a release and cannot see what an assembly store orders, so
// it would report every message a ring in Go memory carries as a race.
func publish64(p *atomic.Uint64, v uint64) {
	if fastPublish && !raceEnabled {
		atomicx.StoreRelease64(p, v)
		return
	}
	p.Store(v)
}

// SleeperFence is the waiter's half of the asymmetric fence above, for a
// caller that parks on a ring's events itself (Log.NotEmpty, Log.NotFull):
// call it before every re-check of the condition made while counted as a
// sleeper (futex.Event.Sleepers() != 0 is a cheap test).
func SleeperFence() { sleeperFence() }

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
func (o *options) wait(ctx context.Context, e *futex.Event, cond func() bool) error {
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
	fenced := func() bool {
		// Only the re-check made while counted as a sleeper needs the
		// fence (see above); the others skip the system call.
		if e.Sleepers() != 0 {
			sleeperFence()
		}
		return cond()
	}
	park := futex.Waiter{Strategy: futex.Park, Recheck: w.Recheck}
	return park.Wait(ctx, e, fenced)
}
