package shmkit

import (
	"context"
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

// wait parks until cond holds, ctx ends, the Channel closes, or one
// liveness interval passes (then it scans for dead participants, since a
// wait that long may be stuck on one, and returns nil so the caller
// re-checks its state). It returns ctx.Err() when ctx ended and ErrClosed
// when the Channel is closing.
//
// Neither the interval nor ctx reaches the futex waiter as a context: the
// waiter's own context.AfterFunc may run after the wait returned, and after
// Close unmapped the event it touches. Here the interval is part of the
// condition (a parked waiter re-checks every Waiter.Recheck), and ctx's end
// is signalled by an AfterFunc of ours that Close waits for (it counts as a
// call in flight until it has run or been stopped).
//
// spin false parks at once: a caller that already waited a whole interval
// does not spin again.
func (ch *Channel) wait(ctx context.Context, ev *futex.Event, cond func() bool, spin bool) error {
	return ch.waitEvents(ctx, []*futex.Event{ev}, cond, spin)
}

// waitEvents is wait on several events (futex.Waiter.WaitAnyUntil): any
// of them notified makes it re-check cond.
func (ch *Channel) waitEvents(ctx context.Context, evs []*futex.Event, cond func() bool, spin bool) error {
	return ch.waitBounded(ctx, evs, cond, spin, 0)
}

// waitBounded is waitEvents with each futex sleep bounded by bound (0: by
// the liveness interval only).
func (ch *Channel) waitBounded(ctx context.Context, evs []*futex.Event, cond func() bool, spin bool, bound time.Duration) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := ctx.Err(); err != nil {
		return err // checked on every pass, before the condition
	}
	if cond() {
		return nil
	}
	w := ch.waiter
	if !spin {
		w.Strategy = futex.Park
	}
	if w.Recheck <= 0 || w.Recheck > ch.cfg.LivenessInterval {
		w.Recheck = ch.cfg.LivenessInterval
	}
	if bound > 0 && w.Recheck > bound {
		w.Recheck = bound
	}
	var ended atomic.Bool
	if ctx.Done() != nil {
		ch.inflight[0].n.Add(1)
		stop := context.AfterFunc(ctx, func() {
			defer ch.inflight[0].n.Add(-1)
			ended.Store(true)
			if ch.guard {
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
				ch.inflight[0].n.Add(-1)
			}
		}()
	}
	// The waiter reads the clock for the interval itself: every 64 polls
	// while it spins, at every wake-up once parked. (A clock read inside
	// cond, every 64th call, came once per 32 re-checks when parked: the
	// dead were noticed 32 intervals late.)
	full := func() bool { return cond() || ch.closing.Load() || ended.Load() }
	until := time.Now().Add(ch.cfg.LivenessInterval)
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
	case ch.closing.Load():
		return ErrClosed
	case expired:
		ch.scan(false)
	}
	return nil
}

// TryReceive returns the next message without waiting: ErrWouldBlock when
// there is none, ErrPeerGone when there is none and the publishers are
// gone (see ErrPeerGone for exactly when). The sample's bytes are valid
// until Release.
func (s *Subscriber) TryReceive() (_ *Sample, err error) {
	if (s.readers != nil || s.wq != nil) && !s.ch.guard {
		// The fast path (busy.go), no defer.
		s.busy.enter()
		if s.shut.Load() {
			s.busy.exit()
			return nil, ErrClosed
		}
		var smp *Sample
		if s.wq != nil {
			smp, err = s.wqTry()
		} else {
			smp, err = s.logTry()
		}
		if err == nil && smp == nil {
			s.ch.maybeScan()
			err = ErrWouldBlock
			if s.peerGone() {
				err = ErrPeerGone
			}
		}
		s.busy.exit()
		return smp, err
	}
	return s.tryReceiveSlow()
}

// tryReceiveSlow is Subscriber.TryReceive off its fast path (a guarded channel:
// fault.go; a sample of another state). Its defers live here: in the
// fast path's function they would all be slow ones, paid at every return.
func (s *Subscriber) tryReceiveSlow() (_ *Sample, err error) {
	if s.ch.guard {
		defer catchFault(&err, guardFaults()) // fault.go
	}
	if err := s.ch.enterAt(s.slot); err != nil {
		return nil, err
	}
	defer s.ch.exitAt(s.slot)
	var smp *Sample
	if s.readers != nil {
		if s.shut.Load() {
			return nil, ErrClosed
		}
		smp, err = s.logTry()
	} else {
		smp, err = s.wqTryMarked()
	}
	if err == nil && smp == nil {
		s.ch.maybeScan()
		if s.peerGone() {
			return nil, ErrPeerGone
		}
		return nil, ErrWouldBlock
	}
	return smp, err
}

// Receive returns the next message, waiting until one arrives or ctx ends.
// When the publishers are gone and everything they published has been
// received, it returns ErrPeerGone (see ErrPeerGone for exactly when); a
// subscriber that joined while no publisher was attached waits for one
// instead. The sample's bytes are valid until Release.
func (s *Subscriber) Receive(ctx context.Context) (_ *Sample, err error) {
	if s.wq != nil && !s.ch.guard {
		// Work queue fast path (busy.go), no defer.
		if err := ctxErr(ctx); err != nil {
			return nil, err
		}
		s.busy.enter()
		smp, _, err := s.wqReceive(ctx, nil, false) // checks shut
		s.busy.exit()
		return smp, err
	}
	if s.readers != nil && !s.ch.guard {
		// Pub/sub fast path (busy.go), no defer.
		if err := ctxErr(ctx); err != nil {
			return nil, err
		}
		s.busy.enter()
		var smp *Sample
		if s.shut.Load() {
			err = ErrClosed
		} else if smp, err = s.logTry(); smp == nil && err == nil {
			smp, err = s.receive(ctx)
		}
		s.busy.exit()
		return smp, err
	}
	return s.receiveSlow(ctx)
}

// receiveSlow is Subscriber.Receive off its fast path (a guarded channel:
// fault.go; a sample of another state). Its defers live here: in the
// fast path's function they would all be slow ones, paid at every return.
func (s *Subscriber) receiveSlow(ctx context.Context) (_ *Sample, err error) {
	if s.ch.guard {
		defer catchFault(&err, guardFaults()) // fault.go
	}
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	if err := s.ch.enterAt(s.slot); err != nil {
		return nil, err
	}
	defer s.ch.exitAt(s.slot)
	if ctx != nil {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	return s.receive(ctx)
}

// receive is Receive for a caller that has entered the channel.
func (s *Subscriber) receive(ctx context.Context) (*Sample, error) {
	if s.readers != nil {
		if ctx == nil {
			ctx = context.Background()
		}
		for {
			if s.shut.Load() {
				return nil, ErrClosed
			}
			smp, err := s.logTry()
			if smp != nil || err != nil {
				return smp, err
			}
			if err := s.waitData(ctx); err != nil {
				return nil, err
			}
		}
	}
	smp, _, err := s.wqReceiveMarked(ctx, nil, false)
	return smp, err
}

// receivePolls bounds a work queue Receive's first poll of an empty ring,
// about a microsecond.
const receivePolls = 256

// peerGone reports whether every publisher has left: none is attached now,
// and one was attached when s joined or has joined since.
func (s *Subscriber) peerGone() bool {
	if s.ch.publishersPresent() {
		return false
	}
	if !s.pubAtJoin && u64(s.ch.hdr, hdrPubJoins).Load() == s.joinPubs {
		return false
	}
	if s.readers != nil {
		return s.logDrained()
	}
	return s.ch.wqEmpty()
}

// Release gives a received sample back; its bytes must not be used
// afterwards, nor the Sample (pub/sub reuses it). Pub/sub: the
// subscriber's position in that publisher's log moves to the oldest sample
// it still holds there; under DropOldest Release returns ErrOverrun when
// the publisher may have overwritten the sample while it was held (what
// was read from it may be torn). Work queue: the chunk is freed.
func (smp *Sample) Release() error {
	if smp == nil || smp.state != sampleReceived {
		if smp != nil && smp.state == sampleLoaned {
			return fmt.Errorf("%w: Release of a loaned sample: give it back with Discard, or send it with Publish", ErrSampleState)
		}
		return ErrSampleState
	}
	s := smp.sub
	if (s.readers != nil || s.wq != nil) && !s.ch.guard {
		// The fast path (busy.go).
		s.busy.enter()
		err := smp.release() // checks shut
		s.busy.exit()
		return err
	}
	if err := s.ch.enterAt(s.slot); err != nil {
		smp.state = sampleDone
		return nil // released with the channel
	}
	defer s.ch.exitAt(s.slot)
	if s.wq != nil {
		return s.wqReleaseMarked(smp)
	}
	return smp.release()
}

// release is Release for a caller that has entered the channel.
func (smp *Sample) release() error {
	s := smp.sub
	if s.readers != nil {
		if s.shut.Load() {
			smp.state = sampleDone
			return nil // released with the subscriber
		}
		return s.logRelease(smp)
	}
	return s.wqRelease(smp)
}

// ReceiveInto receives the next message, copies it into buf and releases
// it. A message longer than buf is truncated to len(buf); the returned
// length is the message's. It enters the channel once for the three steps.
func (s *Subscriber) ReceiveInto(ctx context.Context, buf []byte) (_ int, err error) {
	if s.wq != nil && !s.ch.guard {
		// Work queue fast path (busy.go), no defer.
		if err := ctxErr(ctx); err != nil {
			return 0, err
		}
		s.busy.enter()
		n, ok, err := s.wqInto(buf) // checks shut
		if !ok && err == nil {
			_, n, err = s.wqReceive(ctx, buf, true)
		}
		s.busy.exit()
		return n, err
	}
	if s.readers != nil && !s.ch.guard {
		// The pub/sub fast path, without defer (see Publisher.Send).
		if ctx == nil {
			ctx = context.Background()
		}
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		s.busy.enter()
		if s.shut.Load() {
			s.busy.exit()
			return 0, ErrClosed
		}
		n, ok, err := s.logInto(buf)
		if !ok && err == nil {
			n, err = s.receiveInto(ctx, buf)
		}
		s.busy.exit()
		return n, err
	}
	return s.receiveIntoSlow(ctx, buf)
}

// receiveIntoSlow is Subscriber.ReceiveInto off its fast path (a guarded channel:
// fault.go; a sample of another state). Its defers live here: in the
// fast path's function they would all be slow ones, paid at every return.
func (s *Subscriber) receiveIntoSlow(ctx context.Context, buf []byte) (_ int, err error) {
	if s.ch.guard {
		defer catchFault(&err, guardFaults()) // fault.go
	}
	if err := ctxErr(ctx); err != nil {
		return 0, err
	}
	if err := s.ch.enterAt(s.slot); err != nil {
		return 0, err
	}
	defer s.ch.exitAt(s.slot)
	if ctx == nil {
		ctx = context.Background()
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return s.receiveInto(ctx, buf)
}

// receiveInto is ReceiveInto for a caller that has entered the channel.
func (s *Subscriber) receiveInto(ctx context.Context, buf []byte) (int, error) {
	if s.readers != nil {
		for {
			if s.shut.Load() {
				return 0, ErrClosed
			}
			n, ok, err := s.logInto(buf)
			if ok || err != nil {
				return n, err
			}
			if err := s.waitData(ctx); err != nil {
				return 0, err
			}
		}
	}
	_, n, err := s.wqReceiveMarked(ctx, buf, true)
	return n, err
}

// Close leaves the channel: the subscriber's unreleased samples are
// released (their bytes become invalid), its ring is closed and drained,
// and publishers blocked on it go on. Close is idempotent.
func (s *Subscriber) Close() error {
	if err := s.ch.enter(); err != nil {
		return nil // the Channel's Close closes it
	}
	defer s.ch.exit()
	return s.closeInternal()
}

func (s *Subscriber) closeInternal() error {
	s.mu.Lock()
	if s.done {
		s.mu.Unlock()
		return nil
	}
	s.done = true
	s.shut.Store(true)
	s.mu.Unlock()
	if s.wq != nil {
		// A call in another goroutine finishes (a wait wakes and sees
		// shut) before the held samples are freed.
		s.ch.wq.NotEmpty().Notify()
		s.busy.quiesce()
		s.wqClose()
	}
	if s.readers != nil {
		for _, e := range s.events {
			e.Notify()
		}
		s.busy.quiesce()
	}
	for _, r := range s.readers {
		_ = r.Close()
	}
	s.relay.retire()
	s.leave()
	s.ch.unregister(s)
	return nil
}

func (s *Subscriber) leave() { s.ch.retire(s.e, s.w, s.slot, roleSubscriber) }
