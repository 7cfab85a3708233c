package shmkit

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/shmkit/shmkit/futex"
)

// ctxErr is ctx.Err() for a possibly nil ctx: every call that takes a
// context returns it at once when the context is already done on entry
// (a consumer that cancels on SIGTERM stops, queued messages or not).
func ctxErr(ctx context.Context) error {
	if ctx == nil {
		return nil
	}
	return ctx.Err()
}

// fencer is a ring whose event a wait parks on. ring.Log and ring.MPMC
// publish with plain release stores, so a waiter counted as a sleeper
// fences before the re-check of its condition that decides whether it
// sleeps (FenceRecheck, as futex.Waiter.Fence; false: treat the condition
// as true) and bounds each sleep while the ring's fence mode is pending
// (ParkBound): ring/wait.go, "the asymmetric fence".
type fencer interface {
	ParkBound() time.Duration
	FenceRecheck(e *futex.Event) bool
}

// waitOn is the package's one wait: every blocking call of a Publisher,
// Subscriber, Producer or Consumer, Channel.WaitFor and WaitSet.Wait park
// here. It parks on evs until cond holds, ctx ends, a channel of chs
// closes, or one liveness interval (the shortest of chs) passes; then it
// scans each channel for dead participants, since a wait that long may be
// stuck on one, and returns nil so the caller re-checks its state. It
// returns ctx.Err() when ctx ended and ErrClosed when a channel of chs is
// closing. evs[i] is announced by rings[i] and follows its fence rules
// (fencer); rings may be shorter than evs, or hold nil, for events that
// need none (the header's joined event).
//
// Neither the interval nor ctx reaches the futex waiter as a context: the
// waiter's own context.AfterFunc may run after the wait returned, and after
// Close unmapped the event it touches. Here the interval is part of the
// condition (a parked waiter re-checks every Waiter.Recheck), and ctx's end
// is signalled by an AfterFunc of ours that Close waits for (it counts as a
// call in flight on each channel until it has run or been stopped).
//
// spin false parks at once: a caller that already waited a whole interval
// does not spin again.
func waitOn(ctx context.Context, chs []*Channel, evs []*futex.Event, rings []fencer, cond func() bool, spin bool) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := ctx.Err(); err != nil {
		return err // checked on every pass, before the condition
	}
	if cond() {
		return nil
	}
	w := chs[0].waiter
	if !spin {
		w.Strategy = futex.Park
	}
	interval, guard := chs[0].cfg.LivenessInterval, false
	for _, ch := range chs {
		interval = min(interval, ch.cfg.LivenessInterval)
		guard = guard || ch.guard
	}
	if w.Recheck <= 0 || w.Recheck > interval {
		w.Recheck = interval
	}
	for _, r := range rings {
		if r == nil {
			continue
		}
		if b := r.ParkBound(); b > 0 && w.Recheck > b {
			w.Recheck = b
		}
	}
	var ended atomic.Bool
	if ctx.Done() != nil {
		for _, ch := range chs {
			ch.inflight[0].n.Add(1)
		}
		stop := context.AfterFunc(ctx, func() {
			defer func() {
				for _, ch := range chs {
					ch.inflight[0].n.Add(-1)
				}
			}()
			ended.Store(true)
			if guard {
				// The events lie in the mapping, which a hostile peer may
				// truncate: a fault here is not this goroutine's caller's
				// to catch, so it is caught here (the waiter re-checks
				// within its re-check interval anyway).
				var err error
				defer catchFault(&err, guardFaults())
			}
			for _, ev := range evs {
				ev.Notify()
			}
		})
		defer func() {
			if stop() {
				for _, ch := range chs {
					ch.inflight[0].n.Add(-1)
				}
			}
		}()
	}
	closing := func() bool {
		for _, ch := range chs {
			if ch.closing.Load() {
				return true
			}
		}
		return false
	}
	// The waiter reads the clock for the interval itself: every 64 polls
	// while it spins, at every wake-up once parked. (A clock read inside
	// cond, every 64th call, came once per 32 re-checks when parked: the
	// dead were noticed 32 intervals late.)
	full := func() bool { return cond() || closing() || ended.Load() }
	// The rings' fences come only in the re-check the waiter makes once
	// counted as a sleeper (futex.Waiter.Fence). In full they ran at every
	// poll of a spinning waiter whenever another waiter slept on the same
	// event: a membarrier system call per poll for the subscribers of a
	// fan-out, three quarters of their CPU time.
	if len(rings) > 0 {
		w.Fence = func() bool {
			for i, r := range rings {
				if r != nil && !r.FenceRecheck(evs[i]) {
					return false
				}
			}
			return true
		}
	}
	until := time.Now().Add(interval)
	var expired bool
	var err error
	if len(evs) == 1 {
		expired, err = w.WaitUntil(context.Background(), evs[0], full, until)
	} else {
		expired, err = w.WaitAnyUntil(context.Background(), evs, full, until)
	}
	switch {
	case err != nil:
		return err
	case ended.Load():
		return ctx.Err()
	case closing():
		return ErrClosed
	case expired:
		for _, ch := range chs {
			ch.scan(false)
		}
	}
	return nil
}

// wait is waitOn for one channel and one event that needs no fence.
func (ch *Channel) wait(ctx context.Context, ev *futex.Event, cond func() bool, spin bool) error {
	return waitOn(ctx, []*Channel{ch}, []*futex.Event{ev}, nil, cond, spin)
}

// waitRing is waitOn for one channel on events of its rings (a
// publisher's log, the logs a subscriber reads, the work queue's ring).
func (ch *Channel) waitRing(ctx context.Context, rings []fencer, evs []*futex.Event, cond func() bool, spin bool) error {
	return waitOn(ctx, []*Channel{ch}, evs, rings, cond, spin)
}

// WaitSet lets one goroutine wait on several subscriptions (of one or many
// channels) at once. Wait parks until one of them has a message (or has
// lost its publishers) and returns it; the caller then receives from it
// with TryReceive.
//
// Parked, one thread sleeps on every subscription's futex word at once
// (futex.Waiter.WaitAny: the kernel's futex_waitv, Linux 5.16, for up to
// futex.MaxWaitAny subscriptions; where the kernel lacks it, one goroutine
// parks on each subscription's word). An idle WaitSet uses no CPU.
type WaitSet struct {
	subs []*Subscriber
}

// NewWaitSet returns a WaitSet over subs.
func NewWaitSet(subs ...*Subscriber) *WaitSet {
	return &WaitSet{subs: append([]*Subscriber(nil), subs...)}
}

// Add adds a subscription.
func (w *WaitSet) Add(s *Subscriber) { w.subs = append(w.subs, s) }

func (s *Subscriber) ready() bool {
	if s.readers != nil {
		return s.logReady() || s.peerGone()
	}
	return s.ch.wq.CanGet() || s.peerGone()
}

// waitEvents are the events a subscriber's messages are announced on and
// the rings that announce them: its publishers' logs (pub/sub) or the
// work queue's ring.
func (s *Subscriber) waitEvents() ([]*futex.Event, []fencer) {
	if s.readers != nil {
		return s.events, s.fencers
	}
	return []*futex.Event{s.ch.wq.NotEmpty()}, []fencer{s.ch.wq}
}

// Wait returns a subscription that has a message to receive, or whose
// every publisher is gone (its TryReceive then says ErrPeerGone), or whose
// channel is closing (ErrClosed). It returns ctx.Err() when ctx ends
// first. A subscription that is ready may have been emptied by another
// goroutine before the caller's TryReceive (ErrWouldBlock): wait again.
func (w *WaitSet) Wait(ctx context.Context) (*Subscriber, error) {
	if len(w.subs) == 0 {
		return nil, fmt.Errorf("%w: empty wait set", ErrConfig)
	}
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	for i, s := range w.subs {
		if err := s.ch.enter(); err != nil {
			for _, t := range w.subs[:i] {
				t.ch.exit()
			}
			return nil, err
		}
	}
	defer func() {
		for _, s := range w.subs {
			s.ch.exit()
		}
	}()
	var chs []*Channel
	var evs []*futex.Event
	var rings []fencer
	for _, s := range w.subs {
		chs = append(chs, s.ch)
		e, r := s.waitEvents()
		evs, rings = append(evs, e...), append(rings, r...)
	}
	ready := func() *Subscriber {
		for _, s := range w.subs {
			if s.ready() || s.ch.closing.Load() {
				return s
			}
		}
		return nil
	}
	for {
		if s := ready(); s != nil {
			return s, nil
		}
		err := waitOn(ctx, chs, evs, rings, func() bool { return ready() != nil }, true)
		if err != nil && !errors.Is(err, ErrClosed) {
			return nil, err
		}
	}
}
