package shmkit

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// WaitSet lets one goroutine wait on several subscriptions (of one or many
// channels) at once. Wait parks until one of them has a message (or has
// lost its publishers) and returns it; the caller then receives from it
// with TryReceive.
//
// The kernel's futex_waitv (Linux 5.16) could park one thread on every
// subscription's futex word at once; package futex does not expose the
// arming step that needs, so this WaitSet parks one goroutine per
// subscription on that subscription's futex (each idle: no CPU) and
// returns the first that wakes.
type WaitSet struct {
	subs []*Subscriber
}

// NewWaitSet returns a WaitSet over subs.
func NewWaitSet(subs ...*Subscriber) *WaitSet {
	return &WaitSet{subs: append([]*Subscriber(nil), subs...)}
}

// Add adds a subscription.
func (w *WaitSet) Add(s *Subscriber) { w.subs = append(w.subs, s) }

func (s *Subscriber) ready() bool { return s.ring.canTake() || s.peerGone() }

// Wait returns a subscription that has a message to receive, or whose
// every publisher is gone (its TryReceive then says ErrPeerGone). It
// returns ctx.Err() when ctx ends first. A subscription that is ready may
// have been emptied by another goroutine before the caller's TryReceive
// (ErrWouldBlock): wait again.
func (w *WaitSet) Wait(ctx context.Context) (*Subscriber, error) {
	if len(w.subs) == 0 {
		return nil, fmt.Errorf("%w: empty wait set", ErrConfig)
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
	for _, s := range w.subs {
		if s.ready() {
			return s, nil
		}
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	won := make(chan *Subscriber, len(w.subs))
	var wg sync.WaitGroup
	for _, s := range w.subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for wctx.Err() == nil {
				if s.ready() {
					won <- s
					return
				}
				if err := s.ch.wait(wctx, s.ring.notEmpty, s.ready, true); err != nil {
					if errors.Is(err, ErrClosed) {
						won <- s // its TryReceive says ErrClosed
					}
					return
				}
			}
		}()
	}
	var got *Subscriber
	select {
	case got = <-won:
	case <-ctx.Done():
	}
	cancel()
	wg.Wait()
	if got == nil {
		return nil, ctx.Err()
	}
	return got, nil
}
