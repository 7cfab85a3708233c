package shmkit

import (
	"context"
	"fmt"
	"time"

	"github.com/shmkit/shmkit/futex"
	"github.com/shmkit/shmkit/internal/atomicx"
)

// wait parks until cond holds, ctx ends, or one liveness interval passes
// (then it scans for dead participants, since a wait that long may be
// stuck on one, and returns nil so the caller re-checks its state). It
// returns an error only when ctx ended. The interval is part of the
// condition, not a deadline context: a parked waiter re-checks at least
// every interval (Waiter.Recheck), so no timer outlives the call.
func (ch *Channel) wait(ctx context.Context, ev *futex.Event, cond func() bool) error {
	if cond() {
		return nil
	}
	if ctx == nil {
		ctx = context.Background()
	}
	w := ch.waiter
	if w.Recheck <= 0 || w.Recheck > ch.cfg.LivenessInterval {
		w.Recheck = ch.cfg.LivenessInterval
	}
	deadline := time.Now().Add(ch.cfg.LivenessInterval)
	expired := false
	err := w.Wait(ctx, ev, func() bool {
		if cond() {
			return true
		}
		expired = time.Now().After(deadline)
		return expired
	})
	if err != nil {
		return err
	}
	if expired {
		ch.scan(false)
	}
	return nil
}

// TryReceive returns the next message without waiting: ErrWouldBlock when
// there is none, ErrPeerGone when there is none and every publisher that
// ever joined has left. The sample's bytes are valid until Release.
func (s *Subscriber) TryReceive() (*Sample, error) {
	s.ch.maybeScan()
	smp, err := s.tryReceive()
	if err == nil && smp == nil {
		if s.peerGone() {
			return nil, ErrPeerGone
		}
		return nil, ErrWouldBlock
	}
	return smp, err
}

// Receive returns the next message, waiting until one arrives or ctx ends.
// When every publisher has left (or died) and everything they published
// has been received, it returns ErrPeerGone. The sample's bytes are valid
// until Release.
func (s *Subscriber) Receive(ctx context.Context) (*Sample, error) {
	var since time.Time
	defer func() {
		if !since.IsZero() {
			add64(u64(s.e, peBlocked), uint64(time.Since(since)))
		}
	}()
	for {
		smp, err := s.tryReceive()
		if smp != nil || err != nil {
			return smp, err
		}
		if s.peerGone() {
			return nil, ErrPeerGone
		}
		if since.IsZero() {
			since = time.Now()
		}
		s.ch.maybeScan()
		if err := s.ch.wait(ctx, s.ring.notEmpty, s.ring.canTake); err != nil {
			return nil, err
		}
	}
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
		u64(s.e, peHeld+8*h).Store(v)
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
		atomicx.StoreRelease64(u64(s.e, peActive), uint64(time.Now().UnixNano()))
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
	return &Sample{sub: s, r: v, chunk: chunk, n: n, held: h, state: sampleReceived,
		seq: u64(chunk, mhSeq).Load(), from: int(u32(chunk, mhPublisher).Load())}, nil
}

// Release gives a received sample back: the chunk is freed when the last
// subscriber releases it. Its bytes must not be used afterwards.
func (smp *Sample) Release() error {
	if smp == nil || smp.state != sampleReceived {
		return ErrSampleState
	}
	s := smp.sub
	s.mu.Lock()
	defer s.mu.Unlock()
	smp.state = sampleDone
	if s.done {
		return nil // released with the subscriber
	}
	s.ch.clearBit(s.pool, smp.r, s.bit)
	at("release.clear")
	u64(s.e, peHeld+8*smp.held).Store(0)
	s.held[smp.held] = false
	s.nheld--
	return nil
}

// ReceiveInto receives the next message, copies it into buf and releases
// it. A message longer than buf is truncated to len(buf); the returned
// length is the message's.
func (s *Subscriber) ReceiveInto(ctx context.Context, buf []byte) (int, error) {
	smp, err := s.Receive(ctx)
	if err != nil {
		return 0, err
	}
	n := smp.Len()
	copy(buf, smp.Bytes())
	return n, smp.Release()
}

// Close leaves the channel: the subscriber's unreleased samples are
// released (their bytes become invalid), its ring is closed and drained,
// and publishers blocked on it go on. Close is idempotent.
func (s *Subscriber) Close() error {
	s.mu.Lock()
	if s.done {
		s.mu.Unlock()
		return nil
	}
	s.done = true
	s.mu.Unlock()
	s.leave()
	s.ch.unregister(s)
	return nil
}

func (s *Subscriber) leave() {
	ch := s.ch
	st := u64(s.e, peState)
	nw := s.w&^0xff | psCleaning
	if st.CompareAndSwap(s.w, nw) {
		ch.clean(s.slot, roleSubscriber)
		st.CompareAndSwap(nw, nw&^0xff|psFree)
	}
	ch.wakeAll()
	_ = ch.maybeRemove()
}
