package shmkit

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/shmkit/shmkit/futex"
	"github.com/shmkit/shmkit/ring"
)

// The pub/sub data path: one ring.Log per publisher slot in the channel's
// "rings" region (kind LOGS). Publisher slot j appends to log j alone;
// subscriber slot k reads every log through reader slot k of each, in
// place, and publishes its position in each log once per batch in a cache
// line only it writes (docs/channels.md, "Data path").

var kindLogs = ring.KindLog

// logBytes is the record capacity of each publisher's log: room for
// RingDepth records of up to 224 payload bytes (256-byte records), for two
// records of MaxMessage (a record takes at most half a log), and for
// min(RingDepth, 8) records of MaxMessage where that stays within MaxLog,
// rounded up to a power of two. (The last rule is for large messages: a
// log of two or three of them made a stream whose consumer stalls now and
// then alternate between parked sides, two wake-ups for every two or three
// messages; docs/benchmarks.md, "1 MiB zero copy". It adds nothing at
// the defaults.)
func logBytes(c Config) int {
	rec := uint64(align32(c.MaxMessage)) + 32 // one record of MaxMessage
	n := max(uint64(ring.MinLog), uint64(c.RingDepth)*256, 2*(rec+32))
	n = max(n, min(uint64(min(c.RingDepth, 8))*rec, ring.MaxLog))
	if n > ring.MaxLog {
		return ring.MaxLog + 1 // refused by validate
	}
	return 1 << bits.Len64(n-1)
}

func align32(n int) int { return (n + 31) &^ 31 }

// logSize is the size of one publisher's log region.
func logSize(c Config) int {
	n, _ := ring.LogSize(logBytes(c), c.MaxSubscribers)
	return n
}

func logPolicy(p Policy) ring.LogPolicy {
	switch p {
	case DropNewest:
		return ring.LogDropNewest
	case DropOldest:
		return ring.LogDropOldest
	}
	return ring.LogBlock
}

// setupLogs makes (create) or attaches the publishers' logs in the rings
// region mem.
func (ch *Channel) setupLogs(mem []byte, create bool) error {
	c := ch.cfg
	ls, capacity := logSize(c), logBytes(c)
	ro, err := ch.ringsView(len(mem))
	if err != nil {
		return err
	}
	for j := range c.MaxPublishers {
		m := mem[j*ls : (j+1)*ls : (j+1)*ls]
		var view ring.Option
		if ro != nil {
			view = ring.WithReadView(ro[j*ls : (j+1)*ls : (j+1)*ls])
		}
		var l *ring.Log
		var err error
		if create {
			l, err = ring.NewLog(m, capacity, c.MaxSubscribers, logPolicy(c.Policy), view)
		} else {
			l, err = ring.AttachLog(m, view)
			if err == nil && (l.Cap() != capacity || l.Readers() != c.MaxSubscribers || l.Policy() != logPolicy(c.Policy)) {
				err = fmt.Errorf("%w: log %d of %d bytes, %d readers, policy %v; the header says %d, %d, %v",
					ErrCorrupt, j, l.Cap(), l.Readers(), l.Policy(), capacity, c.MaxSubscribers, logPolicy(c.Policy))
			}
		}
		if err != nil {
			if errors.Is(err, ring.ErrCorrupt) || errors.Is(err, ring.ErrBadMagic) || errors.Is(err, ring.ErrVersion) {
				err = fmt.Errorf("%w: publisher log %d: %w", ErrCorrupt, j, err)
			}
			return err
		}
		ch.logs = append(ch.logs, l)
	}
	return nil
}

// owner is the reader identity a subscriber's slots carry in every log:
// its participant slot and the slot's generation, so the cleaner of a dead
// subscriber frees exactly its incarnation's slots.
func logOwner(slot int, w uint64) uint32 { return uint32(slot) | uint32(psGen(w))<<16 }

// --- publisher ---

// pubIndex is the index of publisher participant slot i among the
// publishers: the log it writes.
func (c Config) pubIndex(i int) int { return i - c.MaxSubscribers }

// joinLog starts p on its slot's log: a fresh writer handle resumed from
// the shared tail (a predecessor's stuck claim was closed off by the
// cleaner before the slot was freed).
func (p *Publisher) joinLog() error {
	l := p.ch.logs[p.ch.cfg.pubIndex(p.slot)]
	if _, err := l.Recover(); err != nil { // a no-op after a clean leave
		return fmt.Errorf("%w: publisher log: %w", ErrCorrupt, err)
	}
	p.log, p.lw = l, l.TakeOver()
	p.cMsgs, p.cBytes = u64(p.e, peMsgs), u64(p.e, peBytes)
	return nil
}

// tagLog makes every record p writes carry its slot's generation (the
// record's meta word), once p knows it: Sample.Publisher of each message
// names the publisher that wrote it, even after its slot changed hands.
func (p *Publisher) tagLog() {
	if p.lw != nil {
		p.meta = uint32(psGen(p.w))
		p.lw.SetTag(0, p.meta)
	}
}

// logLoan claims room for n bytes in p's log; with ctx non-nil it waits for
// room (every policy but DropOldest can be full), else it reports
// ErrNoMemory at once. The sample is p's one loan sample: one loan at a
// time (ErrSampleState while one is pending).
func (p *Publisher) logLoan(ctx context.Context, n int) (*Sample, error) {
	if err := p.checkLen(n); err != nil {
		return nil, err
	}
	if p.loaned {
		return nil, fmt.Errorf("%w: a pub/sub publisher has one loan at a time (its log's records are committed in order): Publish or Discard it first", ErrTooManyLoans)
	}
	if p.shut.Load() {
		return nil, ErrClosed
	}
	s := &p.loanSmp
	if p.ch.cfg.Policy == DropNewest {
		// Never waits: with no room the message is written into a
		// private buffer and dropped at Publish (counted there).
		b, ok, err := p.lw.TryClaim(n)
		if err != nil {
			return nil, p.logErr(err)
		}
		if !ok {
			if p.scratch == nil {
				p.scratch = make([]byte, p.ch.cfg.MaxMessage)
			}
			*s = Sample{pub: p, data: p.scratch[:n], n: n, state: sampleLoaned, from: p.id(), seq: p.lw.Seq() + 1}
			p.loaned, p.dropLoan = true, true
			return s, nil
		}
		at("loan.claim")
		*s = Sample{pub: p, data: b, n: n, state: sampleLoaned, from: p.id(), seq: p.lw.Seq() + 1}
		p.loaned = true
		return s, nil
	}
	b, err := p.claim(ctx, n)
	if err != nil {
		return nil, err
	}
	at("loan.claim")
	*s = Sample{pub: p, data: b, n: n, state: sampleLoaned, from: p.id(), seq: p.lw.Seq() + 1}
	p.loaned = true
	return s, nil
}

// claim claims room for n bytes: at once, or waiting while ctx allows
// (ctx nil: ErrNoMemory when there is none).
func (p *Publisher) claim(ctx context.Context, n int) ([]byte, error) {
	for {
		b, ok, err := p.lw.TryClaim(n)
		if ok {
			return b, nil
		}
		if err != nil {
			return nil, p.logErr(err)
		}
		if ctx == nil {
			return nil, fmt.Errorf("%w: the log is full (the slowest subscriber is a log behind)", ErrNoMemory)
		}
		if err := p.waitRoom(ctx, n); err != nil {
			return nil, err
		}
	}
}

func (p *Publisher) logErr(err error) error {
	switch {
	case errors.Is(err, ring.ErrCorrupt):
		return fmt.Errorf("%w: publisher log: %w", ErrCorrupt, err)
	case errors.Is(err, ring.ErrTooLarge):
		return fmt.Errorf("%w: %w", ErrTooLarge, err)
	case errors.Is(err, ring.ErrOrder):
		return fmt.Errorf("%w: %w", ErrSampleState, err)
	}
	return err
}

// waitRoom waits until a claim of n bytes finds room, ctx ends or the
// channel closes; it counts the time as blocked.
func (p *Publisher) waitRoom(ctx context.Context, n int) error {
	// A burst of polls before the clock is read, as waitData does (a
	// subscriber a message behind frees room within a few hundred ns).
	for range receivePolls {
		if p.lw.Room(n) {
			return nil
		}
	}
	since := time.Now()
	defer func() { add64(u64(p.e, peBlocked), uint64(time.Since(since))) }()
	ev := p.log.NotFull()
	for spin := true; ; spin = time.Since(since) < p.ch.cfg.LivenessInterval {
		if p.lw.Room(n) {
			return nil
		}
		if p.shut.Load() {
			return ErrClosed
		}
		p.ch.maybeScan()
		err := p.ch.waitRing(ctx, []fencer{p.log}, []*futex.Event{ev}, func() bool { return p.lw.Room(n) || p.shut.Load() }, spin)
		if err != nil {
			return err
		}
	}
}

// logCommit publishes the pending claim as a message of n bytes: one
// release store in the log, then the counters and a tap's copy.
func (p *Publisher) logCommit(n int, data []byte) error {
	if p.dropLoan {
		p.dropLoan = false
		p.drop()
		return nil
	}
	at("publish.commit")
	if err := p.lw.Commit(n, 0, p.meta); err != nil {
		return p.logErr(err)
	}
	at("publish.committed")
	p.afterPublish(data[:n], 1)
	return nil
}

// afterPublish counts k messages (the last of them data) and copies it to
// a tap when one is attached.
func (p *Publisher) afterPublish(data []byte, k int) {
	ch := p.ch
	if t := ch.tap; t != nil && t.active.Load() != 0 {
		t.copyOut(ch.cfg.pubIndex(p.slot), p.id(), p.lw.Seq(), data)
	}
	bump(p.cMsgs, uint64(k))
	bump(p.cBytes, uint64(len(data)))
	if p.nsent += uint64(k); p.nsent >= activityEvery {
		p.nsent = 0
		u64(p.e, peActive).Store(uint64(time.Now().UnixNano()))
		ch.maybeScan()
	}
}

// logSend is Send on a pub/sub channel: claim (by policy), copy, commit.
func (p *Publisher) logSend(ctx context.Context, msg []byte) error {
	n := len(msg)
	if uint(n) > uint(p.ch.cfg.MaxMessage) {
		return p.checkLen(n)
	}
	if p.loaned {
		return fmt.Errorf("%w: a loan is pending: Publish or Discard it first", ErrSampleState)
	}
	// The caller has checked p.shut after entering (Send).
	at("publish.commit")
	ok, err := p.lw.Append(msg, p.meta)
	if ok {
		at("publish.committed")
		if t := p.ch.tap; (t != nil && t.active.Load() != 0) || p.nsent >= activityEvery-1 {
			p.afterPublish(msg, 1)
			return nil
		}
		// afterPublish's common case, inline.
		p.nsent++
		bump(p.cMsgs, 1)
		bump(p.cBytes, uint64(n))
		return nil
	}
	if err != nil {
		return p.logErr(err)
	}
	if p.ch.cfg.Policy == DropNewest {
		p.drop()
		return nil
	}
	b, err := p.claim(ctx, n)
	if err != nil {
		return err
	}
	copy(b, msg)
	return p.logCommit(n, b)
}

// drop gives up a message under DropNewest: its number is used up, so
// every subscriber counts it in the next message's Missed.
func (p *Publisher) drop() {
	p.lw.Drop()
	p.seq = p.lw.Seq()
	add64(u64(p.e, peDrops), 1)
}

// --- subscriber ---

// joinLogs joins every publisher log at reader slot s.slot; the reader
// lines left by a dead predecessor were freed by its cleaner.
func (s *Subscriber) joinLogs(w uint64) error {
	owner := logOwner(s.slot, w)
	s.readers = make([]*ring.LogReader, len(s.ch.logs))
	for j, l := range s.ch.logs {
		// A line still held (a predecessor whose cleaner has not run, or
		// a corrupt word) is freed first: the slot is ours now.
		if st, err := l.Reader(s.slot); err != nil || st.Active {
			if err == nil {
				l.RemoveReaders(st.Owner)
			}
		}
		r, err := l.JoinAt(s.slot, owner)
		if err != nil {
			for _, r := range s.readers[:j] {
				r.Close()
			}
			return fmt.Errorf("%w: subscriber line %d of log %d: %w", ErrCorrupt, s.slot, j, err)
		}
		s.readers[j] = r
	}
	s.events = make([]*futex.Event, len(s.ch.logs))
	s.fencers = make([]fencer, len(s.ch.logs))
	for j, l := range s.ch.logs {
		s.events[j] = l.NotEmpty()
		s.fencers[j] = l
	}
	s.cMsgs, s.cBytes = u64(s.e, peMsgs), u64(s.e, peBytes)
	s.samples = make([]Sample, s.ch.cfg.MaxHeld)
	s.free = make([]int, 0, len(s.samples))
	for i := len(s.samples) - 1; i >= 0; i-- {
		s.free = append(s.free, i)
	}
	return nil
}

// logTry returns the next message of any publisher's log, held (its log
// position pinned) until Release; nil when there is none.
func (s *Subscriber) logTry() (*Sample, error) {
	if len(s.free) == 0 {
		return nil, fmt.Errorf("%w: %d (Config.MaxHeld)", ErrTooManyHeld, len(s.samples))
	}
	for {
		j := s.pick()
		if j < 0 {
			return nil, nil
		}
		r := s.readers[j]
		rec, ok, err := r.TryNext()
		if err != nil {
			return nil, s.readErr(j, err)
		}
		if !ok {
			s.skip(j)
			continue
		}
		at("receive.take")
		s.took(j)
		h := s.free[len(s.free)-1]
		s.free = s.free[:len(s.free)-1]
		smp := &s.samples[h]
		*smp = Sample{sub: s, data: rec.Data, n: len(rec.Data), held: h, state: sampleReceived,
			seq: rec.Seq + 1, from: j | int(rec.Meta)<<8, missed: rec.Missed, log: j, pos: rec.Pos, end: rec.End}
		s.nheld++
		s.heldIn[j]++
		if h < heldSlots {
			add64(u64(s.e, peHeld+8*h), rec.Pos+1) // for Stats (the word was 0)
		}
		s.noteMissed(rec.Missed)
		s.count(1, len(rec.Data))
		return smp, nil
	}
}

// burstLimit is how many messages in a row a subscriber takes from one
// publisher's log before it looks at the next (fairness among publishers;
// staying costs nothing, moving on costs a poll of each empty log).
const burstLimit = 64

// pick returns the log to take from: the current one while it has
// something (up to burstLimit in a row), else the next that has; -1 when
// none has. A log is polled by one load of its record word (Ready).
func (s *Subscriber) pick() int {
	k := len(s.readers)
	j := s.rr
	for range k {
		if s.readers[j].Ready() {
			if j != s.rr {
				s.rr, s.burst = j, 0
			}
			return j
		}
		if j++; j == k {
			j = 0
		}
	}
	return -1
}

// took counts a message from log j; after burstLimit the next pick starts
// at the next log.
func (s *Subscriber) took(j int) {
	if s.burst++; s.burst >= burstLimit {
		s.burst = 0
		if s.rr = j + 1; s.rr == len(s.readers) {
			s.rr = 0
		}
	}
}

// skip moves past log j, ready but with nothing for a message (padding,
// or a record it had to step over).
func (s *Subscriber) skip(j int) {
	s.burst = 0
	if s.rr = j + 1; s.rr == len(s.readers) {
		s.rr = 0
	}
}

func (s *Subscriber) readErr(j int, err error) error {
	if errors.Is(err, ring.ErrCorrupt) {
		return fmt.Errorf("%w: publisher log %d: %w", ErrCorrupt, j, err)
	}
	if errors.Is(err, ring.ErrClosed) {
		return nil // a closed log has nothing more; not this subscriber's end
	}
	return err
}

// bump adds d to a counter only its owner writes and others only read
// (Stats): a plain add where a 64-bit store is atomic, else add64's
// load and release store.
func bump(p *atomic.Uint64, d uint64) {
	if wordIs64 && !raceEnabled {
		*(*uint64)(unsafe.Pointer(p)) += d
		return
	}
	add64(p, d)
}

const wordIs64 = bits.UintSize == 64

// noteMissed adds messages this subscriber missed to its shared counter
// (Stats: Missed).
func (s *Subscriber) noteMissed(n uint64) {
	if n != 0 {
		add64(u64(s.e, peMissed), n)
	}
}

func (s *Subscriber) count(k, bytes int) {
	bump(s.cMsgs, uint64(k))
	bump(s.cBytes, uint64(bytes))
	if s.nrecv += uint64(k); s.nrecv >= activityEvery {
		s.active()
	}
}

// count and active are written inline in logInto's common case: count
// does not inline.

// active stamps the subscriber's activity word (every activityEvery
// messages) and lets the channel scan for dead participants.
func (s *Subscriber) active() {
	s.nrecv = 0
	u64(s.e, peActive).Store(uint64(time.Now().UnixNano()))
	s.ch.maybeScan()
}

// logRelease releases a held sample: its log's position moves to the
// oldest record still held there (or the cursor). Out of order is fine.
// Under DropOldest it reports ErrOverrun when the publisher may have
// overwritten the sample's bytes while it was held.
func (s *Subscriber) logRelease(smp *Sample) error {
	j := smp.log
	r := s.readers[j]
	var err error
	if s.ch.cfg.Policy == DropOldest && !r.Intact(ring.LogRecord{Pos: smp.pos}) {
		err = fmt.Errorf("%w: message %d of publisher %#x", ErrOverrun, smp.seq, smp.from)
	}
	smp.state = sampleDone
	if smp.held < heldSlots {
		u64(s.e, peHeld+8*smp.held).Store(0)
	}
	s.free = append(s.free, smp.held)
	s.nheld--
	s.heldIn[j]--
	at("release.clear")
	s.advance(j)
	return err
}

// advance publishes reader j's position: the oldest record it still holds,
// else its cursor.
func (s *Subscriber) advance(j int) {
	r := s.readers[j]
	pos := r.Cursor()
	if s.heldIn[j] > 0 {
		for i := range s.samples {
			if smp := &s.samples[i]; smp.state == sampleReceived && smp.log == j && smp.pos < pos {
				pos = smp.pos
			}
		}
	}
	if pos > r.Position() {
		_ = r.Release(pos)
	}
}

// logInto receives the next message into buf without holding it (the
// copy is checked against an overwrite under DropOldest: a message
// overwritten while copied counts as missed and the next one is taken).
func (s *Subscriber) logInto(buf []byte) (n int, got bool, err error) {
	// The common case first: the log picked last has the next message
	// (what pick would return), copied by CopyFast.
	j := s.rr
	r := s.readers[j]
	if m, seq, meta, ok := r.CopyFast(buf); ok {
		s.took(j)
		s.lastMissed, s.lastSeq, s.lastFrom = 0, seq+1, j|int(meta)<<8
		if s.nheld == 0 || s.heldIn[j] == 0 {
			r.ReleaseCursor()
		}
		// count(1, m), inline.
		bump(s.cMsgs, 1)
		bump(s.cBytes, uint64(m))
		if s.nrecv++; s.nrecv >= activityEvery {
			s.active()
		}
		return m, true, nil
	}
	return s.logIntoSlow(buf)
}

// logIntoSlow is logInto past its common case.
func (s *Subscriber) logIntoSlow(buf []byte) (n int, got bool, err error) {
	for tries := 0; tries <= len(s.readers); tries++ {
		j := s.pick()
		if j < 0 {
			return 0, false, nil
		}
		r := s.readers[j]
		m, seq, meta, missed, ok, err := r.CopyNext(buf)
		if err != nil && errors.Is(err, ring.ErrShortBuffer) {
			// Longer than buf: ReceiveInto truncates (and returns the
			// message's length).
			rec, got, err2 := r.TryNext()
			if err2 != nil || !got {
				return 0, false, s.readErr(j, err2)
			}
			copy(buf, rec.Data)
			if s.ch.cfg.Policy == DropOldest && !r.Intact(rec) {
				s.lost++
				continue
			}
			m, seq, meta, missed, ok, err = len(rec.Data), rec.Seq, rec.Meta, rec.Missed, true, nil
		}
		if err != nil {
			return 0, false, s.readErr(j, err)
		}
		if !ok {
			s.skip(j)
			continue
		}
		s.took(j)
		if missed != 0 {
			s.noteMissed(missed)
		}
		s.lastMissed, s.lastSeq, s.lastFrom = missed, seq+1, j|int(meta)<<8
		if s.heldIn[j] == 0 {
			r.ReleaseCursor()
		}
		s.count(1, m)
		return m, true, nil
	}
	return 0, false, nil
}

// logReady reports whether any log has a record at this subscriber's
// cursor (or it must look: lapped, closed).
func (s *Subscriber) logReady() bool {
	for _, r := range s.readers {
		if r.Ready() {
			return true
		}
	}
	return false
}

// logDrained reports whether every log is read up to its tail.
func (s *Subscriber) logDrained() bool {
	for j, r := range s.readers {
		if r.Cursor() < s.ch.logs[j].Tail() || r.Ready() {
			return false
		}
	}
	return true
}

// logBatch takes up to len(bufs) messages from the logs, in place of
// TryNext per message and one position store per log touched.
func (s *Subscriber) logBatch(bufs [][]byte, infos []MessageInfo) (int, error) {
	got := 0
	k := len(s.readers)
	var missed uint64
	for i := 0; i < k && got < len(bufs); i++ {
		j := s.rr + i
		if j >= k {
			j -= k
		}
		r := s.readers[j]
		if !r.Ready() {
			continue // one load for an empty log
		}
		took := 0
		bytes := 0
		for got < len(bufs) {
			if m, seq, meta, ok := r.CopyFast(bufs[got]); ok {
				infos[got] = MessageInfo{Len: m, Publisher: j | int(meta)<<8, Seq: seq + 1}
				bytes += m
				got++
				took++
				continue
			}
			m, seq, meta, miss, ok, err := r.CopyNext(bufs[got])
			l := m
			if err != nil && errors.Is(err, ring.ErrShortBuffer) {
				// Longer than its buffer: truncated, as ReceiveInto does.
				rec, ok2, err2 := r.TryNext()
				if err2 != nil || !ok2 {
					return got, s.readErr(j, err2)
				}
				m = copy(bufs[got], rec.Data)
				if s.ch.cfg.Policy == DropOldest && !r.Intact(rec) {
					s.lost++
					continue
				}
				miss, ok, err = rec.Missed, true, nil
				seq, meta, l = rec.Seq, rec.Meta, len(rec.Data)
			}
			if err != nil {
				return got, s.readErr(j, err)
			}
			if !ok {
				break
			}
			infos[got] = MessageInfo{Len: l, Publisher: j | int(meta)<<8, Seq: seq + 1, Missed: miss}
			missed += miss
			bytes += min(m, len(bufs[got]))
			got++
			took++
		}
		if took > 0 {
			if s.heldIn[j] == 0 {
				r.ReleaseCursor()
			}
			s.count(took, bytes)
		}
	}
	s.rr++
	if s.rr >= k {
		s.rr = 0
	}
	s.lastMissed = missed
	s.noteMissed(missed)
	return got, nil
}

// waitData waits until some log has a record for this subscriber, every
// publisher is gone and the logs are drained (ErrPeerGone), ctx ends, or
// the channel closes.
func (s *Subscriber) waitData(ctx context.Context) error {
	// A burst of polls first, before the clock is read: in a stream the
	// next message is often a few hundred nanoseconds away, and two clock
	// reads cost more than a message (a wait this short is not counted
	// in Stats.Blocked).
	for range receivePolls {
		if s.logReady() {
			return nil
		}
	}
	since := time.Now()
	defer func() { add64(u64(s.e, peBlocked), uint64(time.Since(since))) }()
	for spin := true; ; spin = time.Since(since) < s.ch.cfg.LivenessInterval {
		if s.logReady() {
			return nil
		}
		if s.peerGone() {
			return ErrPeerGone
		}
		if s.shut.Load() {
			return ErrClosed
		}
		s.ch.maybeScan()
		if err := s.ch.waitRing(ctx, s.fencers, s.events, func() bool { return s.logReady() || s.shut.Load() }, spin); err != nil {
			return err
		}
	}
}

// cleanSubscriberLogs frees the reader lines of dead subscriber slot i
// (state word w) in every log, waking publishers blocked on it.
func (ch *Channel) cleanSubscriberLogs(i int, w uint64) {
	owner := logOwner(i, w)
	for _, l := range ch.logs {
		l.RemoveReaders(owner)
	}
}

// cleanPublisherLog closes off a claim dead publisher slot i left in its
// log (a padding record over it), so subscribers move past it.
func (ch *Channel) cleanPublisherLog(i int) {
	if l := ch.logs[ch.cfg.pubIndex(i)]; l != nil {
		_, _ = l.Recover()
		l.NotEmpty().Notify()
	}
}

// inspectLogs reports, for each subscriber slot, the messages it has not
// released yet in all publishers' logs (those between its position and the
// tail: unread, or held) from a copy of the rings region. Every word is
// checked as a reader would; the walk is bounded by the log's size.
func inspectLogs(mem []byte, c Config) ([]RingStats, error) {
	ls, capacity := logSize(c), uint64(logBytes(c))
	const ctl, line, hdr = 320, 64, 32
	var firstErr error
	fail := func(err error) {
		if firstErr == nil {
			firstErr = err
		}
	}
	out := make([]RingStats, c.MaxSubscribers)
	for k := range out {
		out[k] = RingStats{Ring: k, Depth: c.RingDepth, Closed: true}
	}
	for j := range c.MaxPublishers {
		if (j+1)*ls > len(mem) {
			fail(fmt.Errorf("%w: rings region of %d bytes holds no log %d", ErrCorrupt, len(mem), j))
			break
		}
		lm := mem[j*ls : (j+1)*ls]
		tail := u64(lm, 64).Load()
		data := lm[ctl+line*c.MaxSubscribers:]
		for k := range out {
			tag := u64(lm, ctl+line*k).Load()
			if tag&0xff == 0 {
				continue
			}
			if tag&0xff > 2 {
				fail(fmt.Errorf("%w: log %d reader %d state %#x", ErrCorrupt, j, k, tag&0xff))
				continue
			}
			out[k].Closed = false
			p := u64(lm, ctl+line*k+8).Load()
			if p > tail || tail-p > capacity {
				fail(fmt.Errorf("%w: log %d reader %d at %d, tail %d", ErrCorrupt, j, k, p, tail))
				continue
			}
			for steps := uint64(0); p < tail && steps <= capacity/hdr; steps++ {
				off := p & (capacity - 1)
				if u64(data, int(off)).Load() != p+1 {
					break // not committed yet
				}
				size := uint64(u32(data, int(off)+20).Load())
				typ := uint16(u32(data, int(off)+24).Load())
				if size < hdr || size%hdr != 0 || size > capacity-off {
					fail(fmt.Errorf("%w: log %d record at %d of size %d", ErrCorrupt, j, p, size))
					break
				}
				if typ == 1 {
					out[k].Len++
				}
				p += size
			}
		}
	}
	return out, firstErr
}
