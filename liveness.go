package shmkit

import (
	"os"
	"runtime"
	"time"

	"github.com/shmkit/shmkit/internal/procfs"
)

// Liveness. Every participant records its pid and process start time
// (/proc/PID/stat field 22) in its entry. A participant that calls into
// the channel, or waits in it, scans the table at most once per
// LivenessInterval (and at once when a wait looks stuck): an entry whose
// process is gone (or is a zombie, or whose pid now names another process)
// is taken by CAS of its state word to CLEANING with the scanner's pid, and
// cleaned. Whoever wins the CAS cleans; the others move on.

// hook is called at named steps of loan, publish, receive and release. Only
// tests set it (export_test.go); it is nil in programs.
var hook func(step string)

func at(step string) {
	if hook != nil {
		hook(step)
	}
}

// processAlive reports whether the process of an entry runs. start 0 (a
// participant caught between its claim and the store of its start time,
// or a cleaner) is judged on the pid alone: it exists and is no zombie.
// Off Linux there is no /proc: every participant counts as alive, and
// nothing is cleaned up after a crash.
func processAlive(pid int, start uint64) bool {
	if pid == os.Getpid() || runtime.GOOS != "linux" {
		return true
	}
	got, state, err := procfs.Stat(pid)
	if err != nil || state == 'Z' || state == 'X' {
		return false
	}
	return start == 0 || got == start
}

// alive reports whether participant slot i is held by a live process.
func (ch *Channel) alive(i int) bool {
	if i < 0 || i >= ch.cfg.participants() {
		return false
	}
	w := ch.state(i)
	switch psState(w) {
	case psFree:
		return false
	case psCleaning:
		return true // its cleaner finishes what it left
	}
	start := u64(ch.entry(i), peStart).Load()
	if psState(w) == psClaimed {
		start = 0
	}
	return processAlive(psPID(w), start)
}

// activityEvery is how many messages pass between updates of a
// participant's last-activity time and its liveness checks on the hot
// path (a clock read costs as much as the rest of a publish). Waits check
// on every liveness interval regardless.
const activityEvery = 64

// maybeScan scans when the last scan is older than the liveness interval.
func (ch *Channel) maybeScan() {
	if time.Now().UnixNano()-ch.lastScan.Load() >= int64(ch.cfg.LivenessInterval) {
		ch.scan(false)
	}
}

// scan checks every participant and cleans the dead ones. It returns how
// many it cleaned. force ignores the rate limit.
func (ch *Channel) scan(force bool) int {
	now := time.Now().UnixNano()
	if !force && now-ch.lastScan.Load() < int64(ch.cfg.LivenessInterval) {
		return 0
	}
	if !ch.scanMu.TryLock() {
		return 0
	}
	defer ch.scanMu.Unlock()
	ch.lastScan.Store(now)
	n := 0
	me := os.Getpid()
	for i := range ch.cfg.participants() {
		st := u64(ch.entry(i), peState)
		w := st.Load()
		var dead bool
		switch psState(w) {
		case psClaimed, psActive:
			if psPID(w) == me {
				continue
			}
			if psState(w) == psClaimed {
				dead = !processAlive(psPID(w), 0)
			} else {
				dead = !ch.pids.alive(i, w, psPID(w), u64(ch.entry(i), peStart).Load())
			}
		case psCleaning:
			dead = psPID(w) != me && !processAlive(psPID(w), 0)
		}
		if !dead {
			continue
		}
		nw := psWord(me, psGen(w), psRole(w), psCleaning)
		if !st.CompareAndSwap(w, nw) {
			continue
		}
		ch.clean(i, psRole(w))
		st.CompareAndSwap(nw, nw&^0xff|psFree)
		n++
	}
	if n > 0 {
		ch.wakeAll()
		_ = ch.maybeRemove()
	}
	if ch.tap != nil {
		n += ch.tap.scanTaps()
	}
	return n
}

// wakeAll wakes every waiter of every ring (a participant left).
func (ch *Channel) wakeAll() {
	for _, r := range ch.rings {
		r.notEmpty.Notify()
		r.notFull.Notify()
	}
	ch.joinedEv().Notify()
}

// bit returns the delivery-mask bit of ring k.
func bit(k int) uint64 { return 1 << uint(k) }

// clearBit drops holder bit b of the message r names and frees the chunk
// when no holder is left. It is idempotent: a second clear of the same bit
// changes nothing, and a mask found empty is freed again (a holder that
// cleared the last bit and died before freeing leaves it so; the allocator
// rejects the second free of one allocation by its generation). The mask
// word carries the generation tag of r, so a clear can never land on a
// later message in the same chunk.
func (ch *Channel) clearBit(p *pool, r ref, b uint64) {
	chunk, err := p.chunk(r)
	if err != nil {
		return // freed already (stale generation) or forged: nothing to drop
	}
	clearBitIn(p, r, chunk, b)
}

// clearBitIn is clearBit for a caller that has the chunk of r already,
// validated when it got r (a publisher's own loan, a received sample): it
// skips the allocator's look-up. The chunk's memory stays in the pool
// whatever happened to r since, and the tag check below makes a clear of a
// chunk freed and reused meanwhile change nothing.
func clearBitIn(p *pool, r ref, chunk []byte, b uint64) {
	mask := u64(chunk, mhMask)
	tag := maskTag(r)
	for {
		m := mask.Load()
		if m>>32 != tag {
			return
		}
		if m&b == 0 {
			if uint32(m) == 0 {
				_ = p.free(r)
			}
			return
		}
		nm := m &^ b
		if mask.CompareAndSwap(m, nm) {
			if uint32(nm) == 0 {
				_ = p.free(r)
			}
			return
		}
	}
}

// maskTag is the generation tag of a message's mask word: the ref's low
// 30 bits (the allocator's generation) with bit 30 set, so it is never 0.
func maskTag(r ref) uint64 { return uint64(uint32(r)&(1<<30-1) | 1<<30) }

// clean releases everything participant i (role) held. The caller owns its
// state word (CLEANING). Every step is idempotent.
func (ch *Channel) clean(i, role int) {
	p := ch.pool.owner(ch.self)
	e := ch.entry(i)
	switch role {
	case roleSubscriber:
		k, r := 0, ch.rings[0]
		if ch.cfg.Pattern == PubSub {
			k, r = i, ch.rings[i]
			r.close()
		}
		b := bit(k)
		// Held samples first, then the ring: a receiver stores the ref in
		// its held table before it frees the ring slot.
		for h := range heldSlots {
			w := u64(e, peHeld+8*h)
			if v := w.Load(); v != 0 {
				ch.clearBit(p, v, b)
				w.Store(0)
			}
		}
		drop := func(v ref) { ch.clearBit(p, v, b) }
		if ch.cfg.Pattern == PubSub {
			// Slots the dead subscriber itself left READING are repaired.
			_ = r.drain(ch.self, func(id int) bool { return id != i && ch.alive(id) }, drop)
		} else {
			r.repair(i, drop)
		}
	case rolePublisher:
		for k, r := range ch.rings {
			kb := bit(k)
			r.repair(i, func(v ref) { ch.clearBit(p, v, kb) })
		}
		if v := u64(e, pePubRef).Load(); v != 0 {
			ch.finishPublish(p, i, v)
			u64(e, pePubRef).Store(0)
		}
		if ch.tap != nil {
			ch.tap.abandon(i)
		}
	}
	_, _ = p.reclaim(i)
	ch.wakeAll()
}

// finishPublish completes the publish of message v that dead publisher i
// left half-done: every subscriber whose bit is set but who neither has it
// in its ring nor holds it loses the bit, and the publisher's own bit goes.
func (ch *Channel) finishPublish(p *pool, i int, v ref) {
	if !p.live(v) || p.ownedBy(v, i) {
		return // not yet handed over: reclaim frees it
	}
	chunk, err := p.chunk(v)
	if err != nil || u64(chunk, mhRef).Load() != v {
		return
	}
	m := u64(chunk, mhMask).Load()
	if m>>32 != maskTag(v) || m&pubBit == 0 {
		return // finished: the publisher's bit protects the chunk until then
	}
	for k := range ch.rings {
		b := bit(k)
		if m&b == 0 || ch.rings[k].holds(v) {
			continue
		}
		if ch.heldBy(k, v) {
			continue
		}
		ch.clearBit(p, v, b)
	}
	ch.clearBit(p, v, pubBit)
}

// heldBy reports whether the subscriber of ring k (work queue: any
// consumer) holds v.
func (ch *Channel) heldBy(k int, v ref) bool {
	lo, hi := k, k+1
	if ch.cfg.Pattern == WorkQueue {
		lo, hi = slotRange(roleSubscriber, ch.cfg)
	}
	for s := lo; s < hi; s++ {
		e := ch.entry(s)
		for h := range heldSlots {
			if u64(e, peHeld+8*h).Load() == v {
				return true
			}
		}
	}
	return false
}

// holds reports whether a slot of the ring holds v (written or being read).
func (r *dring) holds(v ref) bool {
	for i := uint64(0); i < r.depth; i++ {
		w := u64(r.slots, int(i)*slotSize+slotSeq).Load()
		if st := seqState(w); (st == stFull || st == stReading) && u64(r.slots, int(i)*slotSize+slotRef).Load() == v {
			return true
		}
	}
	return false
}
