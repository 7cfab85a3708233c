package shmkit

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

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
	idv      int // id(): its slot and generation, fixed at activation
	e        []byte
	mu       sync.Mutex // work queue: serialises its calls' bookkeeping; both: Close
	seq      uint64
	done     bool
	shut     atomic.Bool // done, readable without mu (Loan's early check)
	relay    Relay
	wq       *wqProducer  // work queue: its handles on the queue (workqueue.go)
	loans    atomic.Int64 // work queue: samples loaned and not yet published or discarded (mirrored in peLoans)
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
	p.idv = ch.cfg.pubIndex(p.slot) | psGen(p.w)<<8
	p.tagLog()
	if err := ch.register(p); err != nil {
		p.leave()
		return nil, err
	}
	return p, nil
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
func (p *Publisher) id() int { return p.idv }

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

// SendBatch copies every message of msgs into the channel in order, as
// Send would one by one, but wakes parked subscribers once for the batch
// (pub/sub: the records that fit are claimed as one run). It returns how
// many it sent (under DropNewest, dropped ones count as sent). A message
// over MaxMessage fails the call before anything is sent.
func (p *Publisher) SendBatch(ctx context.Context, msgs [][]byte) (int, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	for _, m := range msgs {
		if uint(len(m)) > uint(p.ch.cfg.MaxMessage) {
			return 0, p.checkLen(len(m))
		}
	}
	if p.ch.guard {
		return p.sendBatchSlow(ctx, msgs)
	}
	p.busy.enter() // the fast path (busy.go)
	n, err := p.sendBatch(ctx, msgs)
	p.busy.exit()
	return n, err
}

// sendBatchSlow is SendBatch on a guarded channel (fault.go).
func (p *Publisher) sendBatchSlow(ctx context.Context, msgs [][]byte) (_ int, err error) {
	defer catchFault(&err, guardFaults())
	if err := p.ch.enterAt(p.slot); err != nil {
		return 0, err
	}
	defer p.ch.exitAt(p.slot)
	p.busy.enter()
	defer p.busy.exit()
	return p.sendBatch(ctx, msgs)
}

// sendBatch is SendBatch for a caller that holds the busy mark; the
// lengths are checked.
func (p *Publisher) sendBatch(ctx context.Context, msgs [][]byte) (int, error) {
	if p.wq != nil {
		for i, m := range msgs {
			if err := p.wqSend(ctx, m); err != nil { // checks shut
				return i, err
			}
		}
		return len(msgs), nil
	}
	done := 0
	for done < len(msgs) {
		if p.loaned {
			return done, fmt.Errorf("%w: a loan is pending", ErrSampleState)
		}
		if p.shut.Load() {
			return done, ErrClosed
		}
		k, err := p.lw.TryWriteBatch(msgs[done:])
		if k > 0 {
			var bytes int
			for _, m := range msgs[done : done+k] {
				bytes += len(m)
			}
			p.afterPublishBatch(msgs[done:done+k], bytes)
			done += k
		}
		if err != nil {
			return done, p.logErr(err)
		}
		if done == len(msgs) {
			break
		}
		// No room for the next one.
		if p.ch.cfg.Policy == DropNewest {
			p.drop()
			done++
			continue
		}
		if err := p.waitRoom(ctx, len(msgs[done])); err != nil {
			return done, err
		}
	}
	return done, nil
}

func (p *Publisher) afterPublishBatch(msgs [][]byte, bytes int) {
	ch := p.ch
	if t := ch.tap; t != nil && t.active.Load() != 0 {
		seq := p.lw.Seq() - uint64(len(msgs))
		for _, m := range msgs {
			seq++
			t.copyOut(ch.cfg.pubIndex(p.slot), p.id(), seq, m)
		}
	}
	p.seq = p.lw.Seq()
	add64(u64(p.e, peMsgs), uint64(len(msgs)))
	add64(u64(p.e, peBytes), uint64(bytes))
	if p.nsent += uint64(len(msgs)); p.nsent >= activityEvery {
		p.nsent = 0
		u64(p.e, peActive).Store(uint64(time.Now().UnixNano()))
		ch.maybeScan()
	}
}
