package ring

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/shmkit/shmkit/futex"
	"github.com/shmkit/shmkit/internal/atomicx"
)

// KindLog is the region kind of a log: the bytes "LOGS".
const KindLog uint32 = 'L' | 'O'<<8 | 'G'<<16 | 'S'<<24

// MinLog and MaxLog bound a log's capacity in bytes; MaxLogReaders bounds
// its reader slots.
const (
	MinLog        = 1024
	MaxLog        = 1 << 30
	MaxLogReaders = 1 << 16
)

// LogPolicy says what a log's writer does when the slowest reader is a
// whole log behind it.
type LogPolicy uint8

const (
	// LogBlock: Claim waits (TryClaim reports no room) until the slowest
	// reader moves on. No reader ever misses a record.
	LogBlock LogPolicy = 1
	// LogDropNewest: as LogBlock for the ring; the caller is expected to
	// drop the message it could not claim room for (TryClaim).
	LogDropNewest LogPolicy = 2
	// LogDropOldest: the writer never waits; a reader it laps skips to the
	// oldest intact lap and counts exactly what it missed.
	LogDropOldest LogPolicy = 3
)

func (p LogPolicy) String() string {
	switch p {
	case LogBlock:
		return "block"
	case LogDropNewest:
		return "drop-newest"
	case LogDropOldest:
		return "drop-oldest"
	}
	return fmt.Sprintf("LogPolicy(%d)", uint8(p))
}

// Log is a single-writer, multi-reader log of variable-length records in a
// shared region, after Aeron's log buffers: the writer appends records
// (claim, write in place, commit with one release store of the record's
// position word); every reader reads every record in place, keeps its
// cursor private and publishes its position (everything below is
// consumed) in a cache line only it writes, once per batch. The writer
// reads the readers' positions only when its cached limit says the log is
// full. docs/ring.md ("Log") has the layout and the argument.
//
// The region holds the control block, the reader slots and the data.
// A Log value and its handles are valid while the region stays mapped.
type Log struct {
	c          *control
	data       []byte
	base       unsafe.Pointer // &data[0]
	slots      []logSlot
	capacity   uint64
	mask       uint64
	maxPayload uint64
	policy     LogPolicy
	opts       options
	w          *LogWriter
	rdata      []byte // data as readers' payload slices show it (WithReadView)
}

// logSlot is one reader's line.
type logSlot struct {
	tag atomic.Uint64 // owner<<32 | generation<<8 | state
	pos atomic.Uint64 // every record below it is consumed by this reader
	_   [cacheLine - 16]byte
}

// Reader slot states (low byte of tag).
const (
	logSlotFree    = 0
	logSlotJoining = 1
	logSlotActive  = 2
)

// logSeqOff is the offset, in the control block, of the writer's claimed
// message count (on the tail's line; see docs/ring.md).
const (
	logSeqWordOff = offTail + 8
	logVerWordOff = offTail + 16 // seqlock over tail and claimed, for joiners
)

// logFlagAbort marks a padding record that takes the place of a message
// number: an aborted claim, or a claim closed off by Recover. Readers move
// their expected number to the padding's seq without counting a miss.
const logFlagAbort = 1

func logParams(capacity, readers int, policy LogPolicy) (params, error) {
	if capacity < MinLog || capacity > MaxLog || !isPow2(uint64(capacity)) {
		return params{}, fmt.Errorf("%w: log capacity %d is not a power of two in [%d, %d]", ErrConfig, capacity, MinLog, MaxLog)
	}
	if readers < 1 || readers > MaxLogReaders {
		return params{}, fmt.Errorf("%w: log readers %d not in [1, %d]", ErrConfig, readers, MaxLogReaders)
	}
	if policy < LogBlock || policy > LogDropOldest {
		return params{}, fmt.Errorf("%w: log policy %d", ErrConfig, policy)
	}
	return params{
		kind:     KindLog,
		slotSize: uint32(readers) | uint32(policy)<<24,
		capacity: uint64(capacity),
		size:     dataOffset + uint64(readers)*cacheLine + uint64(capacity),
	}, nil
}

// LogSize returns the bytes a log of capacityBytes of records (a power of
// two in [MinLog, MaxLog]) with the given reader slots occupies.
func LogSize(capacityBytes, readers int) (int, error) {
	p, err := logParams(capacityBytes, readers, LogBlock)
	if err != nil {
		return 0, err
	}
	return int(p.size), nil
}

// NewLog initialises an empty log at the start of mem, which must be
// 64-byte aligned and at least LogSize(capacityBytes, readers) long.
func NewLog(mem []byte, capacityBytes, readers int, policy LogPolicy, opts ...Option) (*Log, error) {
	p, err := logParams(capacityBytes, readers, policy)
	if err != nil {
		return nil, err
	}
	if err := checkRegion(mem, p.size); err != nil {
		return nil, err
	}
	clear(mem[dataOffset:p.size])
	o := applyOptions(opts)
	c := initControl(mem, p)
	if err := checkView(mem, p.size, o.view, true); err != nil {
		return nil, err
	}
	return newLog(mem, c, p, o), nil
}

// AttachLog returns the log initialised at the start of mem, after
// validating its header.
func AttachLog(mem []byte, opts ...Option) (*Log, error) {
	c, p, err := attachControl(mem, KindLog)
	if err != nil {
		return nil, err
	}
	readers := int(p.slotSize & 0xffffff)
	policy := LogPolicy(p.slotSize >> 24)
	want, err := logParams(int(min(p.capacity, MaxLog+1)), readers, policy)
	if err != nil {
		return nil, fmt.Errorf("%w: header: %w", ErrCorrupt, err)
	}
	if want.size != p.size {
		return nil, fmt.Errorf("%w: log header size %d, geometry needs %d", ErrCorrupt, p.size, want.size)
	}
	o := applyOptions(opts)
	if err := checkView(mem, p.size, o.view, true); err != nil {
		return nil, err
	}
	return newLog(mem, c, p, o), nil
}

func newLog(mem []byte, c *control, p params, o options) *Log {
	readers := int(p.slotSize & 0xffffff)
	slotsEnd := dataOffset + uint64(readers)*cacheLine
	data := mem[slotsEnd:p.size:p.size]
	rdata := data
	if o.view != nil {
		rdata = o.view[slotsEnd:p.size:p.size]
	}
	return &Log{
		rdata:      rdata,
		c:          c,
		data:       data,
		base:       unsafe.Pointer(unsafe.SliceData(data)),
		slots:      unsafe.Slice((*logSlot)(unsafe.Pointer(&mem[dataOffset])), readers),
		capacity:   p.capacity,
		mask:       p.capacity - 1,
		maxPayload: p.capacity/2 - logHeader,
		policy:     LogPolicy(p.slotSize >> 24),
		opts:       o,
	}
}

// Cap returns the capacity in bytes (headers and padding included).
func (l *Log) Cap() int { return int(l.capacity) }

// MaxRecord returns the largest payload one record may carry: half the
// capacity less a header, so a record always fits once the readers have
// caught up, wherever the write position is.
func (l *Log) MaxRecord() int { return int(l.maxPayload) }

// Policy returns the policy the log was created with.
func (l *Log) Policy() LogPolicy { return l.policy }

// Readers returns the number of reader slots.
func (l *Log) Readers() int { return len(l.slots) }

// Closed reports whether the writer (or a cleaner) closed the log.
func (l *Log) Closed() bool { return l.c.isClosed() }

// Tail returns the writer's claim position: every record below it is
// claimed (committed, or being written).
func (l *Log) Tail() uint64 { return l.c.tail.Load() }

// posWord returns the pos word of the record at buffer offset off (a
// multiple of 32 below the capacity).
func (l *Log) posWord(off uint64) *atomic.Uint64 {
	return (*atomic.Uint64)(unsafe.Add(l.base, off))
}

// storeOwn stores v into a word of the writer's line that readers only
// read under the seqlock (join) or after the writer is gone (Recover): a
// plain store on amd64, in program order (the compiler keeps stores in
// order, x86 keeps them so), else sync/atomic's.
func storeOwn(p *atomic.Uint64, v uint64) {
	if fastStores && !raceEnabled {
		*(*uint64)(unsafe.Pointer(p)) = v
		return
	}
	p.Store(v)
}

// fastStores: plain stores keep their order (amd64's TSO).
const fastStores = runtime.GOARCH == "amd64"

func (l *Log) verWord() *atomic.Uint64 {
	return (*atomic.Uint64)(unsafe.Add(unsafe.Pointer(l.c), logVerWordOff))
}

// setClaimed stores the number the next claim will carry, under the
// seqlock a joining reader reads it with (with the tail, if end != 0).
func (w *LogWriter) setClaimed(c, end uint64) {
	v := w.l.verWord()
	w.ver++
	storeOwn(v, 2*w.ver-1)
	storeOwn(w.l.seqWord(), c)
	if end != 0 {
		w.publishClaim(end)
	}
	storeOwn(v, 2*w.ver)
}

func (l *Log) seqWord() *atomic.Uint64 {
	return (*atomic.Uint64)(unsafe.Add(unsafe.Pointer(l.c), logSeqWordOff))
}

// Close marks the log closed (readers drain it, then get ErrClosed) and
// wakes every waiter. A writer normally calls LogWriter.Close; a cleaner
// calls this after Recover for a writer that died.
func (l *Log) Close() { l.c.close() }

// ReaderState describes one reader slot (for cleaners and tools).
type ReaderState struct {
	Owner    uint32
	Active   bool // joined (or joining)
	Position uint64
}

// Reader returns the state of reader slot i, or ErrCorrupt for a state
// byte no reader writes.
func (l *Log) Reader(i int) (ReaderState, error) {
	if i < 0 || i >= len(l.slots) {
		return ReaderState{}, fmt.Errorf("%w: reader slot %d of %d", ErrConfig, i, len(l.slots))
	}
	s := &l.slots[i]
	tag := s.tag.Load()
	switch tag & 0xff {
	case logSlotFree:
		return ReaderState{}, nil
	case logSlotJoining, logSlotActive:
		return ReaderState{Owner: uint32(tag >> 32), Active: true, Position: s.pos.Load()}, nil
	}
	return ReaderState{}, fmt.Errorf("%w: log reader slot %d has state %#x", ErrCorrupt, i, tag&0xff)
}

// RemoveReaders frees every reader slot held by owner (joined or joining):
// the cleaner's call for a reader process that died. It returns how many it
// freed and wakes a writer waiting for room. Only call it for an owner that
// will not use its slots again.
func (l *Log) RemoveReaders(owner uint32) int {
	n := 0
	for i := range l.slots {
		s := &l.slots[i]
		for {
			tag := s.tag.Load()
			st := tag & 0xff
			if (st != logSlotJoining && st != logSlotActive) || uint32(tag>>32) != owner {
				break
			}
			if s.tag.CompareAndSwap(tag, tag&^0xff|logSlotFree) {
				n++
				break
			}
		}
	}
	if n > 0 {
		l.c.notFull.Notify()
	}
	return n
}

// Recover closes off a claim that a writer which died left uncommitted: it
// walks the records of the lap the writer's tail is in, from the lap's
// start, and if the first uncommitted record starts below the tail it
// writes a padding record over the rest of the claim and commits it, so
// readers move past it and never see a partial record. It also stores the
// writer's message count, so a later Writer (in any process) resumes with
// the right sequence numbers. Call it only when the writer is dead (or
// this process's writer is not in a call); it reports whether it wrote
// padding.
func (l *Log) Recover() (bool, error) {
	t := l.c.tail.Load()
	if t == 0 {
		return false, nil
	}
	p := (t - 1) &^ l.mask // start of the lap holding the last claimed byte
	var next uint64
	known := false
	for p < t {
		off := p & l.mask
		if l.posWord(off).Load() != p+1 {
			break
		}
		h, err := decodeLogRecord(l.data, off, p, l.maxPayload)
		if err != nil {
			return false, err
		}
		next = h.seq
		if h.typ == logData {
			next++
		}
		known = true
		p += h.size
	}
	if p > t {
		return false, fmt.Errorf("%w: log record ends at %d past the tail %d", ErrCorrupt, p, t)
	}
	if !known {
		if c := l.seqWord().Load(); c > 0 {
			next = c - 1 // the stuck claim was message c-1
		}
	}
	// A writer killed inside its seqlock left the version odd: even it.
	l.verWord().Store((l.verWord().Load() + 2) &^ 1)
	if p == t {
		l.seqWord().Store(next)
		return false, nil
	}
	// The stuck claim's number is used up (a joiner may count on the
	// next one): the message is lost, and readers count it missed (plain
	// padding; the next record's number shows the gap). Numbers the
	// writer dropped (Drop) between its last record and the stuck claim
	// are used up too: the claimed count covers them, and a reader that
	// joined after them expects the number after the claim.
	next++
	if c := l.seqWord().Load(); c > next {
		next = c
	}
	l.seqWord().Store(next)
	off := p & l.mask
	putLogHeader(l.data, off, logRec{seq: next, size: t - p, typ: logPad})
	l.posWord(off).Store(p + 1)
	l.c.notEmpty.Notify()
	return true, nil
}

// --- writer ---

// LogWriter is the log's only writer. It is not safe for concurrent use.
type LogWriter struct {
	l         *Log
	tail      uint64 // next position to claim
	seq       uint64 // next message number
	limit     uint64 // may claim up to here without reading the readers
	claimPos  uint64 // position of the pending record
	claimSize uint64
	claimN    uint64
	pending   bool
	closed    bool
	want      uint64 // end a blocked claim needs (read by canPut)
	fenced    uint64 // the tail refresh last stored sequentially consistently
	ver       uint64 // seqlock generation (the word holds 2*ver, odd while writing)
	flags     uint16 // what TryWrite and the batches commit with (SetTag)
	meta      uint32
	canPut    func() bool
	_         [cacheLine]byte
}

// Writer returns this process's writer handle, the same one on every call.
// It resumes at the shared tail with the shared message count: after a
// writer died, call Recover first.
func (l *Log) Writer() *LogWriter {
	if l.w == nil {
		w := &LogWriter{l: l, tail: l.c.tail.Load(), seq: l.seqWord().Load(), closed: l.c.isClosed(), ver: l.verWord().Load() / 2}
		if l.policy == LogDropOldest {
			w.limit = math.MaxUint64
		}
		w.canPut = func() bool {
			ok, err := w.refresh(w.want)
			return ok || err != nil || l.c.isClosed()
		}
		l.w = w
	}
	return l.w
}

// TakeOver returns a new writer handle resumed from the shared state (the
// tail, the next message number), replacing the one Writer returns: for a
// process that takes a log over from a writer that left or died (after
// Recover) — possibly an earlier writer of this same process, whose
// handle's state may be stale.
func (l *Log) TakeOver() *LogWriter {
	l.w = nil
	return l.Writer()
}

// NotEmpty is the event readers park on (the writer notifies it after each
// commit or batch, when someone sleeps); NotFull the one a writer waiting
// for room parks on (readers notify it after Release). A caller that parks
// on them itself (on several logs at once) does what this package's waits
// do (wait.go): it bounds each sleep by ParkBound, and before each re-check
// of its condition made while counted as a sleeper on e it calls
// FenceRecheck(e) (false: treat the condition as true): pass it as
// futex.Waiter.Fence, never inside the condition, where every poll of a
// spinning waiter would make the system call while another one sleeps.
func (l *Log) NotEmpty() *futex.Event { return &l.c.notEmpty }

// ParkBound completes a pending fence hand-over if this process can, and
// returns the longest one futex sleep on the log's events may last (0: no
// bound of the log's own): a log whose fence mode is still pending must be
// re-checked every millisecond.
func (l *Log) ParkBound() time.Duration { return l.c.parkBound() }

// FenceRecheck is the waiter's half of the asymmetric fence, before a
// re-check of the condition made while counted as a sleeper on e (one of
// the log's events): in fast mode it calls membarrier. It returns false
// when that failed (the log is raised to pending): the caller then treats
// its condition as true, a spurious wake-up.
func (l *Log) FenceRecheck(e *futex.Event) bool { return l.c.fenceRecheck(e) }

// NotFull: see NotEmpty.
func (l *Log) NotFull() *futex.Event { return &l.c.notFull }

// Room reports whether a claim of n bytes would find room now (reading the
// readers' positions if the cached limit says no): the condition of a
// writer waiting for room.
func (w *LogWriter) Room(n int) bool {
	l := w.l
	size := align32(logHeader + uint64(max(n, 0)))
	off := w.tail & l.mask
	end := w.tail + size
	if l.capacity-off < size {
		end += l.capacity - off
	}
	if end <= w.limit {
		return true
	}
	ok, err := w.refresh(end)
	return ok || err != nil || l.c.isClosed()
}

// refresh recomputes the limit from the readers' positions and reports
// whether end fits under it.
func (w *LogWriter) refresh(end uint64) (bool, error) {
	l := w.l
	if l.policy == LogDropOldest {
		return true, nil
	}
	// Sequentially consistent: a reader joining now either is seen below,
	// or sees this tail after it announced itself (Join), so it never
	// starts below what this limit lets the writer overwrite. Once per
	// tail: a later scan for the same tail is still after that store, so
	// a joiner it misses stored its slot after the scan and loads this
	// tail or a later one (a writer polling for room stores nothing).
	if w.fenced != w.tail || w.tail == 0 {
		l.c.tail.Store(w.tail)
		w.fenced = w.tail
	}
	low := uint64(0)
	if w.tail > l.capacity {
		low = w.tail - l.capacity
	}
	least := w.tail
	for i := range l.slots {
		s := &l.slots[i]
		tag := s.tag.Load()
		switch tag & 0xff {
		case logSlotFree, logSlotJoining:
			continue
		case logSlotActive:
		default:
			return false, fmt.Errorf("%w: log reader slot %d has state %#x", ErrCorrupt, i, tag&0xff)
		}
		p := s.pos.Load()
		if p > w.tail {
			return false, fmt.Errorf("%w: log reader %d at position %d past the tail %d", ErrCorrupt, i, p, w.tail)
		}
		least = min(least, max(p, low))
	}
	w.limit = least + l.capacity
	return end <= w.limit, nil
}

// publishClaim stores the claim's end into the shared tail before any
// byte of the claim is written: under LogDropOldest a reader that read
// bytes of this claim then loads a tail that shows it (the seqlock
// argument in docs/ring.md). On amd64 (x86-TSO) a plain store is enough;
// elsewhere Swap's acquire half keeps the later stores after it.
func (w *LogWriter) publishClaim(end uint64) {
	if raceEnabled {
		w.l.c.tail.Store(end)
		return
	}
	if w.l.policy != LogDropOldest {
		// No reader reads bytes the writer may be writing: nothing is
		// ordered by this store but the cleaner's and joiners' reads,
		// which the sequentially consistent store of refresh orders.
		*(*uint64)(unsafe.Pointer(&w.l.c.tail)) = end
		return
	}
	if fastPublish {
		atomicx.StoreRelease64(&w.l.c.tail, end)
		return
	}
	w.l.c.tail.Swap(end)
}

// TryClaim claims room for a record of n payload bytes and returns them,
// to be written in place and committed with Commit (or given up with
// Abort). It reports false (no error) when the slowest reader is a whole
// log behind (never under LogDropOldest), ErrTooLarge past MaxRecord,
// ErrClosed after Close and ErrOrder while a claim is pending. The slice
// is valid until Commit or Abort.
func (w *LogWriter) TryClaim(n int) ([]byte, bool, error) {
	l := w.l
	size := align32(logHeader + uint64(n))
	t := w.tail
	off := t & l.mask
	if w.pending || uint64(n) > l.maxPayload || w.closed || l.capacity-off < size || t+size > w.limit {
		return w.claimSlow(n)
	}
	w.claim(t, size, size, n)
	p := off + logHeader
	return l.data[p : p+uint64(n) : p+uint64(n)], true, nil
}

// claim publishes the claim of [t, t+total) for a record of size bytes at
// its end (total is size plus any padding in front).
func (w *LogWriter) claim(t, total, size uint64, n int) {
	end := t + total
	w.setClaimed(w.seq+1, end)
	hook(stepProducerClaimed)
	w.tail = end
	w.claimPos, w.claimSize, w.claimN, w.pending = end-size, size, uint64(n), true
}

// claimSlow is TryClaim's path for everything but a record that fits
// under the cached limit before the end of the buffer.
func (w *LogWriter) claimSlow(n int) ([]byte, bool, error) {
	l := w.l
	if w.pending {
		return nil, false, fmt.Errorf("%w: claim with a claim pending", ErrOrder)
	}
	if n < 0 || uint64(n) > l.maxPayload {
		return nil, false, fmt.Errorf("%w: record of %d bytes, log limit %d", ErrTooLarge, n, l.maxPayload)
	}
	if w.closed {
		return nil, false, ErrClosed
	}
	size := align32(logHeader + uint64(n))
	t := w.tail
	off := t & l.mask
	var pad uint64
	if l.capacity-off < size {
		pad = l.capacity - off
	}
	end := t + pad + size
	if end > w.limit {
		ok, err := w.refresh(end)
		if !ok || err != nil {
			return nil, false, err
		}
	}
	if pad != 0 {
		// The padding first, under a tail of its own that ends the lap: a
		// writer killed before it publishes the padding leaves the tail in
		// the old lap, where Recover looks for the unfinished record.
		// (Claimed together with the record, the tail was already in the
		// new lap, Recover closed off only the record, and readers stayed
		// at the unwritten padding for ever.) The claimed count stays
		// w.seq: a reader that joins at this tail reads the record next,
		// and it carries w.seq. (Counting it claimed here made such a
		// joiner expect w.seq+1 and take the record for corrupt.) A
		// writer killed before publishing the padding is a stuck claim
		// to Recover, which uses the number up: readers count one
		// message missed that was never written, never one too few.
		w.setClaimed(w.seq, t+pad)
		putLogHeader(l.data, off, logRec{seq: w.seq, size: pad, typ: logPad})
		publish64(l.posWord(off), t+1)
		hook(stepProducerPadded)
		t, off = t+pad, 0
	}
	w.claim(t, size, size, n)
	p := off + logHeader
	return l.data[p : p+uint64(n) : p+uint64(n)], true, nil
}

// Claim is TryClaim that waits while the log is full, until ctx ends.
func (w *LogWriter) Claim(ctx context.Context, n int) ([]byte, error) {
	for {
		b, ok, err := w.TryClaim(n)
		if ok || err != nil {
			return b, err
		}
		if err := w.waitRoom(ctx, n); err != nil {
			return nil, err
		}
	}
}

func (w *LogWriter) waitRoom(ctx context.Context, n int) error {
	l := w.l
	size := align32(logHeader + uint64(n))
	off := w.tail & l.mask
	w.want = w.tail + size
	if l.capacity-off < size {
		w.want += l.capacity - off
	}
	return l.opts.wait(ctx, l.c, &l.c.notFull, w.canPut)
}

// Commit publishes the pending claim as a record of n payload bytes (at
// most the claimed n), with the caller's flags and meta word: one release
// store of the record's position word, then a wake-up of parked readers.
func (w *LogWriter) Commit(n int, flags uint16, meta uint32) error {
	if err := w.commit(n, flags, meta); err != nil {
		return err
	}
	w.notify()
	return nil
}

func (w *LogWriter) commit(n int, flags uint16, meta uint32) error {
	if !w.pending {
		return fmt.Errorf("%w: commit without a claim", ErrOrder)
	}
	if n < 0 || uint64(n) > w.claimN {
		return fmt.Errorf("%w: commit of %d bytes, claimed %d", ErrTooLarge, n, w.claimN)
	}
	l := w.l
	off := w.claimPos & l.mask
	// The header's words after pos, as putLogHeader writes them
	// (little-endian, as every platform this builds for).
	h := (*[4]uint64)(unsafe.Add(l.base, off))
	h[1] = w.seq
	h[2] = uint64(n) | w.claimSize<<32
	h[3] = logData | uint64(flags)<<16 | uint64(meta)<<32
	hook(stepProducerWritten)
	publish64(l.posWord(off), w.claimPos+1)
	hook(stepProducerPublished)
	w.seq++
	w.pending = false
	return nil
}

// SetTag sets the flags and meta word that the copying calls (TryWrite,
// Write, TryWriteBatch, WriteBatch) commit records with (0, 0 at first).
func (w *LogWriter) SetTag(flags uint16, meta uint32) { w.flags, w.meta = flags, meta }

// Drop counts a message the caller gave up without writing it (LogDropNewest
// when TryClaim found no room): the next record's number skips it, and
// every reader reports it in that record's Missed.
func (w *LogWriter) Drop() {
	w.seq++
	w.setClaimed(w.seq, 0)
}

// Seq returns the number the next message will carry.
func (w *LogWriter) Seq() uint64 { return w.seq }

// Abort gives up the pending claim: the room becomes a padding record that
// readers skip.
func (w *LogWriter) Abort() error {
	if !w.pending {
		return fmt.Errorf("%w: abort without a claim", ErrOrder)
	}
	l := w.l
	off := w.claimPos & l.mask
	// The claim's number is used up (a joiner may already count on the
	// next one); the padding says so, and readers skip it uncounted.
	w.seq++
	putLogHeader(l.data, off, logRec{seq: w.seq, size: w.claimSize, typ: logPad, flags: logFlagAbort})
	publish64(l.posWord(off), w.claimPos+1)
	w.pending = false
	return nil
}

func (w *LogWriter) notify() {
	if c, e := w.l.c, &w.l.c.notEmpty; c.mayWake(e) {
		c.wake(e)
	}
	hook(stepProducerNotified)
}

// TryWrite copies msg into a new record (flags and meta 0). It reports
// false when the log is full (as TryClaim).
func (w *LogWriter) TryWrite(msg []byte) (bool, error) {
	b, ok, err := w.TryClaim(len(msg))
	if !ok || err != nil {
		return false, err
	}
	copy(b, msg)
	return true, w.Commit(len(msg), w.flags, w.meta)
}

// Write is TryWrite that waits for room until ctx ends.
func (w *LogWriter) Write(ctx context.Context, msg []byte) error {
	b, err := w.Claim(ctx, len(msg))
	if err != nil {
		return err
	}
	copy(b, msg)
	return w.Commit(len(msg), w.flags, w.meta)
}

// TryWriteBatch copies as many of msgs as there is room for into records
// and wakes parked readers once. It returns how many it wrote.
//
// The records that fit before the end of the lap under the cached limit
// are claimed together (writeRun: one update of the claimed count and the
// tail, before any byte of them is written), then written and published
// one by one; a record that needs padding, a refresh of the limit or an
// error goes through TryClaim.
func (w *LogWriter) TryWriteBatch(msgs [][]byte) (int, error) {
	done := 0
	var err error
	for done < len(msgs) {
		if k := w.writeRun(msgs[done:]); k > 0 {
			done += k
			continue
		}
		m := msgs[done]
		var b []byte
		var ok bool
		b, ok, err = w.TryClaim(len(m))
		if !ok || err != nil {
			break
		}
		copy(b, m)
		if err = w.commit(len(m), w.flags, w.meta); err != nil {
			break
		}
		done++
	}
	if done > 0 {
		w.notify()
	}
	return done, err
}

// writeRun claims, writes and publishes the longest prefix of msgs that
// fits before the end of the lap under the cached limit, and returns its
// length (0: the first does not fit, or a claim is pending, or the writer
// is closed). The claimed count and the tail cover the whole run before
// any byte of it is written: a writer killed in the run leaves its
// unpublished records below its tail, where Recover closes them off with
// the run's numbers used up (the claimed count), and a reader that joins
// meanwhile starts after the run.
func (w *LogWriter) writeRun(msgs [][]byte) int {
	l := w.l
	t := w.tail
	if w.pending || w.closed || w.limit <= t { // a fresh handle's limit is 0
		return 0
	}
	room := min(l.capacity-t&l.mask, w.limit-t)
	var total uint64
	k := 0
	for _, m := range msgs {
		n := uint64(len(m))
		size := align32(logHeader + n)
		if n > l.maxPayload || size > room-total {
			break
		}
		total += size
		k++
	}
	if k == 0 {
		return 0
	}
	w.setClaimed(w.seq+uint64(k), t+total)
	hook(stepProducerClaimed)
	p, seq := t, w.seq
	tag := logData | uint64(w.flags)<<16 | uint64(w.meta)<<32
	for _, m := range msgs[:k] {
		n := uint64(len(m))
		size := align32(logHeader + n)
		off := p & l.mask
		// In bounds: the run ends within the lap.
		copy(unsafe.Slice((*byte)(unsafe.Add(l.base, off+logHeader)), n), m)
		h := (*[4]uint64)(unsafe.Add(l.base, off))
		h[1] = seq
		h[2] = n | size<<32
		h[3] = tag
		hook(stepProducerWritten)
		publish64(l.posWord(off), p+1)
		hook(stepProducerPublished)
		p += size
		seq++
	}
	w.tail, w.seq = p, seq
	return k
}

// WriteBatch writes every message of msgs, waiting for room as Write does.
func (w *LogWriter) WriteBatch(ctx context.Context, msgs [][]byte) (int, error) {
	done := 0
	for done < len(msgs) {
		n, err := w.TryWriteBatch(msgs[done:])
		done += n
		if err != nil {
			return done, err
		}
		if n == 0 {
			if err := w.waitRoom(ctx, len(msgs[done])); err != nil {
				return done, err
			}
		}
	}
	return done, nil
}

// Close gives up a pending claim, stores the message count and closes the
// log: readers drain it, then get ErrClosed. Idempotent.
func (w *LogWriter) Close() error {
	if w.pending {
		_ = w.Abort()
	}
	w.closed = true
	w.l.c.tail.Store(w.tail)
	w.l.seqWord().Store(w.seq)
	w.l.c.close()
	return nil
}

// --- readers ---

// LogReader reads every record of a log from the position it joined at. It
// is not safe for concurrent use.
type LogReader struct {
	l         *Log
	slot      *logSlot
	tag       uint64
	next      uint64 // cursor: position of the next record to read
	last      uint64 // position of the last record whose header was trusted
	seq       uint64 // next message number expected
	synced    bool   // seq is known
	resynced  bool   // lapped: the next data record reports what was missed
	published uint64 // the position last stored in the slot
	pending   uint64 // missed, to report with the next message
	missed    uint64
	left      bool
	quick     bool // the fast paths apply: see setQuick
	canGet    func() bool
	_         [cacheLine]byte
}

// setQuick recomputes quick, the one flag the fast paths (fast, CopyFast)
// test in place of five: a policy that cannot overwrite a record while it
// is read, the message number known, not lapped, nothing pending to
// report, not closed. Every change of those fields calls it.
func (r *LogReader) setQuick() {
	r.quick = r.l.policy != LogDropOldest && r.synced && !r.resynced && r.pending == 0 && !r.left
}

// LogRecord is one record handed out in place. Data is valid until the
// reader's position passes End (Release) under LogBlock and LogDropNewest;
// under LogDropOldest the writer may overwrite it at any time: check
// Intact after using it.
type LogRecord struct {
	Data   []byte
	Pos    uint64 // position of the record
	End    uint64 // position after it (and after any padding it skipped)
	Seq    uint64 // the writer's message number
	Missed uint64 // messages this reader lost just before this one (lapped)
	Flags  uint16
	Meta   uint32
}

// Join takes a free reader slot for owner (an id the caller's cleaner can
// pass to RemoveReaders) and returns a reader that receives every record
// committed after it joined. It returns ErrFull when every slot is taken.
func (l *Log) Join(owner uint32) (*LogReader, error) {
	for i := range l.slots {
		if r := l.join(i, owner); r != nil {
			return r, nil
		}
	}
	return nil, fmt.Errorf("%w: all %d log reader slots taken", ErrFull, len(l.slots))
}

// JoinAt is Join at reader slot i: ErrFull when it is taken. A caller that
// gives its readers fixed slots (a channel: subscriber k reads every log
// through slot k) uses it instead of Join.
func (l *Log) JoinAt(i int, owner uint32) (*LogReader, error) {
	if i < 0 || i >= len(l.slots) {
		return nil, fmt.Errorf("%w: reader slot %d of %d", ErrConfig, i, len(l.slots))
	}
	if r := l.join(i, owner); r != nil {
		return r, nil
	}
	return nil, fmt.Errorf("%w: log reader slot %d is taken", ErrFull, i)
}

func (l *Log) join(i int, owner uint32) *LogReader {
	{
		s := &l.slots[i]
		tag := s.tag.Load()
		if tag&0xff != logSlotFree {
			return nil
		}
		gen := (tag>>8 + 1) & 0xffffff
		joining := uint64(owner)<<32 | gen<<8 | logSlotJoining
		if !s.tag.CompareAndSwap(tag, joining) {
			return nil
		}
		s.pos.Store(l.c.tail.Load())
		active := joining&^0xff | logSlotActive
		// Sequentially consistent, then the tail: the writer stores its
		// tail (sequentially consistent) before it scans the slots, so
		// either its scan sees this slot active, or this load sees its
		// tail and starts at or after it (refresh).
		s.tag.Store(active)
		t, c, ok := l.tailAndClaimed()
		s.pos.Store(t)
		r := &LogReader{l: l, slot: s, tag: active, next: t, last: t, published: t, seq: c, synced: ok}
		r.setQuick()
		r.canGet = func() bool { return r.ready() }
		return r
	}
}

// tailAndClaimed reads the writer's tail and the number its next claim
// will carry, consistently (seqlock on the writer's line; the writer's
// stores are ordered, and these loads are acquires).
// ok is false when it found no consistent pair in a bounded number of
// tries (a writer killed inside its seqlock, until Recover): the caller
// then learns the number from the first record it reads.
func (l *Log) tailAndClaimed() (t, c uint64, ok bool) {
	v := l.verWord()
	for range 1000 {
		v1 := v.Load()
		t = l.c.tail.Load()
		c = l.seqWord().Load()
		if v1&1 == 0 && v.Load() == v1 {
			return t, c, true
		}
		runtime.Gosched()
	}
	return l.c.tail.Load(), 0, false
}

// ready is the wait condition: a record (or padding) at the cursor, the
// log closed, or (LogDropOldest) the reader lapped.
func (r *LogReader) ready() bool {
	l := r.l
	p := r.next
	if l.posWord(p&l.mask).Load() == p+1 || l.c.isClosed() {
		return true
	}
	return l.policy == LogDropOldest && l.c.tail.Load() > r.last+l.capacity
}

// Ready reports, without reading anything but the record's position word
// (and the closed flag; under LogDropOldest the writer's tail), whether
// TryNext would find something to do: a committed record or padding at the
// cursor, the log closed, or the reader lapped. It is the condition a
// caller parking on NotEmpty polls.
func (r *LogReader) Ready() bool { return r.ready() }

// Position returns the position the reader last published (Release).
func (r *LogReader) Position() uint64 { return r.published }

// Cursor returns the position of the next record the reader will read.
func (r *LogReader) Cursor() uint64 { return r.next }

// Missed returns how many messages this reader lost to being lapped
// (LogDropOldest) since it joined.
func (r *LogReader) Missed() uint64 { return r.missed }

// resync moves a lapped reader to the start of the oldest lap the writer
// has not begun to overwrite; the next data record reports the messages
// in between as missed.
func (r *LogReader) resync(t uint64) {
	q := (t - 1) &^ r.l.mask
	r.next, r.last, r.resynced = q, q, true
	r.setQuick()
}

// overrun reports whether the writer may have begun to overwrite the bytes
// of a record at position p: it has claimed past p + capacity. Its load of
// the tail follows the caller's reads of the record (loads are ordered on
// amd64; elsewhere sync/atomic's load is an acquire, see docs/ring.md).
func (r *LogReader) overrun(p uint64) (uint64, bool) {
	t := r.l.c.tail.Load()
	return t, t > p+r.l.capacity
}

// fast returns the header of the record at the cursor when it is the
// common case: committed, a data record with the expected message number
// and sane sizes, under a policy whose records cannot be overwritten while
// read. Anything else goes to TryNext's full path.
func (r *LogReader) fast() (uint64, logRec, bool) {
	l := r.l
	p := r.next
	off := p & l.mask
	if !r.quick || l.posWord(off).Load() != p+1 {
		return 0, logRec{}, false
	}
	// One load of each header word: the record may be overwritten once
	// the position passes it, so nothing is read from it twice.
	hp := (*[4]uint64)(unsafe.Add(l.base, off))
	w1, w2, w3 := hp[1], hp[2], hp[3]
	h := logRec{seq: w1, n: w2 & 0xffffffff, size: w2 >> 32, typ: uint16(w3), flags: uint16(w3 >> 16), meta: uint32(w3 >> 32)}
	if h.seq != r.seq || h.typ != logData || h.size%logAlign != 0 || h.size > l.capacity-off ||
		h.n > l.maxPayload || h.n+logHeader > h.size {
		return 0, logRec{}, false
	}
	return off, h, true
}

// TryNext returns the next record in place and moves the cursor past it
// (the published position stays where Release left it). It reports false
// (no error) when nothing is committed at the cursor, ErrClosed once the
// log is closed and drained, ErrCorrupt for a record no writer writes.
func (r *LogReader) TryNext() (LogRecord, bool, error) {
	l := r.l
	if off, h, ok := r.fast(); ok {
		p := r.next
		d := off + logHeader
		r.last, r.next, r.seq = p, p+h.size, h.seq+1
		return LogRecord{Data: l.rdata[d : d+h.n : d+h.n], Pos: p, End: r.next, Seq: h.seq, Flags: h.flags, Meta: h.meta}, true, nil
	}
	if r.left {
		return LogRecord{}, false, ErrClosed
	}
	for {
		p := r.next
		off := p & l.mask
		if l.posWord(off).Load() != p+1 {
			again, err := r.notReady(p)
			if again && err == nil {
				continue
			}
			return LogRecord{}, false, err
		}
		h, err := decodeLogRecord(l.data, off, p, l.maxPayload)
		if err == nil && r.synced && !r.resynced && h.seq < r.seq {
			err = fmt.Errorf("%w: log record at position %d has message number %d, want %d", ErrCorrupt, p, h.seq, r.seq)
		}
		if l.policy == LogDropOldest || err != nil {
			// The header is trusted only if the writer had not claimed
			// over it when it was read (or it is not corrupt but lapped).
			if t, over := r.overrun(p); over {
				r.resync(t)
				continue
			}
			if err != nil {
				return LogRecord{}, false, err
			}
		}
		r.last = p
		r.next = p + h.size
		if h.typ == logPad {
			if h.flags&logFlagAbort != 0 && h.seq > 0 {
				// An aborted (or closed-off) claim used up number
				// h.seq-1: messages dropped before it count, it not.
				if r.synced && h.seq-1 > r.seq {
					r.pending += h.seq - 1 - r.seq
					r.setQuick()
				}
				if !r.synced || h.seq > r.seq {
					r.seq = h.seq
				}
			}
			continue
		}
		missed := r.pending
		r.pending = 0
		if r.synced && h.seq > r.seq {
			// Lapped (resynced), or messages the writer dropped (Drop).
			missed += h.seq - r.seq
		}
		r.missed += missed
		r.synced, r.resynced = true, false
		r.setQuick()
		r.seq = h.seq + 1
		d := off + logHeader
		return LogRecord{
			Data: l.rdata[d : d+h.n : d+h.n], Pos: p, End: r.next, Seq: h.seq,
			Missed: missed, Flags: h.flags, Meta: h.meta,
		}, true, nil
	}
}

// notReady handles a cursor whose record is not committed: lapped
// (resync, try again), closed and drained (ErrClosed), or not yet written.
func (r *LogReader) notReady(p uint64) (bool, error) {
	l := r.l
	closed := l.c.isClosed()
	if !closed && l.policy != LogDropOldest {
		return false, nil
	}
	t := l.c.tail.Load()
	if t > r.last+l.capacity {
		r.resync(t)
		return true, nil
	}
	if t < p {
		return false, fmt.Errorf("%w: log reader at %d past the tail %d", ErrCorrupt, p, t)
	}
	if closed && t == p && l.posWord(p&l.mask).Load() != p+1 {
		return false, ErrClosed
	}
	return false, nil
}

// Intact reports whether rec's bytes were certainly not overwritten by the
// time of the call: always under LogBlock and LogDropNewest (the writer
// never passes a reader's position); under LogDropOldest, after reading a
// record in place, call it and discard what was read when it is false.
func (r *LogReader) Intact(rec LogRecord) bool {
	if r.l.policy != LogDropOldest {
		return true
	}
	_, over := r.overrun(rec.Pos)
	return !over
}

// Next is TryNext that waits for a record until ctx ends.
func (r *LogReader) Next(ctx context.Context) (LogRecord, error) {
	for {
		rec, ok, err := r.TryNext()
		if ok || err != nil {
			return rec, err
		}
		if err := r.Wait(ctx); err != nil {
			return LogRecord{}, err
		}
	}
}

// Wait returns when a record (or padding) is committed at the cursor, the
// log is closed, or the reader was lapped; or with ctx.Err().
func (r *LogReader) Wait(ctx context.Context) error {
	return r.l.opts.wait(ctx, r.l.c, &r.l.c.notEmpty, r.canGet)
}

// Release publishes pos as the reader's position: it has consumed every
// record below pos, and the writer may overwrite them. pos must lie
// between the last published position and the cursor (ErrOrder). One
// store to the reader's own line, then a wake-up of a writer parked for
// room (one load while none is).
func (r *LogReader) Release(pos uint64) error {
	if pos < r.published || pos > r.next {
		return fmt.Errorf("%w: release to %d, published %d, cursor %d", ErrOrder, pos, r.published, r.next)
	}
	r.publishPos(pos)
	return nil
}

// publishPos stores pos in the reader's line (Release, ReleaseCursor) and
// wakes a writer parked for room (one load while none is).
func (r *LogReader) publishPos(pos uint64) {
	hook(stepConsumerCopied)
	r.published = pos
	publish64(&r.slot.pos, pos)
	hook(stepConsumerReleased)
	if c, e := r.l.c, &r.l.c.notFull; c.mayWake(e) {
		c.wake(e)
	}
}

// TryRead copies the next message into buf and publishes the position past
// it. It returns the record (Data is buf's prefix), false when nothing is
// there, ErrShortBuffer (the cursor stays) when buf is too small. Under
// LogDropOldest a message overwritten while it was copied is not returned:
// it counts as missed and the next one is tried.
func (r *LogReader) TryRead(buf []byte) (LogRecord, bool, error) {
	if off, h, ok := r.fast(); ok && h.n <= uint64(len(buf)) {
		d := off + logHeader
		m := copy(buf, r.l.data[d:d+h.n:d+h.n])
		p := r.next
		r.last, r.next, r.seq = p, p+h.size, h.seq+1
		_ = r.Release(r.next)
		return LogRecord{Data: buf[:m], Pos: p, End: r.next, Seq: h.seq, Flags: h.flags, Meta: h.meta}, true, nil
	}
	rec, ok, err := r.TryRead0(buf)
	if ok && err == nil {
		_ = r.Release(rec.End)
	}
	return rec, ok, err
}

// Append copies msg into a new record committed with meta (flags 0) and
// wakes parked readers: TryWrite in one call, the common case (room under
// the cached limit, before the end of the buffer) without any call but the
// copy. It reports false (no error) when the log is full.
func (w *LogWriter) Append(msg []byte, meta uint32) (bool, error) {
	l := w.l
	n := uint64(len(msg))
	size := align32(logHeader + n)
	t := w.tail
	off := t & l.mask
	if w.pending || n > l.maxPayload || w.closed || l.capacity-off < size || t+size > w.limit {
		b, ok, err := w.TryClaim(len(msg))
		if !ok || err != nil {
			return false, err
		}
		copy(b, msg)
		return true, w.Commit(len(msg), 0, meta)
	}
	end := t + size
	seq := w.seq
	if fastStores && fastPublish && !raceEnabled && l.policy != LogDropOldest {
		// setClaimed inline: the seqlock and the two words, plain stores
		// in program order on the writer's own line.
		// (Locals: the stores through unsafe pointers would make the
		// compiler load w's fields again.)
		c := unsafe.Pointer(l.c)
		v := w.ver + 1
		w.ver = v
		*(*uint64)(unsafe.Add(c, logVerWordOff)) = 2*v - 1
		*(*uint64)(unsafe.Add(c, logSeqWordOff)) = seq + 1
		*(*uint64)(unsafe.Add(c, offTail)) = end
		*(*uint64)(unsafe.Add(c, logVerWordOff)) = 2 * v
	} else {
		w.setClaimed(w.seq+1, end)
	}
	hook(stepProducerClaimed)
	// In bounds: off+size <= capacity was checked above.
	copy(unsafe.Slice((*byte)(unsafe.Add(l.base, off+logHeader)), n), msg)
	h := (*[4]uint64)(unsafe.Add(l.base, off))
	h[1] = seq
	h[2] = n | size<<32
	h[3] = logData | uint64(meta)<<32
	hook(stepProducerWritten)
	publish64(l.posWord(off), t+1)
	hook(stepProducerPublished)
	w.tail = end
	w.seq = seq + 1
	if c, e := l.c, &l.c.notEmpty; c.mayWake(e) {
		c.wake(e)
	}
	hook(stepProducerNotified)
	return true, nil
}

// CopyNext copies the next message into buf and moves the cursor past it
// (the position is not published: Release does that). It returns the
// payload length, the record's number, meta word and the messages missed
// just before it; ok false (no error) when there is none. A message longer
// than buf is ErrShortBuffer and stays. Under LogDropOldest a message
// overwritten while copied is not returned (it counts as missed). The
// common case (the expected data record, a policy that cannot overwrite
// it) is one function without calls but the copy.
func (r *LogReader) CopyNext(buf []byte) (n int, seq uint64, meta uint32, missed uint64, ok bool, err error) {
	if n, seq, meta, ok := r.CopyFast(buf); ok {
		return n, seq, meta, 0, true, nil
	}
	rec, ok, err := r.TryRead0(buf)
	return len(rec.Data), rec.Seq, rec.Meta, rec.Missed, ok, err
}

// CopyFast is CopyNext's common case alone: the expected data record
// committed at the cursor, sane, no longer than buf, under a policy that
// cannot overwrite it while it is copied (LogBlock, LogDropNewest). It
// copies the payload into buf and moves the cursor past it (the position
// is not published). ok false: it did nothing, and CopyNext does whatever
// else there is (nothing committed, padding, a lap, a gap to count, a
// corrupt or longer record). One function without calls but the copy.
func (r *LogReader) CopyFast(buf []byte) (n int, seq uint64, meta uint32, ok bool) {
	l := r.l
	p := r.next
	off := p & l.mask
	if !r.quick || l.posWord(off).Load() != p+1 {
		return 0, 0, 0, false
	}
	hp := (*[4]uint64)(unsafe.Add(l.base, off))
	w1, w2, w3 := hp[1], hp[2], hp[3]
	m, size := w2&0xffffffff, w2>>32
	if w1 != r.seq || uint16(w3) != logData || size%logAlign != 0 || size > l.capacity-off ||
		m > l.maxPayload || m+logHeader > size || m > uint64(len(buf)) {
		return 0, 0, 0, false
	}
	// In bounds: off+size <= capacity and m+logHeader <= size were
	// checked above, m <= len(buf) too (no slice checks again).
	copy(buf[:m:m], unsafe.Slice((*byte)(unsafe.Add(l.base, off+logHeader)), m))
	r.last, r.next, r.seq = p, p+size, w1+1
	return int(m), w1, uint32(w3 >> 32), true
}

// ReleaseCursor is Release(Cursor()): the reader has consumed every record
// it read. One store to its own line (none when the position is there
// already), then the wake-up check for a writer parked for room.
func (r *LogReader) ReleaseCursor() {
	if r.next != r.published {
		r.publishPos(r.next)
	}
}

// TryRead0 is TryRead without publishing the position.
func (r *LogReader) TryRead0(buf []byte) (LogRecord, bool, error) {
	for {
		st := r.save()
		rec, ok, err := r.TryNext()
		if !ok || err != nil {
			return rec, false, err
		}
		if len(rec.Data) > len(buf) {
			r.restore(st, rec)
			return LogRecord{}, false, fmt.Errorf("%w: message of %d bytes, buffer of %d", ErrShortBuffer, len(rec.Data), len(buf))
		}
		rec.Data = buf[:copy(buf, rec.Data)]
		if r.l.policy == LogDropOldest {
			if t, over := r.overrun(rec.Pos); over {
				r.seq = rec.Seq - rec.Missed
				r.missed -= rec.Missed
				r.resync(t)
				continue
			}
		}
		return rec, true, nil
	}
}

// readerState is what TryNext changes, kept to undo a read.
type readerState struct {
	next, last, seq, pending uint64
	synced, resynced         bool
}

func (r *LogReader) save() readerState {
	return readerState{r.next, r.last, r.seq, r.pending, r.synced, r.resynced}
}

// restore undoes the read of rec. The messages pending before it (an
// aborted claim's drops) come back too: rec.Missed counted them, and the
// next read counts them again.
func (r *LogReader) restore(s readerState, rec LogRecord) {
	r.next, r.last, r.seq, r.pending, r.synced, r.resynced = s.next, s.last, s.seq, s.pending, s.synced, s.resynced
	r.missed -= rec.Missed
	r.setQuick()
}

// TryReadBatch copies up to len(bufs) messages into bufs (message i into
// bufs[i]), fills recs[i] (if recs is long enough) with each record whose
// Data is the copy, and publishes the position once for the batch. Under
// LogDropOldest it checks once, after all the copies, that none was
// overwritten meanwhile; the ones that were are counted missed and not
// returned. It stops early at a message longer than its buffer: with
// nothing copied before it, that is ErrShortBuffer and the cursor stays.
func (r *LogReader) TryReadBatch(bufs [][]byte, recs []LogRecord) (int, error) {
	n := 0
	var err error
	var first, lastEnd uint64
	// Under LogDropOldest a batch is at most 64 records, kept here for a
	// partial overrun.
	var seqs, poss, ends, misses [64]uint64
	for n < len(bufs) {
		if off, h, ok := r.fast(); ok && h.n <= uint64(len(bufs[n])) {
			// The common case, as in TryRead (not under LogDropOldest).
			d := off + logHeader
			m := copy(bufs[n], r.l.data[d:d+h.n:d+h.n])
			p := r.next
			r.last, r.next, r.seq = p, p+h.size, h.seq+1
			if n < len(recs) {
				recs[n] = LogRecord{Data: bufs[n][:m], Pos: p, End: r.next, Seq: h.seq, Flags: h.flags, Meta: h.meta}
			}
			lastEnd = r.next
			n++
			continue
		}
		st := r.save()
		var rec LogRecord
		var ok bool
		rec, ok, err = r.TryNext()
		if !ok || err != nil {
			break
		}
		if len(rec.Data) > len(bufs[n]) {
			r.restore(st, rec)
			if n == 0 {
				err = fmt.Errorf("%w: message of %d bytes, buffer of %d", ErrShortBuffer, len(rec.Data), len(bufs[n]))
			}
			break
		}
		rec.Data = bufs[n][:copy(bufs[n], rec.Data)]
		if n == 0 {
			first = rec.Pos
		}
		if n < len(seqs) {
			seqs[n], poss[n], ends[n], misses[n] = rec.Seq, rec.Pos, rec.End, rec.Missed
		}
		if n < len(recs) {
			recs[n] = rec
		}
		lastEnd = rec.End
		n++
		if r.l.policy == LogDropOldest && n == len(seqs) {
			break // bound the work a late overrun can void
		}
	}
	if n == 0 {
		return 0, err
	}
	if r.l.policy == LogDropOldest {
		if t, over := r.overrun(first); over {
			// Keep the prefix that was intact; the rest counts as missed
			// through the resync.
			k := 0
			for k < n && t <= poss[k]+r.l.capacity {
				k++
			}
			if k < n {
				// The dropped ones, and what they reported missed, are
				// reported with the next message.
				r.seq = seqs[k] - misses[k]
				for j := k; j < n; j++ {
					r.missed -= misses[j]
				}
				r.resync(t)
				n = k
				if k > 0 {
					lastEnd = ends[k-1]
				} else {
					return 0, err
				}
			}
		}
	}
	_ = r.Release(lastEnd)
	return n, err
}

// Read is TryRead that waits for a message until ctx ends.
func (r *LogReader) Read(ctx context.Context, buf []byte) (LogRecord, error) {
	for {
		rec, ok, err := r.TryRead(buf)
		if ok || err != nil {
			return rec, err
		}
		if err := r.Wait(ctx); err != nil {
			return LogRecord{}, err
		}
	}
}

// Close gives the reader's slot back (the writer stops counting its
// position) and wakes a writer waiting for room. Idempotent.
func (r *LogReader) Close() error {
	if r.left {
		return nil
	}
	r.left = true
	r.setQuick()
	if r.slot.tag.CompareAndSwap(r.tag, r.tag&^0xff|logSlotFree) {
		r.l.c.notFull.Notify()
	}
	return nil
}
