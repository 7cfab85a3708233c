package shmkit

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/shmkit/shmkit/futex"
	"github.com/shmkit/shmkit/ring"
)

// Subscriber receives from a channel (a consumer on a work queue). On a
// pub/sub channel it reads every publisher's log in place; on a work
// queue it claims messages from the queue's ring. Either, as a
// bufio.Reader, is used by one goroutine at a time (Close from another is
// safe); the Samples it returns are reused, so a Sample must not be used
// after its Release.
type Subscriber struct {
	ch *Channel
	// Pub/sub: a reader of every publisher's log, the samples it can hold
	// (reused), the free ones, and how many it holds per log.
	readers    []*ring.LogReader
	events     []*futex.Event
	fencers    []fencer // the logs of events, for their waits' fences
	samples    []Sample
	free       []int
	heldIn     []int
	rr         int
	burst      int            // messages taken in a row from log rr
	cMsgs      *atomic.Uint64 // its entry's counters (owner only)
	cBytes     *atomic.Uint64
	busy       busyMark // a fast-path call is inside the mapping (busy.go)
	lastMissed uint64
	lastSeq    uint64
	lastFrom   int
	lost       uint64 // messages overwritten while copied (DropOldest)
	shut       atomic.Bool
	slot       int
	w          uint64
	wq         *wqConsumer // work queue: its handles on the queue (workqueue.go)
	e          []byte
	mu         sync.Mutex
	nheld      int
	joinPubs   uint64
	pubAtJoin  bool
	done       bool
	nrecv      uint64
	relay      Relay
}

// Subscriber joins the channel as a subscriber (a consumer on a work
// queue: see Consumer). A subscriber receives what is published after it
// joined. It fails with ErrFull when MaxSubscribers are attached.
func (ch *Channel) Subscriber() (*Subscriber, error) {
	if ch.cfg.Pattern != PubSub {
		return nil, fmt.Errorf("%w: Subscriber on a %v channel; use Consumer", ErrConfig, ch.cfg.Pattern)
	}
	return ch.subscriber()
}

func (ch *Channel) subscriber() (*Subscriber, error) {
	if err := ch.enter(); err != nil {
		return nil, err
	}
	defer ch.exit()
	i, w, err := ch.claim(roleSubscriber)
	if err != nil {
		return nil, err
	}
	s := &Subscriber{ch: ch, slot: i, e: ch.entry(i)}
	s.relay.init(ch, s.e, i)
	for h := range heldSlots {
		u64(s.e, peHeld+8*h).Store(0)
	}
	s.joinPubs = u64(ch.hdr, hdrPubJoins).Load()
	s.pubAtJoin = ch.livePublisher() // a dead predecessor's entry does not count
	if ch.cfg.Pattern == PubSub {
		s.heldIn = make([]int, len(ch.logs))
		err = s.joinLogs(w)
	} else {
		err = s.joinQueue(w)
	}
	if err != nil {
		u64(s.e, peState).Store(w&^0xff | psFree)
		return nil, err
	}
	if s.w, err = ch.activate(i, w); err != nil {
		return nil, err
	}
	if err := ch.register(s); err != nil {
		s.leave()
		return nil, err
	}
	return s, nil
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

// MessageInfo describes one message ReceiveBatch copied: its length (more
// than its buffer's when it was truncated) and what the Sample's
// Publisher, Seq and Missed would have said.
type MessageInfo struct {
	Len       int
	Publisher int
	Seq       uint64
	Missed    uint64
}

// ReceiveBatch copies up to len(bufs) messages into bufs (message i into
// bufs[i], truncated to its length) and describes message i in infos[i],
// waiting until at least one is there or ctx ends. It returns how many it
// received. Pub/sub: it takes what every log has ready and publishes its
// position once per log for the batch. Work queue: it takes what is
// queued, each message claimed and freed in turn. infos must be at least
// as long as bufs and bufs not empty (ErrConfig).
func (s *Subscriber) ReceiveBatch(ctx context.Context, bufs [][]byte, infos []MessageInfo) (int, error) {
	if len(bufs) == 0 || len(infos) < len(bufs) {
		return 0, fmt.Errorf("%w: ReceiveBatch of %d buffers with %d infos", ErrConfig, len(bufs), len(infos))
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
	if s.ch.cfg.Pattern != PubSub {
		return s.wqBatchMarked(ctx, bufs, infos)
	}
	for {
		if s.shut.Load() {
			return 0, ErrClosed
		}
		n, err := s.logBatch(bufs, infos)
		if n > 0 || err != nil {
			return n, err
		}
		if err := s.waitData(ctx); err != nil {
			return 0, err
		}
	}
}
