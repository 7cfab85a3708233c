package shmkit

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/shmkit/shmkit/futex"
	"github.com/shmkit/shmkit/internal/atomicx"
	"github.com/shmkit/shmkit/ring"
)

// Producer puts messages on a work queue; each goes to exactly one
// Consumer. It has the Publisher's methods (Loan, LoanContext, Publish,
// Send, SendBatch, Close) and, as a Publisher, is used by one goroutine at
// a time (Close from another is safe): give each goroutine its own.
type Producer struct{ *Publisher }

// Consumer takes messages from a work queue. It has the Subscriber's
// methods (Receive, TryReceive, ReceiveInto, ReceiveBatch, Close) and, as
// a Subscriber, is used by one goroutine at a time (Close from another is
// safe; its Samples are reused): give each goroutine its own.
type Consumer struct{ *Subscriber }

// Producer joins a WorkQueue channel as a producer (ErrFull beyond
// MaxPublishers).
func (ch *Channel) Producer() (*Producer, error) {
	if ch.cfg.Pattern != WorkQueue {
		return nil, fmt.Errorf("%w: Producer on a %v channel; use Publisher", ErrConfig, ch.cfg.Pattern)
	}
	p, err := ch.publisher()
	if err != nil {
		return nil, err
	}
	return &Producer{p}, nil
}

// Consumer joins a WorkQueue channel as a consumer (ErrFull beyond
// MaxSubscribers). Messages a consumer received and had not released when
// it died are lost with it; every other message goes to exactly one
// consumer.
func (ch *Channel) Consumer() (*Consumer, error) {
	if ch.cfg.Pattern != WorkQueue {
		return nil, fmt.Errorf("%w: Consumer on a %v channel; use Subscriber", ErrConfig, ch.cfg.Pattern)
	}
	s, err := ch.subscriber()
	if err != nil {
		return nil, err
	}
	return &Consumer{s}, nil
}

// The work queue's data path: one ring.MPMC in the channel's "rings"
// region (kind MPMC), its slots holding the messages inline (a claim per
// message: each goes to one consumer), with claim records so that a dead
// participant's claims are finished by ring.MPMC.Repair (docs/channels.md,
// "Work queue"). A slot's payload starts with a 16-byte message header:
//
//	wqSeq        uint64  the producer slot's message number
//	wqPublisher  uint32  the producer's identity (Sample.Publisher)
//	wqZero       uint32  zero
//
// and the message follows. A Loan is a reserved slot (ring.MPMCProducer.
// TryReserve): consumers wait at its position until Publish or Discard,
// so loans are for messages written at once. A received Sample is a
// peeked slot (TryPeek), freed at Release: producers wait for it only
// when they come round the ring to it.
const (
	wqSeq       = 0
	wqPublisher = 8
	wqZero      = 12
	wqHeader    = 16
)

// wqClaims is the number of claim records of a work queue's ring: one per
// handle that may hold a claim at once. A producer has one for each loan
// and one for Send; a consumer one for each held sample and one for
// ReceiveInto.
func wqClaims(c Config) int {
	return c.MaxPublishers*(c.MaxLoans+1) + c.MaxSubscribers*(c.MaxHeld+1)
}

func wqOptions(c Config) []ring.Option {
	return []ring.Option{ring.WithClaimSlots(wqClaims(c))}
}

// wqSize is the size of a work queue's rings region (0 with an error for a
// geometry the ring refuses).
func wqSize(c Config) (int, error) {
	return ring.MPMCSize(c.RingDepth, c.MaxMessage+wqHeader, wqOptions(c)...)
}

// wqMaxRegion bounds a work queue's ring region (RingDepth slots of
// MaxMessage bytes): 1 GiB.
const wqMaxRegion = 1 << 30

// wqTooBig is nil when c's queue fits (validate checks the claim count
// first).
func wqTooBig(c Config) error {
	n, err := wqSize(c)
	if err == nil && n > wqMaxRegion {
		err = fmt.Errorf("%d bytes, over %d: lower RingDepth or MaxMessage", n, wqMaxRegion)
	}
	return err
}

// setupQueue makes (create) or attaches the work queue's ring in mem.
func (ch *Channel) setupQueue(mem []byte, create bool) error {
	c := ch.cfg
	ro, err := ch.ringsView(len(mem)) // what consumers read in place: read-only
	if err != nil {
		return err
	}
	var r *ring.MPMC
	if create {
		r, err = ring.NewMPMC(mem, c.RingDepth, c.MaxMessage+wqHeader, append(wqOptions(c), ring.WithReadView(ro))...)
	} else {
		r, err = ring.AttachMPMC(mem, ring.WithReadView(ro))
		if err == nil && (r.Cap() != c.RingDepth || r.SlotSize() != c.MaxMessage+wqHeader || r.ClaimSlots() != wqClaims(c)) {
			err = fmt.Errorf("%w: work queue ring of %d slots of %d bytes with %d claim records; the header says %d, %d, %d",
				ErrCorrupt, r.Cap(), r.SlotSize(), r.ClaimSlots(), c.RingDepth, c.MaxMessage+wqHeader, wqClaims(c))
		}
	}
	if err != nil {
		if errors.Is(err, ring.ErrCorrupt) || errors.Is(err, ring.ErrBadMagic) || errors.Is(err, ring.ErrVersion) || errors.Is(err, ring.ErrConfig) {
			err = fmt.Errorf("%w: work queue ring: %w", ErrCorrupt, err)
		}
		return err
	}
	ch.wq, ch.wqMem, ch.wqView = r, mem, ro
	return nil
}

// wqRing attaches a value of the queue's ring whose handles record owner
// in their claim records.
func (ch *Channel) wqRing(owner uint32) (*ring.MPMC, error) {
	r, err := ring.AttachMPMC(ch.wqMem, ring.WithOwner(owner), ring.WithReadView(ch.wqView))
	if err != nil {
		return nil, fmt.Errorf("%w: work queue ring: %w", ErrCorrupt, err)
	}
	return r, nil
}

// cleanQueue finishes what participant i (state word w) left in the
// queue: a position it reserved becomes a tombstone, the messages it held
// are freed (lost, counted in its entry's drops), and its claim records
// are freed. For a participant that left cleanly it only frees the
// records. Repair waits for a live handle caught between recording and
// claiming (instructions); the wait is bounded by a liveness interval, and
// the records of an owner it could not finish stay marked dead.
func (ch *Channel) cleanQueue(i int, w uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), ch.cfg.LivenessInterval)
	defer cancel()
	e := ch.entry(i)
	_, _ = ch.wq.Repair(ctx, func([]byte) { add64(u64(e, peDrops), 1) }, logOwner(i, w))
}

// --- producer ---

// wqProducer is a Producer's side of the queue: the handles its loans and
// sends claim slots with. Only the goroutine using the Producer touches it
// (and Close, once that goroutine's call is out: busy.go).
type wqProducer struct {
	r      *ring.MPMC
	send   *ring.MPMCProducer   // Send's handle
	hs     []*ring.MPMCProducer // one per loan it may hold (MaxLoans)
	smp    []Sample             // the sample of hs[i]'s loan (reused)
	free   []int                // indices of hs not holding a loan
	loaned []bool
}

// joinQueue sets p up on the queue (before p is active: a claim record is
// taken at a handle's first operation).
func (p *Publisher) joinQueue(w uint64) error {
	r, err := p.ch.wqRing(logOwner(p.slot, w))
	if err != nil {
		return err
	}
	n := p.ch.cfg.MaxLoans
	q := &wqProducer{r: r, send: r.Producer(), smp: make([]Sample, n), loaned: make([]bool, n)}
	p.cMsgs, p.cBytes = u64(p.e, peMsgs), u64(p.e, peBytes)
	for i := range n {
		q.hs = append(q.hs, r.Producer())
		q.free = append(q.free, n-1-i)
		q.smp[i] = Sample{pub: p, wqp: q.hs[i], held: i}
	}
	p.wq = q
	return nil
}

// wqLoan is Loan on a work queue; the caller has entered the channel.
func (p *Publisher) wqLoan(ctx context.Context, n int) (*Sample, error) {
	if err := p.checkLen(n); err != nil {
		return nil, err
	}
	q := p.wq
	var since time.Time
	defer p.countBlocked(&since)
	for {
		if p.shut.Load() {
			return nil, ErrClosed
		}
		if len(q.free) == 0 {
			return nil, fmt.Errorf("%w: this publisher holds %d (MaxLoans %d): publish or discard one", ErrTooManyLoans, len(q.hs), p.ch.cfg.MaxLoans)
		}
		i := q.free[len(q.free)-1]
		h := q.hs[i]
		b, ok, err := h.TryReserve()
		if ok {
			at("loan.reserve")
			q.free = q.free[:len(q.free)-1]
			s := &q.smp[i] // pub, wqp and held are set at join
			p.seq++
			s.chunk, s.data, s.n, s.seq, s.from, s.state = b, b[wqHeader:], n, p.seq, p.id(), sampleLoaned
			q.loaned[i] = true
			p.loans.Add(1)
			p.storeLoans()
			return s, nil
		}
		if err != nil {
			return nil, p.wqErr(err)
		}
		if ctx == nil || p.ch.cfg.Policy != Block {
			return nil, fmt.Errorf("%w: the work queue is full (%d messages)", ErrNoMemory, q.r.Cap())
		}
		if err := p.wqWaitRoom(ctx, &since); err != nil {
			return nil, err
		}
	}
}

// countBlocked adds the time since *since (if set) to p's blocked time.
func (p *Publisher) countBlocked(since *time.Time) {
	if !since.IsZero() {
		add64(u64(p.e, peBlocked), uint64(time.Since(*since)))
	}
}

// wqWaitRoom waits until the queue may have a free slot, ctx ends or p
// closes.
func (p *Publisher) wqWaitRoom(ctx context.Context, since *time.Time) error {
	if since.IsZero() {
		*since = time.Now()
	}
	r := p.ch.wq
	spin := time.Since(*since) < p.ch.cfg.LivenessInterval
	return p.ch.waitRing(ctx, []fencer{r}, []*futex.Event{r.NotFull()}, func() bool { return r.CanPut() || p.shut.Load() }, spin)
}

func (p *Publisher) wqErr(err error) error {
	if errors.Is(err, ring.ErrCorrupt) {
		return fmt.Errorf("%w: work queue: %w", ErrCorrupt, err)
	}
	return err
}

// wqPublish is Publish on a work queue; the caller has entered the channel.
func (p *Publisher) wqPublish(s *Sample) error {
	if p.shut.Load() {
		return ErrClosed // Close gives the loan up
	}
	h := s.wqp
	s.state = sampleDone
	p.wqStamp(s.chunk, s.seq, s.n)
	if err := h.Commit(wqHeader + s.n); err != nil {
		return p.wqErr(err)
	}
	at("publish.commit")
	p.wqUnloan(s.held)
	p.wqCount(s.n)
	return nil
}

// wqStamp writes the message header into slot (a slot's payload, whose
// message is n bytes at wqHeader) and copies the message's first bytes to
// the taps. The header is payload, like the message: written with plain
// stores while the producer owns the slot, published with it by the
// turn's release store (Commit), read by the one consumer that claims the
// slot after that, never written while anyone reads it.
func (p *Publisher) wqStamp(slot []byte, seq uint64, n int) {
	h, id := slot[:wqHeader:wqHeader], p.id()
	binary.LittleEndian.PutUint64(h[wqSeq:], seq)
	binary.LittleEndian.PutUint32(h[wqPublisher:], uint32(id))
	binary.LittleEndian.PutUint32(h[wqZero:], 0)
	if t := p.ch.tap; t != nil && t.active.Load() != 0 {
		t.copyOut(p.ch.cfg.pubIndex(p.slot), id, seq, slot[wqHeader:wqHeader+n])
	}
}

// wqUnloan returns loan handle i to the free list.
func (p *Publisher) wqUnloan(i int) {
	p.wq.loaned[i] = false
	p.wq.free = append(p.wq.free, i)
	p.unloan()
}

// wqCount counts a message of n bytes sent (owner-only counters: bump).
func (p *Publisher) wqCount(n int) {
	bump(p.cMsgs, 1)
	bump(p.cBytes, uint64(n))
	if p.nsent++; p.nsent >= activityEvery {
		p.nsent = 0
		u64(p.e, peActive).Store(uint64(time.Now().UnixNano()))
		p.ch.maybeScan()
	}
}

// wqDiscard is Discard on a work queue; the caller has entered the channel.
func (p *Publisher) wqDiscard(s *Sample) error {
	s.state = sampleDone
	if p.shut.Load() {
		return nil // Close gives the loan up
	}
	err := s.wqp.Abort()
	p.wqUnloan(s.held)
	return p.wqErr(err)
}

// wqSend is Send on a work queue; the caller has entered the channel.
func (p *Publisher) wqSend(ctx context.Context, msg []byte) error {
	n := len(msg)
	if err := p.checkLen(n); err != nil {
		return err
	}
	if p.shut.Load() {
		return ErrClosed
	}
	if ok, err := p.wqTrySend(msg); ok || err != nil {
		return err
	}
	return p.wqSendSlow(ctx, msg)
}

// wqTrySend puts msg into the queue if it has a free slot now.
func (p *Publisher) wqTrySend(msg []byte) (bool, error) {
	n := len(msg)
	b, ok, err := p.wq.send.TryReserve()
	if !ok {
		return false, p.wqErr(err)
	}
	at("send.reserve")
	p.seq++
	copy(b[wqHeader:wqHeader+n], msg)
	p.wqStamp(b, p.seq, n)
	if err := p.wq.send.Commit(wqHeader + n); err != nil {
		return false, p.wqErr(err)
	}
	p.wqCount(n)
	return true, nil
}

// wqSendSlow is wqSend once the queue was full: under DropNewest the
// message is dropped, else it waits for room (its defer lives here, off
// the fast path: busy.go).
func (p *Publisher) wqSendSlow(ctx context.Context, msg []byte) error {
	if p.ch.cfg.Policy == DropNewest {
		add64(u64(p.e, peDrops), 1)
		return nil
	}
	var since time.Time
	defer p.countBlocked(&since)
	for {
		if err := p.wqWaitRoom(ctx, &since); err != nil {
			return err
		}
		if p.shut.Load() {
			return ErrClosed
		}
		if ok, err := p.wqTrySend(msg); ok || err != nil {
			return err
		}
	}
}

// wqClose gives p's outstanding loans up (their positions become
// tombstones). The caller has set p.shut and waited for p's calls in
// flight (busy.quiesce); the claim records
// are freed when p leaves (cleanQueue).
func (p *Publisher) wqClose() {
	q := p.wq
	for i, l := range q.loaned {
		if l {
			_ = q.hs[i].Abort()
			q.smp[i].state = sampleDone
			q.loaned[i] = false
			q.free = append(q.free, i)
		}
	}
	p.loans.Store(0)
	p.storeLoans()
}

// --- consumer ---

// wqConsumer is a Consumer's side of the queue: the handles its held
// samples and ReceiveInto claim slots with; used as wqProducer is.
type wqConsumer struct {
	r    *ring.MPMC
	into *ring.MPMCConsumer   // ReceiveInto's handle
	hs   []*ring.MPMCConsumer // one per sample it may hold (MaxHeld)
	smp  []Sample             // the sample hs[i] holds (reused)
	free []int                // indices of hs not holding a sample
	held []bool
}

// joinQueue sets s up on the queue.
func (s *Subscriber) joinQueue(w uint64) error {
	r, err := s.ch.wqRing(logOwner(s.slot, w))
	if err != nil {
		return err
	}
	n := s.ch.cfg.MaxHeld
	q := &wqConsumer{r: r, into: r.Consumer(), smp: make([]Sample, n), held: make([]bool, n)}
	s.cMsgs, s.cBytes = u64(s.e, peMsgs), u64(s.e, peBytes)
	for i := range n {
		q.hs = append(q.hs, r.Consumer())
		q.free = append(q.free, n-1-i)
		q.smp[i] = Sample{sub: s, wqc: q.hs[i], held: i}
	}
	s.wq = q
	return nil
}

// wqTry takes the next message as a held sample, or returns nil, nil when
// the queue is empty. The caller has entered the channel.
func (s *Subscriber) wqTry() (*Sample, error) {
	q := s.wq
	if s.shut.Load() {
		return nil, ErrClosed
	}
	if len(q.free) == 0 {
		return nil, fmt.Errorf("%w: %d (MaxHeld)", ErrTooManyHeld, s.ch.cfg.MaxHeld)
	}
	i := q.free[len(q.free)-1]
	h := q.hs[i]
	b, ok, err := h.TryPeek()
	if !ok {
		return nil, s.wqErr(err)
	}
	at("receive.peek")
	n, seq, from, err := s.wqCheck(b)
	if err != nil {
		_ = h.Release()
		return nil, err
	}
	q.free = q.free[:len(q.free)-1]
	smp := &q.smp[i] // sub, wqc and held are set at join
	smp.data, smp.n, smp.seq, smp.from, smp.state = b[wqHeader:], n, seq, from, sampleReceived
	q.held[i] = true
	s.markHeld(i, seq, true)
	s.wqCount(n)
	return smp, nil
}

// wqCheck validates a slot's payload b (shared memory): its message
// length, number and publisher.
func (s *Subscriber) wqCheck(b []byte) (n int, seq uint64, from int, err error) {
	if len(b) < wqHeader {
		return 0, 0, 0, fmt.Errorf("%w: work queue message of %d bytes, under its %d-byte header", ErrCorrupt, len(b), wqHeader)
	}
	return len(b) - wqHeader, binary.LittleEndian.Uint64(b[wqSeq:]), int(binary.LittleEndian.Uint32(b[wqPublisher:])), nil
}

func (s *Subscriber) wqErr(err error) error {
	if err != nil && errors.Is(err, ring.ErrCorrupt) {
		return fmt.Errorf("%w: work queue: %w", ErrCorrupt, err)
	}
	return err
}

func (s *Subscriber) wqCount(n int) { s.count(1, n) }

// wqRelease is Release on a work queue: the slot is freed.
func (s *Subscriber) wqRelease(smp *Sample) error {
	smp.state = sampleDone
	if s.shut.Load() {
		return nil // released with the subscriber
	}
	err := smp.wqc.Release()
	at("release.free")
	s.wq.held[smp.held] = false
	s.wq.free = append(s.wq.free, smp.held)
	s.markHeld(smp.held, 0, false)
	return s.wqErr(err)
}

// wqInto takes the next message into buf (truncated; the message's length
// is returned) and frees its slot, reporting false when the queue is
// empty. The caller has entered the channel.
func (s *Subscriber) wqInto(buf []byte) (int, bool, error) {
	var info MessageInfo
	ok, err := s.wqIntoInfo(buf, &info)
	return info.Len, ok, err
}

// wqIntoInfo is wqInto that describes the message in *info.
func (s *Subscriber) wqIntoInfo(buf []byte, info *MessageInfo) (bool, error) {
	if s.shut.Load() {
		return false, ErrClosed
	}
	h := s.wq.into
	b, ok, err := h.TryPeek()
	if !ok {
		return false, s.wqErr(err)
	}
	n, seq, from, err := s.wqCheck(b)
	if err == nil {
		copy(buf, b[wqHeader:])
	}
	if rerr := h.Release(); err == nil {
		err = s.wqErr(rerr)
	}
	if err != nil {
		return false, err
	}
	*info = MessageInfo{Len: n, Publisher: from, Seq: seq}
	s.wqCount(n)
	return true, nil
}

// wqBatch is ReceiveBatch on a work queue: it waits for the first message
// as ReceiveInto does, then takes what else is queued now, each copied and
// its slot freed at once. The caller has entered the channel (or holds the
// busy mark).
func (s *Subscriber) wqBatch(ctx context.Context, bufs [][]byte, infos []MessageInfo) (int, error) {
	var since time.Time
	defer func() {
		if !since.IsZero() {
			add64(u64(s.e, peBlocked), uint64(time.Since(since)))
		}
	}()
	for {
		ok, err := s.wqIntoInfo(bufs[0], &infos[0])
		if err != nil {
			return 0, err
		}
		if ok {
			break
		}
		if err := s.wqWait(ctx, &since); err != nil {
			return 0, err
		}
	}
	got := 1
	for got < len(bufs) {
		ok, err := s.wqIntoInfo(bufs[got], &infos[got])
		if err != nil || !ok {
			return got, err
		}
		got++
	}
	return got, nil
}

// wqWait waits until the queue may hold a message, waiting as Receive
// says (the publishers gone: ErrPeerGone).
func (s *Subscriber) wqWait(ctx context.Context, since *time.Time) error {
	r := s.ch.wq
	for range receivePolls {
		if r.CanGet() {
			return nil
		}
	}
	if s.peerGone() {
		return ErrPeerGone
	}
	if since.IsZero() {
		*since = time.Now()
	}
	s.ch.maybeScan()
	spin := time.Since(*since) < s.ch.cfg.LivenessInterval
	return s.ch.waitRing(ctx, []fencer{r}, []*futex.Event{r.NotEmpty()}, func() bool { return r.CanGet() || s.shut.Load() }, spin)
}

// wqReceive is Receive (into nil buf) or ReceiveInto on a work queue; the
// caller has entered the channel.
func (s *Subscriber) wqReceive(ctx context.Context, buf []byte, into bool) (*Sample, int, error) {
	var since time.Time
	defer func() {
		if !since.IsZero() {
			add64(u64(s.e, peBlocked), uint64(time.Since(since)))
		}
	}()
	for {
		if into {
			n, ok, err := s.wqInto(buf)
			if ok || err != nil {
				return nil, n, err
			}
		} else {
			smp, err := s.wqTry()
			if smp != nil || err != nil {
				return smp, 0, err
			}
		}
		if err := s.wqWait(ctx, &since); err != nil {
			return nil, 0, err
		}
	}
}

// wqClose frees the slots of s's held samples. The caller has set s.shut
// and waited for s's calls in flight (busy.quiesce).
func (s *Subscriber) wqClose() {
	q := s.wq
	for i, h := range q.held {
		if h {
			// The sample stays "received": its Release after Close
			// returns nil (released with the subscriber), as on pub/sub.
			_ = q.hs[i].Release()
			q.held[i] = false
			q.free = append(q.free, i)
			s.markHeld(i, 0, false)
		}
	}
}

// markHeld records in s's entry whether it holds a sample with handle i
// (the word: the message's number with bit 63 set, or 0), for Stats and
// shmctl (ParticipantStats.Held).
func (s *Subscriber) markHeld(i int, seq uint64, held bool) {
	v := uint64(0)
	if held {
		v = seq | 1<<63
	}
	if i < heldSlots {
		atomicx.StoreRelease64(u64(s.e, peHeld+8*i), v)
	}
}

// wqEmpty reports whether the queue holds no message now.
func (ch *Channel) wqEmpty() bool { return ch.wq.Len() == 0 }

// The work queue's calls with the handle's busy mark held, for the slow
// paths (a Channel another user may truncate: fault.go). They are
// functions of their own so that the callers' fast paths keep their
// defers open-coded (a function with many defers and returns makes every
// defer a slow one, which the fast path would pay for at each return).

func (p *Publisher) wqLoanMarked(ctx context.Context, n int) (*Sample, error) {
	p.busy.enter()
	defer p.busy.exit()
	return p.wqLoan(ctx, n)
}

func (p *Publisher) wqPublishMarked(s *Sample) error {
	p.busy.enter()
	defer p.busy.exit()
	return p.wqPublish(s)
}

func (p *Publisher) wqSendMarked(ctx context.Context, msg []byte) error {
	p.busy.enter()
	defer p.busy.exit()
	return p.wqSend(ctx, msg)
}

func (s *Subscriber) wqTryMarked() (*Sample, error) {
	s.busy.enter()
	defer s.busy.exit()
	return s.wqTry()
}

func (s *Subscriber) wqReceiveMarked(ctx context.Context, buf []byte, into bool) (*Sample, int, error) {
	s.busy.enter()
	defer s.busy.exit()
	return s.wqReceive(ctx, buf, into)
}

func (s *Subscriber) wqReleaseMarked(smp *Sample) error {
	s.busy.enter()
	defer s.busy.exit()
	return smp.release()
}
