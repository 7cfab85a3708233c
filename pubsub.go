package shmkit

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/shmkit/shmkit/futex"
	"github.com/shmkit/shmkit/internal/atomicx"
	"github.com/shmkit/shmkit/ring"
)

// Publisher publishes into a channel: every subscriber attached when a
// message is published receives it (pub/sub), or exactly one consumer
// does (work queue, where the same type is handed out by Producer). Its
// messages are delivered in the order its calls return.
//
// On a pub/sub channel a Publisher appends to a log of its own in the
// channel (docs/channels.md, "Data path"); a work queue's Producer claims
// slots of the queue's ring. Either, as a bufio.Writer, is used by one
// goroutine at a time: its calls take no lock. Close (its own or the
// Channel's) from another goroutine is safe: a call in flight finishes,
// later ones return ErrClosed. Give each goroutine a handle of its own.
type Publisher struct {
	ch *Channel
	// Pub/sub: the publisher's log, its writer, its one loan sample.
	log     *ring.Log
	lw      *ring.LogWriter
	loanSmp Sample
	loaned  bool
	nsent   uint64
	// DropNewest: a loan that found no room is written into scratch and
	// dropped at Publish.
	dropLoan bool
	scratch  []byte
	meta     uint32         // what its records carry: its slot's generation
	cMsgs    *atomic.Uint64 // its entry's counters (owner only)
	cBytes   *atomic.Uint64
	busy     busyMark // a fast-path call is inside the mapping (busy.go)
	slot     int
	w        uint64
	e        []byte
	mu       sync.Mutex // work queue: serialises its calls' bookkeeping; both: Close
	seq      uint64
	done     bool
	shut     atomic.Bool // done, readable without mu (Loan's early check)
	relay    Relay
	wq       *wqProducer  // work queue: its handles on the queue (workqueue.go)
	loans    atomic.Int64 // work queue: samples loaned and not yet published or discarded (mirrored in peLoans)
}

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

// Sample is a message in shared memory: loaned by a publisher (writable
// until Publish or Discard) or received by a subscriber (read-only by
// contract until Release). Its bytes are never copied.
type Sample struct {
	data   []byte // the payload's bytes: cap is what may be used
	log    int    // pub/sub: the log it came from
	pos    uint64 // pub/sub: its position there
	end    uint64
	pub    *Publisher
	sub    *Subscriber
	chunk  []byte             // work queue: the slot's payload (message header, then data)
	wqp    *ring.MPMCProducer // work queue: the loan's handle
	wqc    *ring.MPMCConsumer // work queue: the held sample's handle
	n      int
	held   int // its index among its handle's held (pub/sub, work queue) or loaned (work queue) samples
	missed uint64
	seq    uint64
	from   int
	state  int
}

const (
	sampleLoaned = iota + 1
	sampleReceived
	sampleDone
)

// Bytes returns the payload. For a loaned sample it is writable and valid
// until Publish or Discard; for a received one it must only be read and is
// valid until Release: on pub/sub it lies in a read-only mapping, and a
// write into it faults (SIGSEGV). In both cases it points into shared
// memory.
func (s *Sample) Bytes() []byte {
	if s == nil || s.state == sampleDone {
		return nil
	}
	return s.data[:s.n:s.n]
}

// Len returns the payload length.
func (s *Sample) Len() int { return s.n }

// Missed returns how many messages meant for this subscriber publishers
// dropped (policies DropNewest and DropOldest, or a Block publisher whose
// context ended) between its previous Receive and this one. With
// DropOldest the dropped messages came before this one; with DropNewest
// they came after the messages still queued at the time of the drop, so
// the count arrives ahead of the gap.
func (s *Sample) Missed() uint64 { return s.missed }

// Seq returns the message's number in its publisher slot's log: 1, 2, ...
// from the channel's creation, continued by a publisher that takes a slot
// over from one that left or died (a gap in the numbers is a message
// missed: Missed counts it). A loaned sample's Seq is the number it will
// carry when published.
func (s *Sample) Seq() uint64 { return s.seq }

// Publisher identifies the sample's publisher: its index among the
// channel's publisher slots and the slot's generation (index |
// generation<<8), so a publisher that takes over the slot of one that left
// has another identity.
func (s *Sample) Publisher() int { return s.from }

// SetLen shrinks or grows a loaned sample's payload within what was loaned
// rounded up to its chunk (for writers that learn the size while writing).
func (s *Sample) SetLen(n int) error {
	if s.state != sampleLoaned {
		return ErrSampleState
	}
	if n < 0 || n > cap(s.data) || n > s.pub.ch.cfg.MaxMessage {
		return fmt.Errorf("%w: %d bytes", ErrTooLarge, n)
	}
	s.n = n
	return nil
}

// Publisher joins the channel as a publisher (a producer on a work queue:
// see Producer). It fails with ErrFull when MaxPublishers are attached.
func (ch *Channel) Publisher() (*Publisher, error) {
	if ch.cfg.Pattern != PubSub {
		return nil, fmt.Errorf("%w: Publisher on a %v channel; use Producer", ErrConfig, ch.cfg.Pattern)
	}
	return ch.publisher()
}

func (ch *Channel) publisher() (*Publisher, error) {
	if err := ch.enter(); err != nil {
		return nil, err
	}
	defer ch.exit()
	i, w, err := ch.claim(rolePublisher)
	if err != nil {
		return nil, err
	}
	p := &Publisher{ch: ch, slot: i, e: ch.entry(i)}
	p.relay.init(ch, p.e, i)
	if ch.cfg.Pattern == PubSub {
		err = p.joinLog()
	} else {
		err = p.joinQueue(w)
	}
	if err != nil {
		u64(p.e, peState).Store(w&^0xff | psFree)
		return nil, err
	}
	u64(ch.hdr, hdrPubJoins).Add(1)
	if p.w, err = ch.activate(i, w); err != nil {
		return nil, err
	}
	p.tagLog()
	if err := ch.register(p); err != nil {
		p.leave()
		return nil, err
	}
	return p, nil
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

// Loan returns a writable sample of n bytes in shared memory without
// waiting. Pub/sub: room claimed in the publisher's log (ErrNoMemory while
// the slowest subscriber is a whole log behind under Block; under
// DropNewest a private buffer whose Publish drops the message), one loan at
// a time (ErrTooManyLoans). Work queue: a slot of the queue reserved in
// place (ErrNoMemory while the queue is full), up to MaxLoans at a time;
// consumers wait at a loan's position until it is published or discarded,
// so write it and publish it at once. Publish it or Discard it.
func (p *Publisher) Loan(n int) (*Sample, error) { return p.loan(nil, n) }

// LoanContext is Loan that waits for room (in the publisher's log, or a
// free slot of a work queue) until ctx ends; a DropNewest work queue does
// not wait.
func (p *Publisher) LoanContext(ctx context.Context, n int) (*Sample, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return p.loan(ctx, n)
}

func (p *Publisher) loan(ctx context.Context, n int) (_ *Sample, err error) {
	if (p.lw != nil || p.wq != nil) && !p.ch.guard {
		// The fast path: the handle's busy mark (busy.go), no defer.
		if ctx != nil {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		var smp *Sample
		p.busy.enter()
		if p.wq != nil {
			smp, err = p.wqLoan(ctx, n) // checks shut
		} else {
			smp, err = p.logLoan(ctx, n) // checks shut
		}
		p.busy.exit()
		return smp, err
	}
	return p.loanSlow(ctx, n)
}

// loanSlow is Publisher.loan off its fast path (a guarded channel:
// fault.go; a sample of another state). Its defers live here: in the
// fast path's function they would all be slow ones, paid at every return.
func (p *Publisher) loanSlow(ctx context.Context, n int) (_ *Sample, err error) {
	if p.ch.guard {
		defer catchFault(&err, guardFaults()) // fault.go
	}
	if err := p.checkLen(n); err != nil {
		return nil, err
	}
	if err := p.ch.enterAt(p.slot); err != nil {
		return nil, err
	}
	defer p.ch.exitAt(p.slot)
	if p.lw != nil {
		if ctx != nil {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		return p.logLoan(ctx, n)
	}
	return p.wqLoanMarked(ctx, n)
}

// storeLoans mirrors the loan count in the participant entry (for the
// error that names who holds a dry pool's chunks).
func (p *Publisher) storeLoans() { atomicx.StoreRelease64(u64(p.e, peLoans), uint64(p.loans.Load())) }

// unloan counts a loan given back (published or discarded).
func (p *Publisher) unloan() {
	p.loans.Add(-1)
	p.storeLoans()
}

func (p *Publisher) checkLen(n int) error {
	if n < 0 || n > p.ch.cfg.MaxMessage {
		return fmt.Errorf("%w: %d bytes, MaxMessage is %d", ErrTooLarge, n, p.ch.cfg.MaxMessage)
	}
	return nil
}

// Discard gives a loaned sample up unpublished (pub/sub: the claimed room
// becomes padding; work queue: the slot becomes a tombstone consumers
// skip).
func (s *Sample) Discard() error {
	if s.state != sampleLoaned {
		return ErrSampleState
	}
	if err := s.pub.ch.enterAt(s.pub.slot); err != nil {
		return err
	}
	defer s.pub.ch.exitAt(s.pub.slot)
	p := s.pub
	if p.wq != nil {
		p.busy.enter()
		defer p.busy.exit()
		return p.wqDiscard(s)
	}
	s.state = sampleDone
	if p.lw != nil {
		p.loaned = false
		if p.dropLoan {
			p.dropLoan = false
			return nil
		}
		return p.logErr(p.lw.Abort())
	}
	return nil
}

// Publish delivers a loaned sample to every subscriber attached now (pub/
// sub) or to the queue (work queue); the sample belongs to the channel
// afterwards and must not be touched. Pub/sub: one release store in the
// publisher's log (the room was claimed by the loan, so Publish never
// waits). Work queue: one release store too (the loan reserved the slot).
// With a ctx already done on entry Publish delivers nothing and returns
// ctx.Err(); the sample stays loaned (Publish it again or Discard it).
func (p *Publisher) Publish(ctx context.Context, s *Sample) (err error) {
	if p.lw != nil && !p.ch.guard && s != nil && s.pub == p && s.state == sampleLoaned {
		// Pub/sub fast path (busy.go): the room was claimed by the loan.
		if err := ctxErr(ctx); err != nil {
			return err // the sample stays loaned: Publish it again, or Discard it
		}
		p.busy.enter()
		if p.shut.Load() {
			p.busy.exit()
			return ErrClosed
		}
		s.state = sampleDone
		p.loaned = false
		err = p.logCommit(s.n, s.data)
		p.busy.exit()
		return err
	}
	if p.wq != nil && !p.ch.guard && s != nil && s.pub == p && s.state == sampleLoaned {
		// Work queue fast path: the loan reserved the slot.
		if err := ctxErr(ctx); err != nil {
			return err // the sample stays loaned
		}
		p.busy.enter()
		err = p.wqPublish(s) // checks shut
		p.busy.exit()
		return err
	}
	return p.publishSlow(ctx, s)
}

// publishSlow is Publisher.Publish off its fast path (a guarded channel:
// fault.go; a sample of another state). Its defers live here: in the
// fast path's function they would all be slow ones, paid at every return.
func (p *Publisher) publishSlow(ctx context.Context, s *Sample) (err error) {
	if p.ch.guard {
		defer catchFault(&err, guardFaults()) // fault.go
	}
	if s == nil || s.pub != p || s.state != sampleLoaned {
		return ErrSampleState
	}
	if err := ctxErr(ctx); err != nil {
		return err // the sample stays loaned: Publish it again, or Discard it
	}
	if err := p.ch.enterAt(p.slot); err != nil {
		return err
	}
	defer p.ch.exitAt(p.slot)
	if p.lw != nil {
		// The room was claimed by the loan: publishing never waits.
		if p.shut.Load() {
			return ErrClosed
		}
		s.state = sampleDone
		p.loaned = false
		return p.logCommit(s.n, s.data)
	}
	return p.wqPublishMarked(s)
}

// Send copies msg into the channel and publishes it; msg is not retained.
// Pub/sub: claim, copy and commit in the publisher's log. Under Block it
// waits for room until ctx ends, and a Send that returns ctx.Err()
// published the message to nobody; under DropNewest a message with no
// room is dropped for every subscriber (counted; they see it in Missed);
// under DropOldest it never waits. Work queue: a slot of the queue, waiting
// for one under Block until ctx ends; under DropNewest a message that finds
// the queue full is dropped (counted in the producer's drops).
func (p *Publisher) Send(ctx context.Context, msg []byte) (err error) {
	if p.lw != nil && !p.ch.guard {
		// The pub/sub fast path: no defer (a conditional one makes every
		// defer of the function a slow one, about 150 instructions).
		if ctx == nil {
			ctx = context.Background()
		}
		p.busy.enter()
		if p.shut.Load() {
			p.busy.exit()
			return ErrClosed
		}
		err = ctx.Err()
		if err == nil {
			err = p.logSend(ctx, msg)
		}
		p.busy.exit()
		return err
	}
	if p.wq != nil && !p.ch.guard {
		// The work queue's fast path, the same way.
		if ctx == nil {
			ctx = context.Background()
		}
		p.busy.enter()
		if err = ctx.Err(); err == nil {
			err = p.wqSend(ctx, msg) // checks shut
		}
		p.busy.exit()
		return err
	}
	return p.sendSlow(ctx, msg)
}

// sendSlow is Publisher.Send off its fast path (a guarded channel:
// fault.go; a sample of another state). Its defers live here: in the
// fast path's function they would all be slow ones, paid at every return.
func (p *Publisher) sendSlow(ctx context.Context, msg []byte) (err error) {
	if p.ch.guard {
		defer catchFault(&err, guardFaults()) // fault.go
	}
	if ctx == nil {
		ctx = context.Background()
	}
	if p.lw != nil {
		if err := p.ch.enterAt(p.slot); err != nil {
			return err
		}
		defer p.ch.exitAt(p.slot)
		if p.shut.Load() {
			return ErrClosed
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		return p.logSend(ctx, msg)
	}
	if err := p.ch.enterAt(p.slot); err != nil {
		return err
	}
	defer p.ch.exitAt(p.slot)
	if err := ctx.Err(); err != nil {
		return err
	}
	return p.wqSendMarked(ctx, msg)
}

// ID returns the identity every message of p carries (Sample.Publisher):
// its index among the channel's publisher slots and the slot's
// generation, index | generation<<8.
// It does not change while p is open.
func (p *Publisher) ID() int { return p.id() }

// id is the publisher identity samples carry: index | generation<<8.
func (p *Publisher) id() int { return p.ch.cfg.pubIndex(p.slot) | psGen(p.w)<<8 }

func (p *Publisher) isDone() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done
}

// Close leaves the channel. Loaned samples not yet published are given up. When the last publisher has left, subscribers receive what is
// left and then ErrPeerGone. Close is idempotent.
func (p *Publisher) Close() error {
	if err := p.ch.enter(); err != nil {
		return nil // the Channel's Close closes it
	}
	defer p.ch.exit()
	return p.closeInternal()
}

func (p *Publisher) closeInternal() error {
	p.mu.Lock()
	if p.done {
		p.mu.Unlock()
		return nil
	}
	p.done = true
	p.shut.Store(true)
	p.mu.Unlock()
	if p.wq != nil {
		// A call in another goroutine finishes (a wait for room wakes
		// and sees shut) before the loans are given up.
		p.ch.wq.NotFull().Notify()
		p.busy.quiesce()
		p.wqClose()
	}
	if p.log != nil {
		// A fast-path call in another goroutine finishes before the slot
		// (and the log) can pass to another publisher.
		p.log.NotFull().Notify()
		p.busy.quiesce()
	}
	if p.lw != nil && p.loaned {
		p.loaned = false
		if !p.dropLoan {
			_ = p.lw.Abort()
		}
		p.dropLoan = false
		p.loanSmp.state = sampleDone
	}
	p.relay.retire()
	p.leave()
	p.ch.unregister(p)
	return nil
}

func (p *Publisher) leave() { p.ch.retire(p.e, p.w, p.slot, rolePublisher) }
