package shmkit

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/shmkit/shmkit/futex"
	"github.com/shmkit/shmkit/internal/atomicx"
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
	var ended atomic.Bool
	if ctx.Done() != nil {
		ch.inflight[0].n.Add(1)
		stop := context.AfterFunc(ctx, func() {
			defer ch.inflight[0].n.Add(-1)
			ended.Store(true)
			ev.Notify()
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
	expired, err := w.WaitUntil(context.Background(), ev, func() bool {
		return cond() || ch.closing.Load() || ended.Load()
	}, time.Now().Add(ch.cfg.LivenessInterval))
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
	if s.ch.guard {
		defer catchFault(&err, guardFaults()) // fault.go
	}
	if err := s.ch.enterAt(s.slot); err != nil {
		return nil, err
	}
	defer s.ch.exitAt(s.slot)
	smp, err := s.tryReceive()
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
	return s.receive(ctx)
}

// receive is Receive for a caller that has entered the channel.
func (s *Subscriber) receive(ctx context.Context) (*Sample, error) {
	var since time.Time
	defer func() {
		if !since.IsZero() {
			add64(u64(s.e, peBlocked), uint64(time.Since(since)))
		}
	}()
	for spun := false; ; {
		smp, err := s.tryReceive()
		if smp != nil || err != nil {
			return smp, err
		}
		if !spun {
			// In a stream the next message is often a few hundred
			// nanoseconds away: poll the ring (two loads a poll) before
			// the clock reads and the peer and liveness checks below.
			spun = true
			if s.pollTake() {
				continue
			}
		}
		if s.peerGone() {
			return nil, ErrPeerGone
		}
		if since.IsZero() {
			since = time.Now()
		}
		s.ch.maybeScan()
		spin := time.Since(since) < s.ch.cfg.LivenessInterval
		if err := s.ch.wait(ctx, s.ring.notEmpty, s.ready, spin); err != nil {
			return nil, err
		}
	}
}

// receivePolls bounds Receive's first poll of an empty ring, about a
// microsecond.
const receivePolls = 256

// pollTake polls the ring until a take may find something, receivePolls
// times at most.
func (s *Subscriber) pollTake() bool {
	for range receivePolls {
		if s.ring.canTake() {
			return true
		}
	}
	return false
}

// peerGone reports whether every publisher has left: none is attached now,
// and one was attached when s joined or has joined since.
func (s *Subscriber) peerGone() bool {
	if s.ch.publishersPresent() {
		return false
	}
	if !s.pubAtJoin && u64(s.ch.hdr, hdrPubJoins).Load() == s.joinPubs {
		return false
	}
	return s.ring.empty()
}

func (s *Subscriber) tryReceive() (*Sample, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return nil, ErrClosed
	}
	if s.nheld == heldSlots {
		return nil, fmt.Errorf("%w: %d", ErrTooManyHeld, heldSlots)
	}
	h := 0
	for s.held[h] {
		h++
	}
	for {
		pos, v, ok, err := s.ring.take(s.slot)
		if err != nil || !ok {
			return nil, err
		}
		at("receive.take")
		if v == 0 {
			s.ring.finish(pos) // a hole
			continue
		}
		atomicx.StoreRelease64(u64(s.e, peHeld+8*h), v)
		at("receive.held")
		s.ring.finish(pos)
		smp, err := s.sample(v, h)
		if err != nil {
			u64(s.e, peHeld+8*h).Store(0)
			return nil, err
		}
		s.held[h] = true
		s.nheld++
		m := u64(s.e, peMissed).Load()
		smp.missed = m - s.missed
		s.missed = m
		add64(u64(s.e, peMsgs), 1)
		add64(u64(s.e, peBytes), uint64(smp.n))
		if s.nrecv++; s.nrecv%activityEvery == 1 {
			atomicx.StoreRelease64(u64(s.e, peActive), uint64(time.Now().UnixNano()))
			s.ch.maybeScan()
		}
		return smp, nil
	}
}

// sample validates the message v names (it comes from shared memory).
func (s *Subscriber) sample(v ref, h int) (*Sample, error) {
	chunk, err := s.pool.chunk(v)
	if err != nil {
		return nil, err
	}
	if got := u64(chunk, mhRef).Load(); got != v {
		return nil, fmt.Errorf("%w: message header names %#x, ring gave %#x", ErrCorrupt, got, v)
	}
	m := u64(chunk, mhMask).Load()
	if m>>32 != maskTag(v) || m&s.bit == 0 {
		return nil, fmt.Errorf("%w: message %#x: mask %#x does not hold this subscriber", ErrCorrupt, v, m)
	}
	n := int(u32(chunk, mhLen).Load())
	if n > len(chunk)-msgHeaderSize || n > s.ch.cfg.MaxMessage {
		return nil, fmt.Errorf("%w: message %#x: length %d in a chunk of %d", ErrCorrupt, v, n, len(chunk))
	}
	smp := s.smp.next() // the caller holds s.mu
	*smp = Sample{sub: s, r: v, chunk: chunk, n: n, held: h, state: sampleReceived,
		seq: u64(chunk, mhSeq).Load(), from: int(u32(chunk, mhPublisher).Load())}
	return smp, nil
}

// Release gives a received sample back: the chunk is freed when the last
// subscriber releases it. Its bytes must not be used afterwards.
func (smp *Sample) Release() error {
	if smp == nil || smp.state != sampleReceived {
		if smp != nil && smp.state == sampleLoaned {
			return fmt.Errorf("%w: Release of a loaned sample: give it back with Discard, or send it with Publish", ErrSampleState)
		}
		return ErrSampleState
	}
	s := smp.sub
	if err := s.ch.enterAt(s.slot); err != nil {
		smp.state = sampleDone
		return nil // released with the channel
	}
	defer s.ch.exitAt(s.slot)
	return smp.release()
}

// release is Release for a caller that has entered the channel.
func (smp *Sample) release() error {
	s := smp.sub
	s.mu.Lock()
	defer s.mu.Unlock()
	smp.state = sampleDone
	if s.done {
		return nil // released with the subscriber
	}
	clearBitIn(s.pool, smp.r, smp.chunk, s.bit)
	at("release.clear")
	atomicx.StoreRelease64(u64(s.e, peHeld+8*smp.held), 0)
	s.held[smp.held] = false
	s.nheld--
	return nil
}

// ReceiveInto receives the next message, copies it into buf and releases
// it. A message longer than buf is truncated to len(buf); the returned
// length is the message's. It enters the channel once for the three steps.
func (s *Subscriber) ReceiveInto(ctx context.Context, buf []byte) (_ int, err error) {
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
	smp, err := s.receive(ctx)
	if err != nil {
		return 0, err
	}
	n := smp.Len()
	copy(buf, smp.Bytes())
	return n, smp.release()
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
	s.mu.Unlock()
	s.relay.retire()
	s.leave()
	s.ch.unregister(s)
	return nil
}

func (s *Subscriber) leave() { s.ch.retire(s.e, s.w, s.slot, roleSubscriber) }
