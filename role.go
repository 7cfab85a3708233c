package shmkit

import (
	"context"
	"fmt"
)

// Role is what a participant does in a channel. Its value is its name, as
// Stats, shmctl and JSON output show it. On a work queue the subscribers
// are called consumers and the publishers producers; Stats.Count and
// Channel.WaitFor treat the two names of a role as one.
type Role string

const (
	RoleSubscriber Role = "subscriber" // receives: Channel.Subscriber
	RolePublisher  Role = "publisher"  // sends: Channel.Publisher
	RoleConsumer   Role = "consumer"   // a work queue's subscriber: Channel.Consumer
	RoleProducer   Role = "producer"   // a work queue's publisher: Channel.Producer
	RoleHandle     Role = "handle"     // a process's Channel handle (Create, Open)
)

// kind maps a role to the participant-table role it names (roleNone for a
// role that is none of them).
func (r Role) kind() int {
	switch r {
	case RoleSubscriber, RoleConsumer:
		return roleSubscriber
	case RolePublisher, RoleProducer:
		return rolePublisher
	case RoleHandle:
		return roleHandle
	}
	return roleNone
}

// roleOf names table role k in a channel of pattern p.
func roleOf(k int, p Pattern) Role {
	switch k {
	case roleSubscriber:
		if p == WorkQueue {
			return RoleConsumer
		}
		return RoleSubscriber
	case rolePublisher:
		if p == WorkQueue {
			return RoleProducer
		}
		return RolePublisher
	case roleHandle:
		return RoleHandle
	}
	return Role(fmt.Sprintf("role(%d)", k))
}

// active counts the active participants of table role k whose process
// runs (a dead one's entry stays active until a scan cleans it: a
// restarted service that joins its predecessor's channel must not count
// the dead subscriber it replaces).
func (ch *Channel) active(k int) int {
	lo, hi := slotRange(k, ch.cfg)
	n := 0
	for i := lo; i < hi; i++ {
		if psState(ch.state(i)) == psActive && ch.alive(i) {
			n++
		}
	}
	return n
}

// WaitFor waits until at least n participants of role r are active in the
// channel (this process's included): a publisher that must not publish
// before its subscribers have joined calls WaitFor(ctx, RoleSubscriber, 2)
// instead of polling Stats. It parks on a futex that every joining
// participant notifies (no CPU while it waits), re-checking once per
// liveness interval. It returns ctx.Err() when ctx ends first, ErrClosed
// when ch closes, ErrConfig for a role or count out of range.
func (ch *Channel) WaitFor(ctx context.Context, r Role, n int) error {
	k := r.kind()
	if k == roleNone {
		return fmt.Errorf("%w: role %q", ErrConfig, r)
	}
	if lo, hi := slotRange(k, ch.cfg); n < 0 || n > hi-lo {
		return fmt.Errorf("%w: waiting for %d %ss, the channel has %d slots", ErrConfig, n, r, hi-lo)
	}
	if ctx == nil {
		ctx = context.Background()
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := ch.enter(); err != nil {
		return err
	}
	defer ch.exit()
	ev := ch.joinedEv()
	cond := func() bool { return ch.active(k) >= n }
	for !cond() {
		if err := ch.wait(ctx, ev, cond, false); err != nil {
			return err
		}
	}
	return nil
}
