package ring

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"unsafe"
)

// Every SPSC slot starts with a 16-byte header:
//
//	offset 0: seq uint64  index+1 of the message it holds; the producer
//	                      stores it (release) after the length and payload,
//	                      and it is the only word that publishes a message
//	offset 8: len uint32  message length
//	offset 12: reserved
const (
	slotHeader = 16
	slotLenOff = 8
)

// spscSlot is the slot header as a struct, for the layout test
// (unsafe.Offsetof); the code reaches the words through the offsets above.
type spscSlot struct {
	seq      atomic.Uint64
	len      uint32
	reserved uint32
}

// MaxSlotSize is the largest slot payload the fixed-slot rings accept.
const MaxSlotSize = 1 << 30

// MaxCapacity is the largest number of slots the fixed-slot rings accept:
// 1<<32 where int has 64 bits, 1<<30 where it has 32.
const MaxCapacity = 1 << (30 + 2*(^uint(0)>>63))

// SPSC is a single-producer single-consumer ring of fixed-size slots in a
// shared region. Each slot carries a message of 0 to SlotSize bytes.
//
// The SPSC value holds what both sides share; the producing process takes
// its side with Producer and the consuming process with Consumer. Each
// handle is for one goroutine at a time; the producer and the consumer may
// live in one process (two goroutines) or in two.
//
// A process that attaches in place of a killed producer or consumer
// carries on where the dead one stopped: the ring's shared state never
// needs repair (docs/ring.md lists, per call, what a kill can cost).
type SPSC struct {
	c        *control
	data     []byte
	capacity uint64
	mask     uint64
	slotSize int
	stride   int
	opts     options
	prod     *SPSCProducer
	cons     *SPSCConsumer
}

// SPSCProducer is the producing side of an SPSC ring. It is not safe for
// concurrent use; one goroutine of one process produces at a time.
type SPSCProducer struct {
	r *SPSC
	// tail is the next index to fill. It lives here, not in shared memory:
	// the consumer learns of a message from its slot's seq word.
	tail       uint64
	cachedHead uint64 // last head seen; reloaded only when the ring looks full
	closed     bool   // this handle closed the ring, or found it closed
	reserved   int    // slots handed out by Reserve and not yet committed
	resv       [][]byte
	canPut     func() bool
	_          [cacheLine]byte
}

// SPSCConsumer is the consuming side of an SPSC ring. It is not safe for
// concurrent use; one goroutine of one process consumes at a time.
type SPSCConsumer struct {
	r          *SPSC
	head       uint64 // next index to take; published to the producer after each take
	cachedTail uint64 // last shared tail seen: messages below it are published
	peeked     int    // slots handed out by Peek and not yet released
	peekv      [][]byte
	canGet     func() bool
	_          [cacheLine]byte
}

// spscStride is the distance between SPSC slots: the 16-byte slot header
// plus the payload, rounded by lineStride.
func spscStride(slotSize uint64) uint64 { return lineStride(slotHeader + align8(slotSize)) }

// lineStride rounds a slot's size so that no slot straddles a cache line
// that another slot uses: up to 32 or 64 bytes when it fits in a line, else
// up to a multiple of 64. Without it, the producer filling slot i+1 keeps
// stealing the line the consumer is reading slot i from.
func lineStride(s uint64) uint64 {
	if s <= 32 {
		return 32
	}
	return (s + 63) &^ 63
}

// slotParams checks the geometry of a ring of fixed-size slots (SPSC or
// MPMC) and computes the size of its region.
func slotParams(kind uint32, capacity, slotSize int, stride func(uint64) uint64) (params, error) {
	if capacity < 1 || capacity > MaxCapacity || !isPow2(uint64(capacity)) {
		return params{}, fmt.Errorf("%w: capacity %d is not a power of two in [1, %d]", ErrConfig, capacity, MaxCapacity)
	}
	if slotSize < 1 || slotSize > MaxSlotSize {
		return params{}, fmt.Errorf("%w: slot size %d not in [1, %d]", ErrConfig, slotSize, MaxSlotSize)
	}
	size := dataOffset + uint64(capacity)*stride(uint64(slotSize))
	if size > maxRegion {
		return params{}, fmt.Errorf("%w: ring of %d slots of %d bytes is too large", ErrConfig, capacity, slotSize)
	}
	return params{kind: kind, slotSize: uint32(slotSize), capacity: uint64(capacity), size: size}, nil
}

func spscParams(capacity, slotSize int) (params, error) {
	return slotParams(KindSPSC, capacity, slotSize, spscStride)
}

// SPSCSize returns the number of bytes an SPSC ring with capacity slots
// (a power of two) of slotSize payload bytes occupies.
func SPSCSize(capacity, slotSize int) (int, error) {
	p, err := spscParams(capacity, slotSize)
	if err != nil {
		return 0, err
	}
	return int(p.size), nil
}

// NewSPSC initialises an empty SPSC ring at the start of mem, which must be
// 64-byte aligned and at least SPSCSize(capacity, slotSize) bytes long, and
// returns it. Other processes attach with AttachSPSC. The ring value and
// its handles are valid while mem stays mapped.
func NewSPSC(mem []byte, capacity, slotSize int, opts ...Option) (*SPSC, error) {
	p, err := spscParams(capacity, slotSize)
	if err != nil {
		return nil, err
	}
	if err := checkRegion(mem, p.size); err != nil {
		return nil, err
	}
	// Clear the slots: a seq word left by an earlier ring in this memory
	// could otherwise announce a message that was never sent.
	clear(mem[dataOffset:p.size])
	return newSPSC(mem, initControl(mem, p), p, opts), nil
}

// AttachSPSC returns the SPSC ring that NewSPSC initialised at the start of
// mem, after validating its header.
func AttachSPSC(mem []byte, opts ...Option) (*SPSC, error) {
	c, p, err := attachControl(mem, KindSPSC)
	if err != nil {
		return nil, err
	}
	want, err := spscParams(int(min(p.capacity, MaxCapacity+1)), int(min(p.slotSize, MaxSlotSize+1)))
	if err != nil {
		return nil, fmt.Errorf("%w: header: %w", ErrCorrupt, err)
	}
	if want.size != p.size {
		return nil, fmt.Errorf("%w: header size %d, slots need %d", ErrCorrupt, p.size, want.size)
	}
	return newSPSC(mem, c, p, opts), nil
}

func newSPSC(mem []byte, c *control, p params, opts []Option) *SPSC {
	return &SPSC{
		c:        c,
		data:     mem[dataOffset:p.size:p.size],
		capacity: p.capacity,
		mask:     p.capacity - 1,
		slotSize: int(p.slotSize),
		stride:   int(spscStride(uint64(p.slotSize))),
		opts:     applyOptions(opts),
	}
}

// Producer returns this process's producing handle, the same one on every
// call. The first call finds where the previous producer (possibly one that
// was killed) stopped: the first slot from the shared head on whose seq
// word no message is published.
func (r *SPSC) Producer() *SPSCProducer {
	if r.prod == nil {
		p := &SPSCProducer{r: r}
		p.recover()
		p.canPut = func() bool {
			// True for any state other than exactly full, so that a
			// corrupt head is reported by the next try, not waited on.
			return p.tail-r.c.head.Load() != r.capacity
		}
		r.prod = p
	}
	return r.prod
}

// Consumer returns this process's consuming handle, the same one on every
// call. It starts at the shared head: a message the previous consumer took
// but had not yet released when it died is delivered again.
func (r *SPSC) Consumer() *SPSCConsumer {
	if r.cons == nil {
		c := &SPSCConsumer{r: r, head: r.c.head.Load()}
		c.canGet = func() bool {
			h := c.head
			return r.seq(h).Load() == h+1 || r.c.tail.Load()-h-1 < r.capacity || r.c.isClosed()
		}
		r.cons = c
	}
	return r.cons
}

// Cap returns the number of slots.
func (r *SPSC) Cap() int { return int(r.capacity) }

// SlotSize returns the largest message, in bytes, a slot holds.
func (r *SPSC) SlotSize() int { return r.slotSize }

// Len returns the number of messages in the ring at the moment of the call
// (0 should the shared state be corrupt). It counts the published slots
// from the shared head on, skipping to the tail hint when that is valid,
// so it costs a few dozen loads at most while the producer runs.
func (r *SPSC) Len() int {
	return int(r.count(r.c.head.Load()))
}

// count returns how many consecutive messages are published from index h
// on: from h to the tail hint when the hint is valid (it is only ever set
// to an index whose message and every one before it are published, so a
// hint ahead of h whose own slot says so is trusted), then slot by slot.
func (r *SPSC) count(h uint64) uint64 {
	n := uint64(0)
	if t := r.c.tail.Load(); t-h-1 < r.capacity {
		n = t - h
	}
	return n + r.published(h+n, r.capacity-n)
}

// Closed reports whether the producer has closed the ring.
func (r *SPSC) Closed() bool { return r.c.isClosed() }

// published counts the consecutive slots from index h on, at most max,
// whose seq word says they hold a message.
func (r *SPSC) published(h, max uint64) uint64 {
	var n uint64
	for n < max && r.seq(h+n).Load() == h+n+1 {
		n++
	}
	return n
}

// slot returns the bytes of slot i (header and payload).
func (r *SPSC) slot(i uint64) []byte {
	off := int(i&r.mask) * r.stride
	return r.data[off : off+r.stride : off+r.stride]
}

// seq returns the seq word of slot i.
func (r *SPSC) seq(i uint64) *atomic.Uint64 {
	return (*atomic.Uint64)(unsafe.Pointer(&r.data[int(i&r.mask)*r.stride]))
}

// msgLen reads and checks the length word of a published slot.
func (r *SPSC) msgLen(s []byte) (int, error) {
	n := binary.LittleEndian.Uint32(s[slotLenOff:])
	if uint64(n) > uint64(r.slotSize) {
		return 0, fmt.Errorf("%w: spsc slot length %d over slot size %d", ErrCorrupt, n, r.slotSize)
	}
	return int(n), nil
}

func (r *SPSC) tooLarge(n int) error {
	return fmt.Errorf("%w: message of %d bytes, slot holds %d", ErrTooLarge, n, r.slotSize)
}

// --- producer ---

// recover sets the producer's tail: everything below the shared tail is
// published (the producer stores it only then), and so is every slot after
// it, from the head on, whose seq word is its index+1; the first slot that
// is neither is the true tail (its seq holds an older lap's value, never
// index+1). A producer killed before its publishing store (a single
// message's seq, a batch's tail) left nothing there: the slots are simply
// refilled; one killed after it left whole messages. So no kill leaves a
// state that a new producer reports as corrupt or that stalls the consumer.
func (p *SPSCProducer) recover() {
	r := p.r
	h := r.c.head.Load()
	p.cachedHead = h
	p.tail = h + r.count(h)
	p.closed = r.c.isClosed()
	r.c.tail.Store(p.tail)
}

// isPrevLap reports whether s is a seq word that slot h can hold before
// message h is published by it: 0 (never used) or index+1 of a message of
// an earlier lap in that slot.
func isPrevLap(s, h, capacity uint64) bool {
	return s == 0 || (s < h+1 && (h+1-s)&(capacity-1) == 0)
}

// hintEvery is how often, in single-message enqueues, the producer also
// stores the shared tail (a batch publishes by storing it). The tail's line
// is read by the consumer only when its head slot looks empty, so the store
// mostly stays in the producer's cache; it bounds the scan of Len and of an
// attaching producer's recovery.
const hintEvery = 64

// room returns how many slots the producer may fill. It reloads the
// consumer's head (and stores the shared tail) only when the cached head
// says there is room for fewer than want.
func (p *SPSCProducer) room(want uint64) (uint64, error) {
	r := p.r
	used := p.tail - p.cachedHead
	if used > r.capacity || r.capacity-used < want {
		// Acquire: the consumer's reads of the slots before head happened
		// before its release store of head, so they are done with them.
		p.cachedHead = r.c.head.Load()
		used = p.tail - p.cachedHead
		if used > r.capacity {
			return 0, fmt.Errorf("%w: spsc tail %d, head %d, capacity %d", ErrCorrupt, p.tail, p.cachedHead, r.capacity)
		}
		publish64(&r.c.tail, p.tail)
	}
	return r.capacity - used, nil
}

// publish makes the message in slot i visible: one release store of its
// seq word, after its length and payload (program order; the store is a
// release, so the consumer's acquire load of seq orders its reads of the
// slot after them; wait.go argues the wake-up that follows).
func (p *SPSCProducer) publish(i uint64) {
	hook(stepProducerWritten)
	// A sequentially consistent store (XCHG on amd64), not publish64's
	// release MOV: measured on the 2-vCPU VM, the unbatched cross-process
	// stream runs at about 70 ns a message with it and 110-160 ns with the
	// plain store (docs/ring.md, "Why single messages use XCHG"); stronger
	// ordering is never wrong, and the sleeper check after it needs no
	// fence.
	p.r.seq(i).Store(i + 1)
	hook(stepProducerPublished)
}

// notify wakes the consumer if it is parked. The sleeper count is checked
// here, inline, so that the common case (nobody asleep: one load of a line
// the consumer does not write while it runs) makes no call.
func (p *SPSCProducer) notify() {
	if e := &p.r.c.notEmpty; p.r.c.mayWake(e) {
		p.r.c.wake(e)
	}
	hook(stepProducerNotified)
}

// TryEnqueue copies msg into the next slot if there is room. It reports
// false (and no error) when the ring is full.
func (p *SPSCProducer) TryEnqueue(msg []byte) (bool, error) {
	r := p.r
	if len(msg) > r.slotSize {
		return false, r.tooLarge(len(msg))
	}
	if p.reserved != 0 {
		return false, fmt.Errorf("%w: enqueue with %d slots reserved", ErrOrder, p.reserved)
	}
	if p.closed {
		return false, ErrClosed
	}
	if p.tail-p.cachedHead >= r.capacity {
		if n, err := p.room(1); n == 0 || err != nil {
			return false, err
		}
	}
	t := p.tail
	s := r.slot(t)
	binary.LittleEndian.PutUint32(s[slotLenOff:], uint32(len(msg)))
	copy(s[slotHeader:], msg)
	p.publish(t)
	p.tail = t + 1
	if t%hintEvery == 0 {
		publish64(&r.c.tail, t+1)
	}
	p.notify()
	return true, nil
}

// Enqueue copies msg into the next slot, waiting while the ring is full.
// It returns ErrClosed once the ring is closed and ctx.Err() when ctx ends
// first.
func (p *SPSCProducer) Enqueue(ctx context.Context, msg []byte) error {
	for {
		ok, err := p.TryEnqueue(msg)
		if ok || err != nil {
			return err
		}
		if err := p.r.opts.wait(ctx, p.r.c, &p.r.c.notFull, p.canPut); err != nil {
			return err
		}
	}
}

// TryEnqueueBatch copies as many of msgs as there is room for into the
// ring and returns how many it enqueued (0 when the ring is full). A
// message longer than SlotSize stops the batch: the ones before it are
// enqueued and the error wraps ErrTooLarge. The consumer is woken once per
// batch.
func (p *SPSCProducer) TryEnqueueBatch(msgs [][]byte) (int, error) {
	r := p.r
	if p.reserved != 0 {
		return 0, fmt.Errorf("%w: enqueue with %d slots reserved", ErrOrder, p.reserved)
	}
	if p.closed {
		return 0, ErrClosed
	}
	if len(msgs) == 0 {
		return 0, nil
	}
	room, err := p.room(uint64(len(msgs)))
	if err != nil {
		return 0, err
	}
	k := min(room, uint64(len(msgs)))
	var i uint64
	for ; i < k; i++ {
		m := msgs[i]
		if len(m) > r.slotSize {
			err = r.tooLarge(len(m))
			break
		}
		s := r.slot(p.tail + i)
		binary.LittleEndian.PutUint32(s[slotLenOff:], uint32(len(m)))
		copy(s[slotHeader:], m)
	}
	p.publishRun(i)
	return int(i), err
}

// publishRun publishes the n slots from the producer's tail on, whose
// lengths and payloads are written, with one release store of the shared
// tail (the slots' seq words are not touched: below the tail, a slot is
// published whatever its seq), and wakes the consumer once. A consumer that
// finds its head slot unpublished by seq loads the tail, acquire, and takes
// the whole run in one sweep. A kill before the store leaves none of the
// run published, after it all of it.
func (p *SPSCProducer) publishRun(n uint64) {
	if n == 0 {
		return
	}
	hook(stepProducerWritten)
	p.tail += n
	publish64(&p.r.c.tail, p.tail)
	hook(stepProducerPublished)
	p.notify()
}

// EnqueueBatch enqueues every message of msgs in order, waiting while the
// ring is full. It returns how many it enqueued: len(msgs) unless an error
// (ErrClosed, ErrTooLarge, ctx.Err()) stopped it.
func (p *SPSCProducer) EnqueueBatch(ctx context.Context, msgs [][]byte) (int, error) {
	return enqueueAll(ctx, &p.r.opts, p.r.c, &p.r.c.notFull, p.canPut, p.TryEnqueueBatch, msgs)
}

// reserve hands out up to k free slots, waiting for at least one if block.
func (p *SPSCProducer) reserve(ctx context.Context, k int, block bool) ([][]byte, error) {
	r := p.r
	if p.reserved != 0 {
		return nil, fmt.Errorf("%w: reserve with %d slots reserved", ErrOrder, p.reserved)
	}
	if k < 1 {
		return nil, nil
	}
	for {
		if p.closed {
			return nil, ErrClosed
		}
		room, err := p.room(uint64(k))
		if err != nil {
			return nil, err
		}
		if room > 0 {
			n := int(min(room, uint64(k)))
			p.resv = p.resv[:0]
			for i := range n {
				s := r.slot(p.tail + uint64(i))
				p.resv = append(p.resv, s[slotHeader:slotHeader+r.slotSize:slotHeader+r.slotSize])
			}
			p.reserved = n
			return p.resv, nil
		}
		if !block {
			return nil, nil
		}
		if err := r.opts.wait(ctx, r.c, &r.c.notFull, p.canPut); err != nil {
			return nil, err
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
}

// Reserve waits for a free slot and returns its payload bytes (SlotSize
// long) for the caller to write in place; Commit publishes it. The slice is
// valid until Commit or Close. Only one reservation may be pending.
func (p *SPSCProducer) Reserve(ctx context.Context) ([]byte, error) {
	v, err := p.reserve(ctx, 1, true)
	if err != nil {
		return nil, err
	}
	return v[0], nil
}

// TryReserve is Reserve without waiting: it reports false when the ring is
// full.
func (p *SPSCProducer) TryReserve() ([]byte, bool, error) {
	v, err := p.reserve(nil, 1, false)
	if err != nil || len(v) == 0 {
		return nil, false, err
	}
	return v[0], true, nil
}

// ReserveBatch waits for at least one free slot and reserves up to k
// consecutive ones, returning their payload bytes (each SlotSize long).
// The returned slice and the slots are valid until CommitBatch or Close.
func (p *SPSCProducer) ReserveBatch(ctx context.Context, k int) ([][]byte, error) {
	return p.reserve(ctx, k, true)
}

// Commit publishes the reserved slot as a message of its first n bytes.
func (p *SPSCProducer) Commit(n int) error {
	var lens [1]int
	lens[0] = n
	return p.CommitBatch(lens[:])
}

// CommitBatch publishes the first len(lens) reserved slots, slot i as a
// message of lens[i] bytes, and drops the rest of the reservation.
func (p *SPSCProducer) CommitBatch(lens []int) error {
	r := p.r
	if len(lens) > p.reserved {
		return fmt.Errorf("%w: commit of %d slots, %d reserved", ErrOrder, len(lens), p.reserved)
	}
	for _, n := range lens {
		if n < 0 || n > r.slotSize {
			return fmt.Errorf("%w: commit length %d, slot holds %d", ErrTooLarge, n, r.slotSize)
		}
	}
	p.reserved = 0
	for i, n := range lens {
		binary.LittleEndian.PutUint32(r.slot(p.tail + uint64(i))[slotLenOff:], uint32(n))
	}
	p.publishRun(uint64(len(lens)))
	return nil
}

// Close marks the ring closed and wakes both sides. Further enqueues fail
// with ErrClosed; the consumer receives the messages still in the ring and
// then ErrClosed. Close is idempotent and does not unmap anything. A
// pending reservation is discarded.
func (p *SPSCProducer) Close() error {
	p.reserved = 0
	p.closed = true
	// The tail hint first, then closed (sequentially consistent): a
	// consumer that sees closed sees every seq word published before it.
	p.r.c.tail.Store(p.tail)
	p.r.c.close()
	return nil
}

// --- consumer ---

// next reports whether the message at the consumer's head is published:
// by its slot's seq word (a single enqueue), or by the shared tail being
// past it (a batch, or the producer's periodic tail store). The tail is
// loaded only when the cached copy and the seq word say no. Both loads are
// acquires: the reads of the slot that follow see what the producer wrote
// before its release store. When neither says yes, the seq word must hold
// a value a producer can have left (0, or an older lap's index+1):
// anything else is ErrCorrupt.
func (c *SPSCConsumer) next() (bool, error) {
	r := c.r
	h := c.head
	if c.cachedTail-h-1 < r.capacity {
		return true, nil
	}
	s := r.seq(h).Load()
	if s == h+1 {
		return true, nil
	}
	c.cachedTail = r.c.tail.Load()
	if c.cachedTail-h-1 < r.capacity {
		return true, nil
	}
	if !isPrevLap(s, h, r.capacity) {
		return false, fmt.Errorf("%w: spsc slot of index %d has seq %d, want %d or an earlier lap's", ErrCorrupt, h, s, h+1)
	}
	return false, nil
}

// run returns how many messages, at most k, a batch may take from the
// consumer's head on, given that the head's message is published. Below
// the shared tail every message is published: one load of the tail's line
// stands for k loads of seq words. Past it, it scans the seq words.
func (c *SPSCConsumer) run(k uint64) uint64 {
	r := c.r
	h := c.head
	if c.cachedTail-h-1 >= r.capacity {
		c.cachedTail = r.c.tail.Load()
	}
	if t := c.cachedTail; t-h-1 < r.capacity {
		return min(t-h, k)
	}
	n := uint64(1)
	for n < k && r.seq(h+n).Load() == h+n+1 {
		n++
	}
	return min(n, k)
}

// drained reports, for a consumer that found the slot at its head empty,
// whether the ring is closed and stays empty: closed is read first, then
// the slot again (the producer publishes its last message before it
// closes). It never waits and never compares indices that a killed
// producer can leave inconsistent.
func (c *SPSCConsumer) drained() (bool, error) {
	if !c.r.c.isClosed() {
		return false, nil
	}
	ok, err := c.next()
	return !ok && err == nil, err
}

// empty is the result of a try on a ring with nothing at the head: false,
// ErrClosed once drained, or the error found.
func (c *SPSCConsumer) empty() error {
	d, err := c.drained()
	if err != nil {
		return err
	}
	if d {
		return ErrClosed
	}
	return nil
}

// release hands the slots before h back to the producer: a release store
// of head (the consumer's reads of those slots come before it), then a wake
// of the producer if it is parked.
func (c *SPSCConsumer) release(h uint64) {
	hook(stepConsumerCopied)
	c.head = h
	// Sequentially consistent for the same measured reason as the
	// producer's seq store (docs/ring.md, "Why single messages use XCHG").
	c.r.c.head.Store(h)
	hook(stepConsumerReleased)
	if e := &c.r.c.notFull; e.Sleepers() != 0 {
		e.Notify()
	}
}

// TryDequeue copies the next message into buf and returns its length. It
// reports false (and no error) when the ring is empty, ErrClosed when it
// is empty and closed, and ErrShortBuffer (leaving the message in the
// ring) when buf is shorter than the message.
func (c *SPSCConsumer) TryDequeue(buf []byte) (int, bool, error) {
	r := c.r
	if c.peeked != 0 {
		return 0, false, fmt.Errorf("%w: dequeue with %d slots peeked", ErrOrder, c.peeked)
	}
	h := c.head
	if r.seq(h).Load() != h+1 {
		ok, err := c.next()
		if err != nil {
			return 0, false, err
		}
		if !ok {
			return 0, false, c.empty()
		}
	}
	s := r.slot(h)
	n, err := r.msgLen(s)
	if err != nil {
		return 0, false, err
	}
	if n > len(buf) {
		return 0, false, fmt.Errorf("%w: message of %d bytes, buffer of %d", ErrShortBuffer, n, len(buf))
	}
	copy(buf, s[slotHeader:slotHeader+n])
	c.release(h + 1)
	return n, true, nil
}

// Dequeue copies the next message into buf and returns its length, waiting
// while the ring is empty. It returns ErrClosed once the ring is closed and
// drained, and ctx.Err() when ctx ends first.
func (c *SPSCConsumer) Dequeue(ctx context.Context, buf []byte) (int, error) {
	for {
		n, ok, err := c.TryDequeue(buf)
		if ok || err != nil {
			return n, err
		}
		if err := c.wait(ctx); err != nil {
			return 0, err
		}
	}
}

// wait waits until the slot at head may hold a message or the ring is
// closed. It also returns ctx's error when the wait condition held but the
// try that follows found nothing, so no loop outlives its context.
func (c *SPSCConsumer) wait(ctx context.Context) error {
	if err := c.r.opts.wait(ctx, c.r.c, &c.r.c.notEmpty, c.canGet); err != nil {
		return err
	}
	return ctx.Err()
}

// TryDequeueBatch copies up to len(bufs) messages and hands their slots
// back with one store. Message i goes into bufs[i][:cap(bufs[i])], and
// bufs[i] is resliced to the message's length. It returns how many it
// dequeued (0 when empty), ErrClosed when empty and closed, and
// ErrShortBuffer when the first message does not fit bufs[0]; a later
// message that does not fit ends the batch early without an error.
func (c *SPSCConsumer) TryDequeueBatch(bufs [][]byte) (int, error) {
	r := c.r
	if c.peeked != 0 {
		return 0, fmt.Errorf("%w: dequeue with %d slots peeked", ErrOrder, c.peeked)
	}
	if len(bufs) == 0 {
		return 0, nil
	}
	ok, err := c.next()
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, c.empty()
	}
	h := c.head
	k := c.run(uint64(len(bufs)))
	var i uint64
	for ; i < k; i++ {
		s := r.slot(h + i)
		n, lerr := r.msgLen(s)
		if lerr != nil {
			err = lerr
			break
		}
		b := bufs[i][:cap(bufs[i])]
		if n > len(b) {
			if i == 0 {
				err = fmt.Errorf("%w: message of %d bytes, buffer of %d", ErrShortBuffer, n, len(b))
			}
			break
		}
		bufs[i] = b[:copy(b, s[slotHeader:slotHeader+n])]
	}
	if i > 0 {
		c.release(h + i)
	}
	return int(i), err
}

// DequeueBatch waits until at least one message is in the ring, then
// dequeues like TryDequeueBatch. It returns ErrClosed once the ring is
// closed and drained, and ctx.Err() when ctx ends first.
func (c *SPSCConsumer) DequeueBatch(ctx context.Context, bufs [][]byte) (int, error) {
	for {
		n, err := c.TryDequeueBatch(bufs)
		if n > 0 || err != nil || len(bufs) == 0 {
			return n, err
		}
		if err := c.wait(ctx); err != nil {
			return 0, err
		}
	}
}

// peek hands out up to k messages in place, waiting for one if block.
func (c *SPSCConsumer) peek(ctx context.Context, k int, block bool) ([][]byte, error) {
	r := c.r
	if c.peeked != 0 {
		return nil, fmt.Errorf("%w: peek with %d slots peeked", ErrOrder, c.peeked)
	}
	if k < 1 {
		return nil, nil
	}
	for {
		ok, err := c.next()
		if err != nil {
			return nil, err
		}
		if ok {
			h := c.head
			c.peekv = c.peekv[:0]
			for i := range c.run(uint64(k)) {
				s := r.slot(h + i)
				l, err := r.msgLen(s)
				if err != nil {
					return nil, err
				}
				c.peekv = append(c.peekv, s[slotHeader:slotHeader+l:slotHeader+l])
			}
			c.peeked = len(c.peekv)
			return c.peekv, nil
		}
		if err := c.empty(); err != nil {
			return nil, err
		}
		if !block {
			return nil, nil
		}
		if err := c.wait(ctx); err != nil {
			return nil, err
		}
	}
}

// Peek waits for a message and returns its bytes in place, without copying.
// The slice is valid until Release; the message stays in the ring until
// then. It returns ErrClosed once the ring is closed and drained.
func (c *SPSCConsumer) Peek(ctx context.Context) ([]byte, error) {
	v, err := c.peek(ctx, 1, true)
	if err != nil {
		return nil, err
	}
	return v[0], nil
}

// TryPeek is Peek without waiting: it reports false when the ring is empty.
func (c *SPSCConsumer) TryPeek() ([]byte, bool, error) {
	v, err := c.peek(nil, 1, false)
	if err != nil || len(v) == 0 {
		return nil, false, err
	}
	return v[0], true, nil
}

// PeekBatch waits for at least one message and returns up to k messages in
// place. The returned slice and the messages are valid until Release.
func (c *SPSCConsumer) PeekBatch(ctx context.Context, k int) ([][]byte, error) {
	return c.peek(ctx, k, true)
}

// Release hands the peeked slots back to the producer with one store.
func (c *SPSCConsumer) Release() error {
	if c.peeked == 0 {
		return fmt.Errorf("%w: release without peek", ErrOrder)
	}
	n := uint64(c.peeked)
	c.peeked = 0
	c.release(c.head + n)
	return nil
}

// spscCheck pins the control block layout at compile time.
var _ = [1]struct{}{}[unsafe.Sizeof(control{})-dataOffset]
