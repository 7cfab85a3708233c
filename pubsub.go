package shmkit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shmkit/shmkit/internal/atomicx"
)

// Publisher publishes into a channel: every subscriber attached when a
// message is published receives it (pub/sub), or exactly one consumer
// does (work queue, where the same type is handed out by Producer). A
// Publisher is safe for concurrent use; its messages are delivered in the
// order its Publish calls return.
type Publisher struct {
	ch    *Channel
	slot  int
	w     uint64
	pool  *pool
	e     []byte
	mu    sync.Mutex // serialises Publish: per-publisher order
	seq   uint64
	done  bool
	shut  atomic.Bool // done, readable without mu (Loan's early check)
	smp   sampleSlab  // under mu
	relay Relay
	loans atomic.Int64 // samples loaned and not yet published or discarded (mirrored in peLoans)
}

// Subscriber receives from a channel (a consumer on a work queue). Methods
// are safe for concurrent use.
type Subscriber struct {
	ch        *Channel
	slot      int
	w         uint64
	ring      *dring
	bit       uint64
	pool      *pool
	e         []byte
	mu        sync.Mutex
	held      [heldSlots]bool
	nheld     int
	missed    uint64 // the shared missed counter when last reported
	joinPubs  uint64
	pubAtJoin bool
	done      bool
	nrecv     uint64
	smp       sampleSlab // under mu
	relay     Relay
}

// sampleSlab hands out Samples from a batch allocated at once, so a
// message costs no Go allocation of its own (one per sampleBatch). A
// Sample is never reused: a stale *Sample kept by its user stays in its
// final state (Publish or Release again is ErrSampleState), and keeps its
// batch (sampleBatch Samples, a few KiB) from being collected.
type sampleSlab struct{ free []Sample }

const sampleBatch = 64

func (b *sampleSlab) next() *Sample {
	if len(b.free) == 0 {
		b.free = make([]Sample, sampleBatch)
	}
	s := &b.free[0]
	b.free = b.free[1:]
	return s
}

// Sample is a message in shared memory: loaned by a publisher (writable
// until Publish or Discard) or received by a subscriber (read-only by
// contract until Release). Its bytes are never copied.
type Sample struct {
	pub    *Publisher
	sub    *Subscriber
	r      ref
	chunk  []byte
	n      int
	held   int
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
// valid until Release. In both cases it points into shared memory.
func (s *Sample) Bytes() []byte {
	if s == nil || s.state == sampleDone {
		return nil
	}
	return s.chunk[msgHeaderSize : msgHeaderSize+s.n : msgHeaderSize+s.n]
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

// Seq returns the publisher's sequence number of the message (1, 2, ... per
// publisher).
func (s *Sample) Seq() uint64 { return s.seq }

// Publisher identifies the sample's publisher: its participant slot and
// the slot's generation (slot | generation<<8), so a publisher that takes
// over the slot of one that left has another identity.
func (s *Sample) Publisher() int { return s.from }

// SetLen shrinks or grows a loaned sample's payload within what was loaned
// rounded up to its chunk (for writers that learn the size while writing).
func (s *Sample) SetLen(n int) error {
	if s.state != sampleLoaned {
		return ErrSampleState
	}
	if n < 0 || n > len(s.chunk)-msgHeaderSize || n > s.pub.ch.cfg.MaxMessage {
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
	p := &Publisher{ch: ch, slot: i, pool: ch.pool.owner(i), e: ch.entry(i)}
	p.relay.init(ch, p.e, i)
	u64(ch.hdr, hdrPubJoins).Add(1)
	if p.w, err = ch.activate(i, w); err != nil {
		return nil, err
	}
	if err := ch.register(p); err != nil {
		p.leave()
		return nil, err
	}
	return p, nil
}

// Subscriber joins the channel as a subscriber (a consumer on a work
// queue: see Consumer). A subscriber receives what is published after it
// joined. It fails with ErrFull when MaxSubscribers are attached.
func (ch *Channel) Subscriber(opts ...SubscriberOption) (*Subscriber, error) {
	if ch.cfg.Pattern != PubSub {
		return nil, fmt.Errorf("%w: Subscriber on a %v channel; use Consumer", ErrConfig, ch.cfg.Pattern)
	}
	var o subOptions
	for _, f := range opts {
		f(&o)
	}
	if o.depth < 0 || o.depth > ch.cfg.RingDepth {
		return nil, fmt.Errorf("%w: WithDepth(%d) outside [1, RingDepth %d]", ErrConfig, o.depth, ch.cfg.RingDepth)
	}
	return ch.subscriber(o)
}

// SubscriberOption tunes one Subscriber.
type SubscriberOption func(*subOptions)

type subOptions struct{ depth int }

// WithDepth gives the subscriber a ring of its own depth n, at most the
// channel's RingDepth: publishers treat it as full at n messages and apply
// the channel's policy to it there. A slow logger can keep the whole
// RingDepth while a fast consumer beside it keeps only a few messages
// (under DropOldest: only the newest few).
func WithDepth(n int) SubscriberOption { return func(o *subOptions) { o.depth = n } }

func (ch *Channel) subscriber(o subOptions) (*Subscriber, error) {
	if err := ch.enter(); err != nil {
		return nil, err
	}
	defer ch.exit()
	i, w, err := ch.claim(roleSubscriber)
	if err != nil {
		return nil, err
	}
	s := &Subscriber{ch: ch, slot: i, pool: ch.pool.owner(i), e: ch.entry(i)}
	s.relay.init(ch, s.e, i)
	for h := range heldSlots {
		u64(s.e, peHeld+8*h).Store(0)
	}
	s.joinPubs = u64(ch.hdr, hdrPubJoins).Load()
	s.pubAtJoin = ch.livePublisher() // a dead predecessor's entry does not count
	if ch.cfg.Pattern == PubSub {
		s.ring, s.bit = ch.rings[i], bit(i)
		// The ring of a slot is closed while nobody holds the slot; what a
		// late writer left in it (holes) goes before it opens.
		if err := s.ring.drain(i, ch.alive, func(v ref) { ch.clearBit(s.pool, v, s.bit) }); err != nil {
			u64(s.e, peState).Store(w&^0xff | psFree)
			return nil, err
		}
		s.ring.limit.Store(uint64(o.depth)) // before the ring opens to writers
		s.ring.reopen()
	} else {
		s.ring, s.bit = ch.rings[0], bit(0)
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

// Loan takes a chunk for a message of n bytes from the pool without
// waiting (ErrNoMemory when the size class that fits n is empty) and
// returns it as a writable sample. Publish it or Discard it.
func (p *Publisher) Loan(n int) (*Sample, error) { return p.loan(nil, n) }

// LoanContext is Loan that waits for a free chunk until ctx ends.
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
	if l := p.loans.Add(1); l > int64(p.ch.cfg.MaxLoans) {
		p.loans.Add(-1)
		return nil, fmt.Errorf("%w: this publisher holds %d (MaxLoans %d): publish or discard one", ErrTooManyLoans, l-1, p.ch.cfg.MaxLoans)
	}
	r, chunk, err := p.take(ctx, n)
	if err != nil {
		p.loans.Add(-1)
		return nil, err
	}
	p.storeLoans()
	if err := p.lockOpen(r); err != nil {
		p.unloan()
		return nil, err
	}
	s := p.smp.next()
	p.mu.Unlock()
	*s = Sample{pub: p, r: r, chunk: chunk, n: n, state: sampleLoaned, from: p.id()}
	return s, nil
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

// lockOpen locks p.mu for a caller holding chunk r from take. If p was
// closed meanwhile (Close's reclaim may have run before the alloc) it
// frees r, leaves p.mu unlocked and returns ErrClosed.
func (p *Publisher) lockOpen(r ref) error {
	p.mu.Lock()
	if p.done {
		p.mu.Unlock()
		_ = p.pool.free(r)
		return ErrClosed
	}
	return nil
}

// take allocates a chunk for n payload bytes (waiting for one until ctx
// ends unless ctx is nil) and stamps its mask and ref words. The caller
// has entered the channel; the chunk is owned by p's participant slot
// until it is published, so a SIGKILL returns it (ReclaimOwner).
func (p *Publisher) take(ctx context.Context, n int) (ref, []byte, error) {
	if p.shut.Load() {
		return 0, nil, ErrClosed
	}
	r, err := p.pool.alloc(n)
	if err != nil && ctx != nil && p.ch.cfg.Policy == Block && errors.Is(err, ErrNoMemory) {
		r, err = p.waitAlloc(ctx, n) // the drop policies never wait
	}
	if err != nil {
		if errors.Is(err, ErrNoMemory) {
			err = fmt.Errorf("%w; %s", err, p.ch.chunkHolders())
		}
		return 0, nil, err
	}
	at("loan.alloc")
	chunk, err := p.pool.chunk(r)
	if err != nil {
		return 0, nil, err
	}
	atomicx.StoreRelease64(u64(chunk, mhMask), maskTag(r)<<32)
	atomicx.StoreRelease64(u64(chunk, mhRef), r)
	return r, chunk, nil
}

// waitAlloc waits for a chunk after an alloc found the class empty. It
// announces itself in the header's loan_waiters word first, so that frees
// count and notify (pool.free), then reads the count, retries, and parks
// until the count moves. Ordering: the announce and every free's push are
// sequentially consistent atomics, as are the count load and the free's
// load of loan_waiters, so either the retry sees the freed chunk or the
// free sees the waiter and moves the count after it (store-buffer pattern).
func (p *Publisher) waitAlloc(ctx context.Context, n int) (ref, error) {
	p.pool.waiters.Add(1)
	defer p.pool.waiters.Add(^uint32(0))
	for {
		if p.isDone() {
			return 0, ErrClosed
		}
		seen := p.pool.frees.Load()
		r, err := p.pool.alloc(n)
		if !errors.Is(err, ErrNoMemory) {
			return r, err
		}
		if werr := p.ch.wait(ctx, p.pool.freed, func() bool { return p.pool.frees.Load() != seen }, true); werr != nil {
			if errors.Is(werr, ErrClosed) {
				return 0, werr
			}
			return 0, fmt.Errorf("%w: waiting for a chunk for %d bytes: %w", werr, n, err)
		}
	}
}

// Discard returns a loaned sample to the pool unpublished.
func (s *Sample) Discard() error {
	if s.state != sampleLoaned {
		return ErrSampleState
	}
	if err := s.pub.ch.enterAt(s.pub.slot); err != nil {
		return err
	}
	defer s.pub.ch.exitAt(s.pub.slot)
	s.state = sampleDone
	s.pub.unloan()
	return s.pub.pool.free(s.r)
}

// Publish delivers a loaned sample to every subscriber attached now (pub/
// sub) or to the queue (work queue); the sample belongs to the channel
// afterwards and must not be touched. With policy Block, Publish waits for
// room in each full ring until ctx ends; once it has ended, every
// subscriber whose ring is still full misses the message (counted as a
// drop for it), every subscriber with room still gets it, and Publish
// returns ctx.Err(). A subscriber found dead or leaving is skipped. With a
// ctx already done on entry Publish delivers nothing and returns ctx.Err();
// the sample stays loaned (Publish it again or Discard it).
func (p *Publisher) Publish(ctx context.Context, s *Sample) (err error) {
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
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return ErrClosed
	}
	s.state = sampleDone
	p.unloan()
	return p.publish(ctx, s.r, s.chunk, s.n)
}

// publish delivers chunk r (n payload bytes) as Publish promises. The
// caller has entered the channel and holds p.mu.
func (p *Publisher) publish(ctx context.Context, r ref, chunk []byte, n int) error {
	ch := p.ch
	p.seq++
	atomicx.StoreRelease64(u64(chunk, mhSeq), p.seq)
	atomicx.StoreRelease32(u32(chunk, mhLen), uint32(n))
	atomicx.StoreRelease32(u32(chunk, mhPublisher), uint32(p.id()))
	atomicx.StoreRelease64(u64(p.e, pePubRef), r)
	at("publish.pubref")
	// Targets: the subscribers active now, each with its state word so a
	// slot reused meanwhile is recognised.
	var targets [MaxSubscribers]uint64
	mask := uint64(0)
	if ch.cfg.Pattern == PubSub {
		for k := range ch.cfg.MaxSubscribers {
			w := ch.state(k)
			if psState(w) == psActive {
				targets[k] = w
				mask |= bit(k)
			}
		}
	} else {
		mask = bit(0)
	}
	atomicx.StoreRelease64(u64(chunk, mhMask), maskTag(r)<<32|mask|pubBit)
	at("publish.mask")
	if err := p.pool.disown(r); err != nil {
		return err
	}
	at("publish.disown")
	var errs []error
	for k := range ch.rings {
		b := bit(k)
		if mask&b == 0 {
			continue
		}
		var to target
		if ch.cfg.Pattern == PubSub {
			to = target{word: u64(ch.entry(k), peState), want: targets[k]}
		}
		if err := p.deliver(ctx, k, r, to); err != nil {
			clearBitIn(p.pool, r, chunk, b)
			if !errors.Is(err, errDropped) && len(errs) == 0 {
				errs = append(errs, err)
			}
		}
		at("publish.put")
	}
	// Taps: one load of a read-mostly word while none is attached. The
	// copy comes after delivery (subscribers are not kept waiting for it)
	// and before the publisher's bit goes (the chunk is still ours to read).
	if t := ch.tap; t != nil && t.active.Load() != 0 {
		t.copyOut(p.slot, p.id(), p.seq, chunk[msgHeaderSize:msgHeaderSize+n])
	}
	clearBitIn(p.pool, r, chunk, pubBit)
	at("publish.unpub")
	atomicx.StoreRelease64(u64(p.e, pePubRef), 0)
	add64(u64(p.e, peMsgs), 1)
	add64(u64(p.e, peBytes), uint64(n))
	if p.seq%activityEvery == 1 {
		atomicx.StoreRelease64(u64(p.e, peActive), uint64(time.Now().UnixNano()))
		ch.maybeScan()
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return nil
}

// deliver puts r into ring k, applying the channel's policy when it is
// full. An error means r is not in the ring (the caller drops its bit).
func (p *Publisher) deliver(ctx context.Context, k int, r ref, to target) error {
	ch := p.ch
	ring := ch.rings[k]
	var blockedSince time.Time
	defer func() {
		if !blockedSince.IsZero() {
			d := uint64(time.Since(blockedSince))
			add64(u64(p.e, peBlocked), d)
		}
	}()
	for {
		res, err := ring.put(r, p.slot, to)
		if err != nil {
			return err
		}
		switch res {
		case putDone:
			return nil
		case putClosed:
			return errDropped // the subscriber left: the caller drops its bit
		}
		// Full.
		switch ch.cfg.Policy {
		case DropNewest:
			p.countDrop(k)
			return errDropped
		case DropOldest:
			pos, v, ok, err := ring.take(p.slot)
			if err != nil {
				return err
			}
			if ok {
				at("drop.take")
				if v != 0 {
					ch.clearBit(p.pool, v, bit(k))
					p.countDrop(k)
				}
				ring.finish(pos)
			}
			continue
		}
		// Block.
		if blockedSince.IsZero() {
			blockedSince = time.Now()
		}
		if !to.valid() {
			return errDropped
		}
		spin := time.Since(blockedSince) < ch.cfg.LivenessInterval
		if err := ch.wait(ctx, ring.notFull, func() bool { return ring.canPut() || !to.valid() }, spin); err != nil {
			p.countDrop(k)
			return err
		}
	}
}

// errDropped is an internal marker: the message was not delivered to one
// subscriber, by policy; Publish does not report it.
var errDropped = errors.New("dropped")

func (p *Publisher) countDrop(k int) {
	add64(u64(p.e, peDrops), 1)
	if p.ch.cfg.Pattern == PubSub {
		u64(p.ch.entry(k), peMissed).Add(1)
	}
}

// Send copies msg into a chunk of the pool and publishes it, waiting for a
// chunk as LoanContext does; msg is not retained. It is Loan, copy and
// Publish in one call that enters the channel and takes the publisher's
// lock once instead of twice.
func (p *Publisher) Send(ctx context.Context, msg []byte) (err error) {
	if p.ch.guard {
		defer catchFault(&err, guardFaults()) // fault.go
	}
	if ctx == nil {
		ctx = context.Background()
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	n := len(msg)
	if err := p.checkLen(n); err != nil {
		return err
	}
	if err := p.ch.enterAt(p.slot); err != nil {
		return err
	}
	defer p.ch.exitAt(p.slot)
	r, chunk, err := p.take(ctx, n)
	if err != nil {
		return err
	}
	copy(chunk[msgHeaderSize:msgHeaderSize+n], msg)
	if err := p.lockOpen(r); err != nil {
		return err
	}
	defer p.mu.Unlock()
	return p.publish(ctx, r, chunk, n)
}

// ID returns the identity every message of p carries (Sample.Publisher):
// its participant slot and the slot's generation, slot | generation<<8.
// It does not change while p is open.
func (p *Publisher) ID() int { return p.id() }

// id is the publisher identity samples carry: slot | generation<<8.
func (p *Publisher) id() int { return p.slot | psGen(p.w)<<8 }

func (p *Publisher) isDone() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done
}

// Close leaves the channel. Loaned samples not yet published return to the
// pool. When the last publisher has left, subscribers receive what is
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
	p.relay.retire()
	p.leave()
	p.ch.unregister(p)
	return nil
}

func (p *Publisher) leave() { p.ch.retire(p.e, p.w, p.slot, rolePublisher) }
