package shmkit

import (
	"fmt"
	"time"

	"github.com/shmkit/shmkit/allocator"
)

// ParticipantStats are one participant's counters, read from the channel's
// shared memory. Each is written only by the participant itself, except
// Missed, which publishers add to when they drop a message for it.
type ParticipantStats struct {
	Slot       int
	Role       Role   // RoleSubscriber, RolePublisher, RoleHandle; on a work queue RoleConsumer, RoleProducer
	State      string // "joining", "active" or "cleaning"
	PID        int
	Start      uint64        // the process's start time in clock ticks after boot (0 where unknown)
	Messages   uint64        // published, or received
	Bytes      uint64        // payload bytes published or received
	Drops      uint64        // publisher: deliveries it dropped (DropNewest, DropOldest, ended contexts)
	Missed     uint64        // subscriber: its messages that publishers dropped
	Blocked    time.Duration // time spent waiting in Publish or Receive
	LastActive time.Time     // last Publish or Receive
	Held       int           // subscriber: samples received and not yet released
	// Relay are the far side's figures when the participant is a relay
	// (a bridge to another transport; Kind "" when it is none).
	Relay RelayStats
}

// Stats are a channel's counters: the pool and every participant slot in
// use.
type Stats struct {
	Pool         PoolStats
	Participants []ParticipantStats
	// Classes (Inspect only) are the pool's figures per size class.
	Classes []allocator.ClassStats
	// Rings (Inspect only): for a PubSub channel one row per subscriber
	// slot (Len: the messages it has not released yet, in all logs); for a
	// WorkQueue one row, the queue.
	Rings []RingStats
	// Taps are the taps attached to the channel (OpenTap).
	Taps []TapInfo
}

// RingStats are one row of Stats.Rings as Inspect read it.
type RingStats struct {
	Ring   int
	Depth  int  // slots
	Len    int  // messages waiting (occupancy)
	Closed bool // its subscriber left or died
}

// Stats reads the channel's counters. It only loads shared words; while
// others run, the figures are not one snapshot. A participant entry that
// cannot be is reported as ErrCorrupt (with the rest of the figures).
func (ch *Channel) Stats() (Stats, error) {
	if err := ch.enter(); err != nil {
		return Stats{}, err
	}
	defer ch.exit()
	st := Stats{Pool: ch.pool.stats()}
	var firstErr error
	for i := range ch.cfg.participants() {
		e, err := decodeEntry(ch.parts, i, ch.cfg)
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("participant %d: %w", i, err)
			}
			continue
		}
		if e.State == psFree {
			continue
		}
		st.Participants = append(st.Participants, participantStats(e, ch.cfg))
	}
	if ch.tap != nil {
		taps, err := readTaps(ch.tap.mem)
		st.Taps = taps
		if firstErr == nil && err != nil {
			firstErr = err
		}
	}
	return st, firstErr
}

// Count returns how many participants of role r are active. A role and its
// work-queue name count as one: Count(RoleSubscriber) counts a work queue's
// consumers, Count(RoleProducer) a pub/sub channel's publishers.
func (s Stats) Count(r Role) int {
	n := 0
	for _, p := range s.Participants {
		if p.Role.kind() == r.kind() && p.State == "active" {
			n++
		}
	}
	return n
}

func participantStats(e entry, c Config) ParticipantStats {
	role := roleOf(e.Role, c.Pattern)
	ps := ParticipantStats{
		Slot: e.Slot, Role: role, State: stateNames[e.State], PID: e.PID, Start: e.Start,
		Messages: e.Msgs, Bytes: e.Bytes, Drops: e.Drops, Missed: e.Missed,
		Blocked: time.Duration(min(e.Blocked, 1<<62)), Held: e.HeldRefs, Relay: e.Relay,
	}
	if e.Active != 0 {
		ps.LastActive = time.Unix(0, int64(min(e.Active, 1<<62)))
	}
	return ps
}
