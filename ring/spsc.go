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
//	offset 0: seq uint64  index+1 of the message, stored by single-message
//	                      publications (a hint; see SPSC.avail)
//	offset 8: len uint32  message length
//	offset 12: reserved
const (
	slotHeader = 16
	slotLenOff = 8
)

// MaxSlotSize is the largest slot payload the fixed-slot rings accept.
const MaxSlotSize = 1 << 30

// MaxCapacity is the largest number of slots the fixed-slot rings accept:
// 1<<32 where int has 64 bits, 1<<30 where it has 32.
const MaxCapacity = 1 << (30 + 2*(^uint(0)>>63))

// SPSC is a single-producer single-consumer ring of fixed-size slots in a
// shared region. Each slot carries a message of 0 to SlotSize bytes (a
// 16-byte slot header with its length in front of the payload).
//
// One process (or goroutine) uses its handle as the producer, calling only
// the producer methods (Enqueue, Reserve, Close, ...), and one uses its
// handle as the consumer (Dequeue, Peek, ...). A handle is not safe for
// concurrent use by several goroutines on the same side; the producer and
// the consumer may share one handle from two goroutines.
type SPSC struct {
	mem      []byte
	c        *control
	data     []byte
	capacity uint64
	mask     uint64
	slotSize int
	stride   int
	opts     options
	canPut   func() bool
	canGet   func() bool

	_ [cacheLine]byte
	// Producer-local state.
	cachedHead uint64   // last head seen; reloaded only when the ring looks full
	reserved   int      // slots handed out by Reserve and not yet committed
	resv       [][]byte // reused result of ReserveBatch

	_ [cacheLine]byte
	// Consumer-local state.
	cachedTail uint64   // last tail seen; reloaded only when the ring looks empty
	peeked     int      // slots handed out by Peek and not yet released
	peekv      [][]byte // reused result of PeekBatch
}

// spscStride is the distance between SPSC slots: the 16-byte slot header
// plus the payload, rounded by lineStride.
func spscStride(slotSize uint64) uint64 { return lineStride(slotHeader + align8(slotSize)) }

// lineStride rounds a slot's size so that no slot straddles a cache line
// that another slot uses: up to 32 or 64 bytes when it fits in a line, else
// up to a multiple of 64. Without it, the producer filling slot i+1 keeps
// stealing the line the consumer is reading slot i from (64 B SPSC messages
// in 80-byte slots took 141 ns each instead of 43 ns).
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
// returns a handle to it. Other processes attach with AttachSPSC. The handle
// is valid while mem stays mapped.
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

// AttachSPSC returns a handle to the SPSC ring that NewSPSC initialised at
// the start of mem, after validating its header.
func AttachSPSC(mem []byte, opts ...Option) (*SPSC, error) {
	c, p, err := attachControl(mem, KindSPSC)
	if err != nil {
		return nil, err
	}
	want, err := spscParams(int(min(p.capacity, MaxCapacity+1)), int(min(p.slotSize, MaxSlotSize+1)))
	if err != nil {
		return nil, err
	}
	if want.size != p.size {
		return nil, fmt.Errorf("%w: header size %d, slots need %d", ErrConfig, p.size, want.size)
	}
	return newSPSC(mem, c, p, opts), nil
}

func newSPSC(mem []byte, c *control, p params, opts []Option) *SPSC {
	r := &SPSC{
		mem:      mem[:p.size:p.size],
		c:        c,
		data:     mem[dataOffset:p.size:p.size],
		capacity: p.capacity,
		mask:     p.capacity - 1,
		slotSize: int(p.slotSize),
		stride:   int(spscStride(uint64(p.slotSize))),
		opts:     applyOptions(opts),
	}
	r.cachedHead = c.head.Load()
	r.cachedTail = c.tail.Load()
	// Wait conditions. They report true for any state other than exactly
	// full (or empty), so that a corrupt state is reported by the next
	// try, not waited on forever.
	r.canPut = func() bool { return r.c.isClosed() || r.c.tail.Load()-r.c.head.Load() != r.capacity }
	r.canGet = func() bool {
		h := r.c.head.Load()
		if r.seq(h).Load() == h+1 || r.c.isClosed() {
			return true
		}
		t := r.c.tail.Load()
		return t != h && t-h != lagging
	}
	return r
}

// Cap returns the number of slots.
func (r *SPSC) Cap() int { return int(r.capacity) }

// SlotSize returns the largest message, in bytes, a slot holds.
func (r *SPSC) SlotSize() int { return r.slotSize }

// Len returns the number of messages in the ring at the moment of the call
// (clamped to [0, Cap] should the shared indices be corrupt).
func (r *SPSC) Len() int {
	return r.c.distance(r.capacity)
}

// Closed reports whether the producer has closed the ring.
func (r *SPSC) Closed() bool { return r.c.isClosed() }

// Close marks the ring closed and wakes both sides. Further enqueues fail
// with ErrClosed; consumers receive the messages still in the ring and then
// ErrClosed. Close is meant for the producer; it is idempotent and does not
// unmap anything. A pending reservation is discarded.
func (r *SPSC) Close() error {
	r.reserved = 0
	r.c.close()
	return nil
}

// slot returns the bytes of slot i (header and payload).
func (r *SPSC) slot(i uint64) []byte {
	off := int(i&r.mask) * r.stride
	return r.data[off : off+r.stride : off+r.stride]
}

// room returns how many slots the producer may fill, starting at tail t.
// It reloads the consumer's head only when the cached copy says full.
func (r *SPSC) room(t uint64) (uint64, error) {
	used := t - r.cachedHead
	if used >= r.capacity {
		r.cachedHead = r.c.head.Load()
		used = t - r.cachedHead
		if used > r.capacity {
			return 0, fmt.Errorf("%w: spsc tail %d, head %d, capacity %d", ErrCorrupt, t, r.cachedHead, r.capacity)
		}
	}
	return r.capacity - used, nil
}

// avail returns how many messages the consumer may take, starting at head
// h; want is how many the caller would take. It reloads the producer's tail
// only when the cached copy says empty. A caller that wants one message
// first looks at the seq word of slot h, which a single-message publication
// sets to h+1 before it stores the tail: the message is then known to be
// there from the slot line the consumer must read anyway, without pulling
// the producer's tail line across (this is what makes a ping-pong cheap).
// A batch caller reloads the tail first, so that it sees every message
// published so far. seq is a 64-bit index, so a stale seq from an earlier
// lap, or left before a batch publication (which does not set it), never
// equals h+1.
func (r *SPSC) avail(h, want uint64) (uint64, error) {
	n := r.cachedTail - h
	if n == 0 || n > r.capacity {
		if want == 1 && r.seq(h).Load() == h+1 {
			return 1, nil
		}
		r.cachedTail = r.c.tail.Load()
		n = r.cachedTail - h
		if n == 0 || n == lagging {
			// Empty, or the tail not yet stored for a message whose
			// seq is (message h), or for the one before it (a tail
			// one behind the head): look at seq once more.
			if r.seq(h).Load() == h+1 {
				return 1, nil
			}
			return 0, nil
		}
		if n > r.capacity {
			return 0, fmt.Errorf("%w: spsc tail %d, head %d, capacity %d", ErrCorrupt, r.cachedTail, h, r.capacity)
		}
	}
	return n, nil
}

// drained reports, for a consumer that found the ring empty at head h,
// whether the ring is closed and will stay empty. The closed flag is read
// before the tail: the producer stores its last tail before closing.
func (r *SPSC) drained(h uint64) bool {
	if !r.c.isClosed() {
		return false
	}
	r.cachedTail = r.c.tail.Load()
	return r.cachedTail == h
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

// lagging is tail-head when the tail is one behind the head: the consumer
// took message h-1 by its seq word before the producer stored the tail.
const lagging = ^uint64(0)

// seq returns the seq word of slot i.
func (r *SPSC) seq(i uint64) *atomic.Uint64 {
	return (*atomic.Uint64)(unsafe.Pointer(&r.data[int(i&r.mask)*r.stride]))
}

// publishOne publishes the single message at index t: its slot's seq word
// first (the consumer polls the slot line it must read anyway), then the
// tail, then wakes the consumer if it sleeps. Between the two stores a
// consumer may already have taken the message, so it can see the tail one
// behind its head; avail treats exactly that as empty.
func (r *SPSC) publishOne(t uint64) {
	r.seq(t).Store(t + 1)
	r.c.tail.Store(t + 1)
	r.c.notEmpty.Notify()
}

// publishTail makes the slots before t visible to the consumer and wakes it
// if it sleeps.
func (r *SPSC) publishTail(t uint64) {
	r.c.tail.Store(t)
	r.c.notEmpty.Notify()
}

// publishHead hands the slots before h back to the producer and wakes it if
// it sleeps.
func (r *SPSC) publishHead(h uint64) {
	r.c.head.Store(h)
	r.c.notFull.Notify()
}

// TryEnqueue copies msg into the next slot if there is room. It reports
// false (and no error) when the ring is full.
func (r *SPSC) TryEnqueue(msg []byte) (bool, error) {
	if len(msg) > r.slotSize {
		return false, r.tooLarge(len(msg))
	}
	if r.reserved != 0 {
		return false, fmt.Errorf("%w: enqueue with %d slots reserved", ErrOrder, r.reserved)
	}
	if r.c.isClosed() {
		return false, ErrClosed
	}
	t := r.c.tail.Load()
	n, err := r.room(t)
	if n == 0 || err != nil {
		return false, err
	}
	s := r.slot(t)
	binary.LittleEndian.PutUint32(s[slotLenOff:], uint32(len(msg)))
	copy(s[slotHeader:], msg)
	r.publishOne(t)
	return true, nil
}

// Enqueue copies msg into the next slot, waiting while the ring is full.
// It returns ErrClosed once the ring is closed and ctx.Err() when ctx ends
// first.
func (r *SPSC) Enqueue(ctx context.Context, msg []byte) error {
	for {
		ok, err := r.TryEnqueue(msg)
		if ok || err != nil {
			return err
		}
		if err := r.opts.wait(ctx, &r.c.notFull, r.canPut); err != nil {
			return err
		}
	}
}

// TryDequeue copies the next message into buf and returns its length. It
// reports false (and no error) when the ring is empty, ErrClosed when it
// is empty and closed, and ErrShortBuffer (leaving the message in the
// ring) when buf is shorter than the message.
func (r *SPSC) TryDequeue(buf []byte) (int, bool, error) {
	if r.peeked != 0 {
		return 0, false, fmt.Errorf("%w: dequeue with %d slots peeked", ErrOrder, r.peeked)
	}
	h := r.c.head.Load()
	a, err := r.avail(h, 1)
	if err != nil {
		return 0, false, err
	}
	if a == 0 {
		if r.drained(h) {
			return 0, false, ErrClosed
		}
		return 0, false, nil
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
	r.publishHead(h + 1)
	return n, true, nil
}

// Dequeue copies the next message into buf and returns its length, waiting
// while the ring is empty. It returns ErrClosed once the ring is closed and
// drained, and ctx.Err() when ctx ends first.
func (r *SPSC) Dequeue(ctx context.Context, buf []byte) (int, error) {
	for {
		n, ok, err := r.TryDequeue(buf)
		if ok || err != nil {
			return n, err
		}
		if err := r.opts.wait(ctx, &r.c.notEmpty, r.canGet); err != nil {
			return 0, err
		}
	}
}

// spscCheck pins the control block layout at compile time.
var _ = [1]struct{}{}[unsafe.Sizeof(control{})-dataOffset]
