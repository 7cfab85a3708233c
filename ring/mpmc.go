package ring

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"unsafe"
)

// mpmcSlotHeader is the turn word, the length word and a reserved word in
// front of every MPMC slot's payload.
const mpmcSlotHeader = 16

// MPMC is a multi-producer multi-consumer ring of fixed-size slots in a
// shared region, after D. Vyukov's bounded queue, with a per-slot turn
// number: slot i&mask serves position i in lap i>>log2(capacity); the
// turn is 2*lap while the slot waits for that lap's producer and 2*lap+1
// while it holds that lap's message. Producers claim positions by
// compare-and-swap on the enqueue index, consumers on the dequeue index;
// each message goes to exactly one consumer, and messages from one producer
// are dequeued in the order it enqueued them.
//
// Any number of processes may attach; a handle is safe for concurrent use
// by several goroutines. A producer or consumer that dies between claiming
// a position and publishing its slot stalls the ring at that slot: this is
// the price of a lock-free bounded queue, and liveness is the owner's job.
type MPMC struct {
	mem      []byte
	c        *control
	data     []byte
	capacity uint64
	mask     uint64
	shift    uint
	slotSize int
	stride   int
	opts     options
	canPut   func() bool
	canGet   func() bool
}

func mpmcStride(slotSize uint64) uint64 { return mpmcSlotHeader + align8(slotSize) }

func mpmcParams(capacity, slotSize int) (params, error) {
	return slotParams(KindMPMC, capacity, slotSize, mpmcStride)
}

// MPMCSize returns the number of bytes an MPMC ring with capacity slots (a
// power of two) of slotSize payload bytes occupies.
func MPMCSize(capacity, slotSize int) (int, error) {
	p, err := mpmcParams(capacity, slotSize)
	if err != nil {
		return 0, err
	}
	return int(p.size), nil
}

// NewMPMC initialises an empty MPMC ring at the start of mem, which must be
// 64-byte aligned and at least MPMCSize(capacity, slotSize) bytes long.
func NewMPMC(mem []byte, capacity, slotSize int, opts ...Option) (*MPMC, error) {
	p, err := mpmcParams(capacity, slotSize)
	if err != nil {
		return nil, err
	}
	if err := checkRegion(mem, p.size); err != nil {
		return nil, err
	}
	clear(mem[dataOffset:p.size]) // every turn 0: every slot waits for lap 0
	return newMPMC(mem, initControl(mem, p), p, opts), nil
}

// AttachMPMC returns a handle to the MPMC ring initialised at the start of
// mem, after validating its header.
func AttachMPMC(mem []byte, opts ...Option) (*MPMC, error) {
	c, p, err := attachControl(mem, KindMPMC)
	if err != nil {
		return nil, err
	}
	want, err := mpmcParams(int(min(p.capacity, MaxCapacity+1)), int(min(p.slotSize, MaxSlotSize+1)))
	if err != nil {
		return nil, err
	}
	if want.size != p.size {
		return nil, fmt.Errorf("header size %d, slots need %d: %w", p.size, want.size, ErrConfig)
	}
	return newMPMC(mem, c, p, opts), nil
}

func newMPMC(mem []byte, c *control, p params, opts []Option) *MPMC {
	r := &MPMC{
		mem:      mem[:p.size:p.size],
		c:        c,
		data:     mem[dataOffset:p.size:p.size],
		capacity: p.capacity,
		mask:     p.capacity - 1,
		shift:    log2(p.capacity),
		slotSize: int(p.slotSize),
		stride:   int(mpmcStride(uint64(p.slotSize))),
		opts:     applyOptions(opts),
	}
	// A producer may go on when the slot at the enqueue index is no longer
	// held by the previous lap; a consumer when the slot at the dequeue
	// index holds this lap's message, or when the ring is closed and no
	// position is claimed beyond it.
	r.canPut = func() bool {
		pos := r.c.tail.Load()
		return r.c.isClosed() || int64(r.turn(pos).Load()-r.putTurn(pos)) >= 0
	}
	r.canGet = func() bool {
		pos := r.c.head.Load()
		if int64(r.turn(pos).Load()-r.getTurn(pos)) >= 0 {
			return true
		}
		return r.c.isClosed() && r.c.tail.Load() == pos
	}
	return r
}

// Cap returns the number of slots.
func (r *MPMC) Cap() int { return int(r.capacity) }

// SlotSize returns the largest message, in bytes, a slot holds.
func (r *MPMC) SlotSize() int { return r.slotSize }

// Len returns the number of claimed positions not yet dequeued at the moment
// of the call, clamped to [0, Cap].
func (r *MPMC) Len() int {
	return r.c.distance(r.capacity)
}

// Closed reports whether a producer has closed the ring.
func (r *MPMC) Closed() bool { return r.c.isClosed() }

// Close marks the ring closed and wakes everyone. Every producer's further
// enqueues fail with ErrClosed; consumers receive what is left and then
// ErrClosed. Any producer may call it; it is idempotent.
func (r *MPMC) Close() error {
	r.c.close()
	return nil
}

func (r *MPMC) slot(pos uint64) []byte {
	off := int(pos&r.mask) * r.stride
	return r.data[off : off+r.stride : off+r.stride]
}

func (r *MPMC) turn(pos uint64) *atomic.Uint64 {
	return (*atomic.Uint64)(unsafe.Pointer(&r.data[int(pos&r.mask)*r.stride]))
}

// putTurn is the turn of the slot for position pos when it is free for
// pos's producer; getTurn when it holds pos's message.
func (r *MPMC) putTurn(pos uint64) uint64 { return 2 * (pos >> r.shift) }
func (r *MPMC) getTurn(pos uint64) uint64 { return 2*(pos>>r.shift) + 1 }

func (r *MPMC) corrupt(what string, pos, turn uint64) error {
	return fmt.Errorf("mpmc %s position %d, slot turn %d: %w", what, pos, turn, ErrCorrupt)
}

// claimPut claims up to k consecutive free positions on the enqueue index
// with one compare-and-swap and returns the first one and how many (0 when
// the ring is full).
func (r *MPMC) claimPut(k int) (uint64, int, error) {
	pos := r.c.tail.Load()
	for {
		t := r.turn(pos).Load()
		d := int64(t - r.putTurn(pos))
		switch {
		case d == 0:
			n := 1
			for n < k && r.turn(pos+uint64(n)).Load() == r.putTurn(pos+uint64(n)) {
				n++
			}
			if r.c.tail.CompareAndSwap(pos, pos+uint64(n)) {
				return pos, n, nil
			}
			pos = r.c.tail.Load()
		case d < 0:
			// The slot still holds the previous lap's message: full.
			return 0, 0, nil
		default:
			// Another producer took pos; the index must have moved on.
			np := r.c.tail.Load()
			if np == pos {
				return 0, 0, r.corrupt("enqueue", pos, t)
			}
			pos = np
		}
	}
}

// claimGet claims up to k consecutive published positions on the dequeue
// index with one compare-and-swap and returns the first one and how many
// (0 when empty). It reads nothing but turns and indices: a slot's bytes
// belong to whoever claims it.
func (r *MPMC) claimGet(k int) (uint64, int, error) {
	pos := r.c.head.Load()
	for {
		t := r.turn(pos).Load()
		d := int64(t - r.getTurn(pos))
		switch {
		case d == 0:
			n := 1
			for n < k && r.turn(pos+uint64(n)).Load() == r.getTurn(pos+uint64(n)) {
				n++
			}
			if r.c.head.CompareAndSwap(pos, pos+uint64(n)) {
				return pos, n, nil
			}
			pos = r.c.head.Load()
		case d < 0:
			// Empty, or the producer of pos has not published yet.
			if r.c.isClosed() && r.c.tail.Load() == pos {
				return 0, 0, ErrClosed
			}
			return 0, 0, nil
		default:
			np := r.c.head.Load()
			if np == pos {
				return 0, 0, r.corrupt("dequeue", pos, t)
			}
			pos = np
		}
	}
}

// TryEnqueueBatch copies as many of msgs as there are free slots for,
// claiming them with one compare-and-swap, and returns how many (0 when the
// ring is full). All messages are checked against SlotSize first.
func (r *MPMC) TryEnqueueBatch(msgs [][]byte) (int, error) {
	for _, m := range msgs {
		if len(m) > r.slotSize {
			return 0, fmt.Errorf("message of %d bytes, slot holds %d: %w", len(m), r.slotSize, ErrTooLarge)
		}
	}
	if r.c.isClosed() {
		return 0, ErrClosed
	}
	if len(msgs) == 0 {
		return 0, nil
	}
	pos, n, err := r.claimPut(len(msgs))
	if n == 0 || err != nil {
		return 0, err
	}
	for i := range n {
		p := pos + uint64(i)
		s := r.slot(p)
		binary.LittleEndian.PutUint32(s[8:], uint32(len(msgs[i])))
		copy(s[mpmcSlotHeader:], msgs[i])
		r.turn(p).Store(r.getTurn(p))
	}
	r.c.notEmpty.Notify()
	return n, nil
}

// TryEnqueue copies msg into a free slot; it reports false when the ring is
// full.
func (r *MPMC) TryEnqueue(msg []byte) (bool, error) {
	one := [1][]byte{msg}
	n, err := r.TryEnqueueBatch(one[:])
	return n == 1, err
}

// Enqueue copies msg into a free slot, waiting while the ring is full. It
// returns ErrClosed once the ring is closed and ctx.Err() when ctx ends.
func (r *MPMC) Enqueue(ctx context.Context, msg []byte) error {
	one := [1][]byte{msg}
	_, err := r.EnqueueBatch(ctx, one[:])
	return err
}

// EnqueueBatch enqueues every message of msgs, waiting while the ring is
// full, and returns how many it enqueued (len(msgs) unless an error stopped
// it). Each run of free slots is claimed with one compare-and-swap; the
// messages of one batch keep their order but may interleave with other
// producers' messages.
func (r *MPMC) EnqueueBatch(ctx context.Context, msgs [][]byte) (int, error) {
	return enqueueAll(ctx, &r.opts, &r.c.notFull, r.canPut, r.TryEnqueueBatch, msgs)
}

// TryDequeueBatch copies up to len(bufs) messages, claiming them with one
// compare-and-swap; message i goes into bufs[i][:cap(bufs[i])] and bufs[i]
// is resliced to its length. Every buffer used must have a capacity of at
// least SlotSize (a message's length is only known once it is claimed, and
// a claimed message cannot be put back): the batch stops before the first
// smaller one, and ErrShortBuffer is returned when bufs[0] is. It returns
// how many it dequeued (0 when empty) and ErrClosed when the ring is closed
// and drained.
func (r *MPMC) TryDequeueBatch(bufs [][]byte) (int, error) {
	k := 0
	for k < len(bufs) && cap(bufs[k]) >= r.slotSize {
		k++
	}
	if k == 0 {
		if len(bufs) == 0 {
			return 0, nil
		}
		return 0, fmt.Errorf("buffer of %d bytes, MPMC dequeue needs the slot size %d: %w", cap(bufs[0]), r.slotSize, ErrShortBuffer)
	}
	pos, n, err := r.claimGet(k)
	if n == 0 || err != nil {
		return 0, err
	}
	for i := range n {
		p := pos + uint64(i)
		s := r.slot(p)
		l := binary.LittleEndian.Uint32(s[8:])
		if uint64(l) > uint64(r.slotSize) {
			// Drop the impossible message but free its slot, so the
			// ring does not stall on it.
			err = fmt.Errorf("mpmc slot length %d over slot size %d: %w", l, r.slotSize, ErrCorrupt)
			l = 0
		}
		b := bufs[i][:cap(bufs[i])]
		bufs[i] = b[:copy(b, s[mpmcSlotHeader:mpmcSlotHeader+int(l)])]
		r.turn(p).Store(r.putTurn(p) + 2)
	}
	r.c.notFull.Notify()
	return n, err
}

// TryDequeue copies the next message into buf and returns its length; it
// reports false when the ring is empty. len(buf) must be at least SlotSize
// (see TryDequeueBatch).
func (r *MPMC) TryDequeue(buf []byte) (int, bool, error) {
	one := [1][]byte{buf[:0:len(buf)]}
	n, err := r.TryDequeueBatch(one[:])
	if n == 0 || err != nil {
		return 0, false, err
	}
	return len(one[0]), true, nil
}

// Dequeue copies the next message into buf (len(buf) at least SlotSize),
// waiting while the ring is empty. It returns ErrClosed once the ring is closed and drained.
func (r *MPMC) Dequeue(ctx context.Context, buf []byte) (int, error) {
	one := [1][]byte{buf[:0:len(buf)]}
	if _, err := r.DequeueBatch(ctx, one[:]); err != nil {
		return 0, err
	}
	return len(one[0]), nil
}

// DequeueBatch waits until a message is available, then dequeues like
// TryDequeueBatch.
func (r *MPMC) DequeueBatch(ctx context.Context, bufs [][]byte) (int, error) {
	for {
		n, err := r.TryDequeueBatch(bufs)
		if n > 0 || err != nil || len(bufs) == 0 {
			return n, err
		}
		if err := r.opts.wait(ctx, &r.c.notEmpty, r.canGet); err != nil {
			return 0, err
		}
	}
}
