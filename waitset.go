package shmkit

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/shmkit/shmkit/futex"
)

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

// waitEvents are the events a subscriber's messages are announced on: its
// publishers' logs (pub/sub) or the work queue's ring.
func (s *Subscriber) waitEvents() []*futex.Event {
	if s.readers != nil {
		return s.events
	}
	return []*futex.Event{s.ch.wq.NotEmpty()}
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
	if ctx == nil {
		ctx = context.Background()
	}
	if err := ctx.Err(); err != nil {
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
	var evs []*futex.Event
	interval := w.subs[0].ch.cfg.LivenessInterval
	for _, s := range w.subs {
		evs = append(evs, s.waitEvents()...)
		interval = min(interval, s.ch.cfg.LivenessInterval)
	}
	waiter := w.subs[0].ch.waiter
	if waiter.Recheck <= 0 || waiter.Recheck > interval {
		waiter.Recheck = interval
	}
	// ctx's end reaches the parked thread through a Notify of every event
	// (as Channel.wait does for one); it counts as a call in flight on each
	// channel, so a Close waits for it before it unmaps the events.
	var ended atomic.Bool
	if ctx.Done() != nil {
		for _, s := range w.subs {
			s.ch.inflight[0].n.Add(1)
		}
		stop := context.AfterFunc(ctx, func() {
			ended.Store(true)
			for _, e := range evs {
				e.Notify()
			}
			for _, s := range w.subs {
				s.ch.inflight[0].n.Add(-1)
			}
		})
		defer func() {
			if stop() {
				for _, s := range w.subs {
					s.ch.inflight[0].n.Add(-1)
				}
			}
		}()
	}
	for {
		for _, s := range w.subs {
			if s.ready() || s.ch.closing.Load() {
				return s, nil
			}
		}
		if ended.Load() {
			return nil, ctx.Err()
		}
		expired, err := waiter.WaitAnyUntil(context.Background(), evs, func() bool {
			for _, s := range w.subs {
				if s.ready() || s.ch.closing.Load() {
					return true
				}
			}
			return ended.Load()
		}, time.Now().Add(interval))
		if err != nil {
			return nil, err
		}
		if expired {
			// A wait this long may be stuck on a dead publisher: look.
			for _, s := range w.subs {
				s.ch.scan(false)
			}
		}
	}
}
