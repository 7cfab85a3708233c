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
		ch.clean(i, psRole(w), w)
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
	if r := ch.wq; r != nil {
		r.NotEmpty().Notify()
		r.NotFull().Notify()
	}
	for _, l := range ch.logs {
		l.NotEmpty().Notify()
		l.NotFull().Notify()
	}
	ch.joinedEv().Notify()
}

// clean releases everything participant i (role) held. The caller owns its
// state word (CLEANING). Every step is idempotent.
func (ch *Channel) clean(i, role int, w uint64) {
	switch {
	case role != roleSubscriber && role != rolePublisher:
		// A Channel handle holds nothing in the data path.
	case ch.cfg.Pattern != PubSub:
		// The queue: a dead participant's claims are finished (what it
		// reserved is skipped, what it held is lost), its claim records
		// freed.
		ch.cleanQueue(i, w)
	case role == roleSubscriber:
		// A dead subscriber's lines are freed (what it held goes with
		// them).
		ch.cleanSubscriberLogs(i, w)
	default:
		// A dead publisher's claim is closed off; its log stays
		// readable.
		ch.cleanPublisherLog(i)
	}
	if role == rolePublisher && ch.tap != nil {
		ch.tap.abandon(ch.cfg.pubIndex(i))
	}
	ch.wakeAll()
}
