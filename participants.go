package shmkit

import (
	"fmt"
	"os"
	"time"

	"github.com/shmkit/shmkit/futex"
	"github.com/shmkit/shmkit/internal/procfs"
)

// Participant state word (peState):
//
//	bits 63..32 pid (of the owner; of the cleaner while cleaning)
//	bits 31..16 generation (bumped by every claim)
//	bits 15..8  role
//	bits 7..0   state
//
// FREE -> CLAIMED (CAS by the joining process, pid in the same word, so a
// process that dies while joining is recognisable) -> ACTIVE -> CLEANING
// (CAS by the participant itself when it leaves, or by the first live
// participant that finds it dead; the cleaner's pid replaces the dead one
// so a cleaner that dies is itself taken over) -> FREE. Every cleaning step
// is idempotent, so a cleaner that dies half-way is simply redone.
const (
	psFree     = 0
	psClaimed  = 1
	psActive   = 2
	psCleaning = 3

	roleNone       = 0
	roleSubscriber = 1 // consumer on a work queue
	rolePublisher  = 2 // producer on a work queue
	roleHandle     = 3 // a Channel handle (one attached process handle)
)

func psWord(pid, gen, role, st int) uint64 {
	return uint64(uint32(pid))<<32 | uint64(uint16(gen))<<16 | uint64(uint8(role))<<8 | uint64(uint8(st))
}
func psPID(w uint64) int   { return int(uint32(w >> 32)) }
func psGen(w uint64) int   { return int(uint16(w >> 16)) }
func psRole(w uint64) int  { return int(uint8(w >> 8)) }
func psState(w uint64) int { return int(uint8(w)) }

var roleNames = [...]string{roleNone: "none", roleSubscriber: "subscriber", rolePublisher: "publisher", roleHandle: "handle"}
var stateNames = [...]string{psFree: "free", psClaimed: "joining", psActive: "active", psCleaning: "cleaning"}

// entry is a participant entry as read by a decoder: every field copied
// with atomic loads and checked.
type entry struct {
	Slot     int
	Role     int
	State    int
	Gen      int
	PID      int
	Start    uint64
	Joined   uint64
	Msgs     uint64
	Bytes    uint64
	Drops    uint64
	Blocked  uint64
	Active   uint64
	Missed   uint64
	PubRef   uint64
	HeldRefs int
	Relay    RelayStats
}

// decodeEntry reads and validates participant entry slot of table (the
// "parts" region) for a channel of configuration c. A state, role or slot
// that cannot be is ErrCorrupt, and so is a relay kind that is not 1 to 8
// bytes of [a-z0-9._-] followed by zero bytes.
func decodeEntry(table []byte, slot int, c Config) (entry, error) {
	if slot < 0 || slot >= c.participants() || (slot+1)*entrySize > len(table) {
		return entry{}, fmt.Errorf("%w: participant slot %d of %d", ErrCorrupt, slot, c.participants())
	}
	b := table[slot*entrySize : (slot+1)*entrySize]
	w := u64(b, peState).Load()
	e := entry{Slot: slot, Role: psRole(w), State: psState(w), Gen: psGen(w), PID: psPID(w)}
	if e.State > psCleaning {
		return e, fmt.Errorf("%w: participant %d: state %d", ErrCorrupt, slot, e.State)
	}
	if e.State != psFree && e.Role != roleFor(slot, c) {
		return e, fmt.Errorf("%w: participant %d: role %d in a %s slot", ErrCorrupt, slot, e.Role, roleNames[roleFor(slot, c)])
	}
	if e.State != psFree && e.PID <= 0 {
		return e, fmt.Errorf("%w: participant %d: pid %d", ErrCorrupt, slot, e.PID)
	}
	e.Start = u64(b, peStart).Load()
	e.Joined = u64(b, peJoined).Load()
	e.Msgs = u64(b, peMsgs).Load()
	e.Bytes = u64(b, peBytes).Load()
	e.Drops = u64(b, peDrops).Load()
	e.Blocked = u64(b, peBlocked).Load()
	e.Active = u64(b, peActive).Load()
	e.Missed = u64(b, peMissed).Load()
	e.PubRef = u64(b, pePubRef).Load()
	for h := range heldSlots {
		if u64(b, peHeld+8*h).Load() != 0 {
			e.HeldRefs++
		}
	}
	if k := u64(b, peRelayKind).Load(); k != 0 {
		kind, ok := decodeRelayKind(k)
		if !ok {
			return e, fmt.Errorf("%w: participant %d: relay kind %#016x", ErrCorrupt, slot, k)
		}
		e.Relay = RelayStats{
			Kind:       kind,
			Messages:   u64(b, peRelayMsgs).Load(),
			Bytes:      u64(b, peRelayBytes).Load(),
			Drops:      u64(b, peRelayDrops).Load(),
			Reconnects: u64(b, peRelayReconnects).Load(),
			Lag:        u64(b, peRelayLag).Load(),
		}
	}
	return e, nil
}

// roleFor is the role of participant slot i.
func roleFor(i int, c Config) int {
	switch {
	case i < c.MaxSubscribers:
		return roleSubscriber
	case i < c.MaxSubscribers+c.MaxPublishers:
		return rolePublisher
	}
	return roleHandle
}

// slotRange is the range of participant slots of role.
func slotRange(role int, c Config) (lo, hi int) {
	switch role {
	case roleSubscriber:
		return 0, c.MaxSubscribers
	case rolePublisher:
		return c.MaxSubscribers, c.MaxSubscribers + c.MaxPublishers
	}
	return c.MaxSubscribers + c.MaxPublishers, c.participants()
}

func (ch *Channel) entry(i int) []byte { return ch.parts[i*entrySize : (i+1)*entrySize] }

func (ch *Channel) state(i int) uint64 { return u64(ch.entry(i), peState).Load() }

// claim takes a free participant slot of role for this process and leaves
// it CLAIMED; the caller prepares it and then activates it.
func (ch *Channel) claim(role int) (int, uint64, error) {
	lo, hi := slotRange(role, ch.cfg)
	pid := os.Getpid()
	for pass := 0; pass < 2; pass++ {
		for i := lo; i < hi; i++ {
			st := u64(ch.entry(i), peState)
			w := st.Load()
			if psState(w) != psFree {
				continue
			}
			nw := psWord(pid, psGen(w)+1, role, psClaimed)
			if !st.CompareAndSwap(w, nw) {
				continue
			}
			e := ch.entry(i)
			u64(e, peStart).Store(myStart)
			u64(e, peJoined).Store(uint64(time.Now().UnixNano()))
			for _, off := range []int{peMsgs, peBytes, peDrops, peBlocked, peActive, peMissed, pePubRef,
				peRelayKind, peRelayMsgs, peRelayBytes, peRelayDrops, peRelayReconnects, peRelayLag} {
				u64(e, off).Store(0)
			}
			return i, nw, nil
		}
		// Every slot taken: perhaps by the dead. Look, then try once more.
		ch.scan(true)
	}
	return 0, 0, fmt.Errorf("%w: all %d %s slots taken", ErrFull, hi-lo, roleNames[role])
}

// activate moves slot i from CLAIMED (word w) to ACTIVE.
func (ch *Channel) activate(i int, w uint64) (uint64, error) {
	nw := w&^0xff | psActive
	if !u64(ch.entry(i), peState).CompareAndSwap(w, nw) {
		return 0, fmt.Errorf("%w: participant %d changed while joining (%#x)", ErrCorrupt, i, ch.state(i))
	}
	ch.joinedEv().Notify()
	return nw, nil
}

// joinedEv is the event WaitFor parks on (8-aligned in the 64-aligned
// header region).
func (ch *Channel) joinedEv() *futex.Event {
	ev, _ := futex.EventAt(ch.hdr[hdrJoinedEv:])
	return ev
}

// myStart is this process's start time (0 where unknown).
var myStart = func() uint64 {
	s, err := procfs.StartTime(os.Getpid())
	if err != nil {
		return 0
	}
	return s
}()

// livePublisher reports whether a publisher entry is held by a live
// process (joining, active, or being cleaned by a live cleaner).
func (ch *Channel) livePublisher() bool {
	lo, hi := slotRange(rolePublisher, ch.cfg)
	for i := lo; i < hi; i++ {
		if psState(ch.state(i)) != psFree && ch.alive(i) {
			return true
		}
	}
	return false
}

func (ch *Channel) publishersPresent() bool {
	lo, hi := slotRange(rolePublisher, ch.cfg)
	for i := lo; i < hi; i++ {
		if psState(ch.state(i)) != psFree {
			return true
		}
	}
	return false
}
