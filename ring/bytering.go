package ring

import (
	"context"
	"fmt"
)

// MinByteRing and MaxByteRing bound a byte ring's capacity in bytes.
const (
	MinByteRing = 64
	MaxByteRing = 1 << (30 + 10*(^uint(0)>>63)) // 1<<40; 1<<30 where int has 32 bits
)

// ByteRing is a single-producer single-consumer ring of variable-length
// records in a shared region. Records are written and read in place: the
// producer reserves contiguous bytes, writes them and commits; the consumer
// peeks at the next record and releases it. A record never wraps around the
// end of the buffer (a padding record fills the tail instead), so a record
// is always one contiguous slice. Write and Read are copying conveniences.
//
// One process uses its handle as the producer and one as the consumer, as
// with SPSC.
type ByteRing struct {
	mem        []byte
	c          *control
	data       []byte
	capacity   uint64
	mask       uint64
	maxPayload uint64
	opts       options
	canPut     func() bool
	canGet     func() bool

	_ [cacheLine]byte
	// Producer-local state.
	cachedHead uint64
	want       uint64 // bytes the blocked producer needs (read by canPut)
	resvOK     bool   // a reservation is pending
	resvT      uint64 // tail when reserved
	resvPad    uint64 // padding bytes in front of the reservation
	resvOff    uint64 // header position of the reserved record
	resvN      uint64 // reserved payload bytes

	_ [cacheLine]byte
	// Consumer-local state.
	cachedTail uint64
	peekOK     bool
	peekH      uint64 // head when peeked
	peekSkip   uint64 // bytes to release
}

func byteParams(capacity int) (params, error) {
	if capacity < MinByteRing || capacity > MaxByteRing || !isPow2(uint64(capacity)) {
		return params{}, fmt.Errorf("%w: byte ring capacity %d is not a power of two in [%d, %d]", ErrConfig, capacity, MinByteRing, MaxByteRing)
	}
	return params{kind: KindByte, capacity: uint64(capacity), size: dataOffset + uint64(capacity)}, nil
}

// ByteRingSize returns the number of bytes a byte ring with capacityBytes
// of record space (a power of two, at least MinByteRing) occupies.
func ByteRingSize(capacityBytes int) (int, error) {
	p, err := byteParams(capacityBytes)
	if err != nil {
		return 0, err
	}
	return int(p.size), nil
}

// NewByteRing initialises an empty byte ring at the start of mem, which must
// be 64-byte aligned and at least ByteRingSize(capacityBytes) long.
func NewByteRing(mem []byte, capacityBytes int, opts ...Option) (*ByteRing, error) {
	p, err := byteParams(capacityBytes)
	if err != nil {
		return nil, err
	}
	if err := checkRegion(mem, p.size); err != nil {
		return nil, err
	}
	return newByteRing(mem, initControl(mem, p), p, opts), nil
}

// AttachByteRing returns a handle to the byte ring initialised at the start
// of mem, after validating its header.
func AttachByteRing(mem []byte, opts ...Option) (*ByteRing, error) {
	c, p, err := attachControl(mem, KindByte)
	if err != nil {
		return nil, err
	}
	want, err := byteParams(int(min(p.capacity, MaxByteRing+1)))
	if err != nil {
		return nil, err
	}
	if p.slotSize != 0 || want.size != p.size {
		return nil, fmt.Errorf("%w: byte ring header size %d, slot size %d, capacity needs %d", ErrConfig, p.size, p.slotSize, want.size)
	}
	return newByteRing(mem, c, p, opts), nil
}

func newByteRing(mem []byte, c *control, p params, opts []Option) *ByteRing {
	r := &ByteRing{
		mem:        mem[:p.size:p.size],
		c:          c,
		data:       mem[dataOffset:p.size:p.size],
		capacity:   p.capacity,
		mask:       p.capacity - 1,
		maxPayload: p.capacity/2 - recHeader,
		opts:       applyOptions(opts),
	}
	r.cachedHead = c.head.Load()
	r.cachedTail = c.tail.Load()
	r.canPut = func() bool {
		used := r.c.tail.Load() - r.c.head.Load()
		return r.c.isClosed() || used > r.capacity || r.capacity-used >= r.want
	}
	r.canGet = func() bool { return r.c.isClosed() || r.c.tail.Load() != r.c.head.Load() }
	return r
}

// Cap returns the capacity in bytes (headers and padding included).
func (r *ByteRing) Cap() int { return int(r.capacity) }

// MaxRecord returns the largest payload one record may carry: half the
// capacity less a header, so that a record always fits once the ring
// drains, wherever the write position is.
func (r *ByteRing) MaxRecord() int { return int(r.maxPayload) }

// Len returns the bytes in use (records, headers, padding) at the moment of
// the call, clamped to [0, Cap].
func (r *ByteRing) Len() int {
	return r.c.distance(r.capacity)
}

// Closed reports whether the producer has closed the ring.
func (r *ByteRing) Closed() bool { return r.c.isClosed() }

// Close marks the ring closed and wakes both sides; see SPSC.Close. A
// pending reservation is discarded.
func (r *ByteRing) Close() error {
	r.resvOK = false
	r.c.close()
	return nil
}

// reserve finds contiguous room for a record of n payload bytes, waiting
// for it if block.
func (r *ByteRing) reserve(ctx context.Context, n int, block bool) ([]byte, error) {
	if r.resvOK {
		return nil, fmt.Errorf("%w: reserve with a reservation pending", ErrOrder)
	}
	if n < 0 || uint64(n) > r.maxPayload {
		return nil, fmt.Errorf("%w: record of %d bytes, byte ring takes at most %d", ErrTooLarge, n, r.maxPayload)
	}
	need := recHeader + align8(uint64(n))
	for {
		if r.c.isClosed() {
			return nil, ErrClosed
		}
		t := r.c.tail.Load()
		if t%8 != 0 {
			return nil, fmt.Errorf("%w: byte ring tail %d not 8-byte aligned", ErrCorrupt, t)
		}
		pos := t & r.mask
		pad := uint64(0)
		if r.capacity-pos < need {
			pad = r.capacity - pos // the record goes to the start; pad the tail
		}
		total := pad + need
		used := t - r.cachedHead
		if used > r.capacity || r.capacity-used < total {
			r.cachedHead = r.c.head.Load()
			used = t - r.cachedHead
			if used > r.capacity {
				return nil, fmt.Errorf("%w: byte ring tail %d, head %d, capacity %d", ErrCorrupt, t, r.cachedHead, r.capacity)
			}
		}
		if r.capacity-used >= total {
			off := pos
			if pad > 0 {
				putRecHeader(r.data, pos, pad-recHeader, recPad)
				off = 0
			}
			r.resvOK, r.resvT, r.resvPad, r.resvOff, r.resvN = true, t, pad, off, uint64(n)
			return r.data[off+recHeader : off+recHeader+uint64(n) : off+recHeader+uint64(n)], nil
		}
		if !block {
			return nil, nil
		}
		r.want = total
		if err := r.opts.wait(ctx, &r.c.notFull, r.canPut); err != nil {
			return nil, err
		}
	}
}

// Reserve waits for n contiguous bytes and returns them for the caller to
// write the record in place; Commit publishes it. The slice is valid until
// Commit or Close. n may be at most MaxRecord.
func (r *ByteRing) Reserve(ctx context.Context, n int) ([]byte, error) {
	return r.reserve(ctx, n, true)
}

// TryReserve is Reserve without waiting: it reports false when there is no
// room.
func (r *ByteRing) TryReserve(n int) ([]byte, bool, error) {
	b, err := r.reserve(nil, n, false)
	return b, b != nil, err
}

// Commit publishes the reserved record with its first n bytes (n at most
// the reserved length).
func (r *ByteRing) Commit(n int) error {
	if !r.resvOK {
		return fmt.Errorf("%w: commit without reserve", ErrOrder)
	}
	if n < 0 || uint64(n) > r.resvN {
		return fmt.Errorf("%w: commit of %d bytes, %d reserved", ErrTooLarge, n, r.resvN)
	}
	putRecHeader(r.data, r.resvOff, uint64(n), recData)
	r.resvOK = false
	r.c.tail.Store(r.resvT + r.resvPad + recHeader + align8(uint64(n)))
	r.c.notEmpty.Notify()
	return nil
}

// TryWrite copies msg into the ring as one record if there is room.
func (r *ByteRing) TryWrite(msg []byte) (bool, error) {
	b, err := r.reserve(nil, len(msg), false)
	if b == nil || err != nil {
		return false, err
	}
	copy(b, msg)
	return true, r.Commit(len(msg))
}

// Write copies msg into the ring as one record, waiting for room.
func (r *ByteRing) Write(ctx context.Context, msg []byte) error {
	b, err := r.reserve(ctx, len(msg), true)
	if err != nil {
		return err
	}
	copy(b, msg)
	return r.Commit(len(msg))
}

// peek decodes the next record, waiting for one if block.
func (r *ByteRing) peek(ctx context.Context, block bool) ([]byte, error) {
	if r.peekOK {
		return nil, fmt.Errorf("%w: peek with a record peeked", ErrOrder)
	}
	for {
		h := r.c.head.Load()
		avail := r.cachedTail - h
		if avail == 0 || avail > r.capacity {
			r.cachedTail = r.c.tail.Load()
			avail = r.cachedTail - h
			if avail > r.capacity {
				return nil, fmt.Errorf("%w: byte ring tail %d, head %d, capacity %d", ErrCorrupt, r.cachedTail, h, r.capacity)
			}
		}
		if avail > 0 {
			rec, err := decodeRecord(r.data, h&r.mask, avail, r.maxPayload)
			if err != nil {
				return nil, err
			}
			r.peekOK, r.peekH, r.peekSkip = true, h, rec.skip
			return r.data[rec.off : rec.off+rec.n : rec.off+rec.n], nil
		}
		if r.c.isClosed() {
			r.cachedTail = r.c.tail.Load()
			if r.cachedTail == h {
				return nil, ErrClosed
			}
			continue
		}
		if !block {
			return nil, nil
		}
		if err := r.opts.wait(ctx, &r.c.notEmpty, r.canGet); err != nil {
			return nil, err
		}
	}
}

// Peek waits for the next record and returns its payload in place. The
// slice is valid until Release. It returns ErrClosed once the ring is
// closed and drained.
func (r *ByteRing) Peek(ctx context.Context) ([]byte, error) { return r.peek(ctx, true) }

// TryPeek is Peek without waiting: it reports false when the ring is empty.
func (r *ByteRing) TryPeek() ([]byte, bool, error) {
	b, err := r.peek(nil, false)
	return b, err == nil && r.peekOK, err
}

// Release hands the peeked record's bytes back to the producer.
func (r *ByteRing) Release() error {
	if !r.peekOK {
		return fmt.Errorf("%w: release without peek", ErrOrder)
	}
	r.peekOK = false
	r.c.head.Store(r.peekH + r.peekSkip)
	r.c.notFull.Notify()
	return nil
}

// TryRead copies the next record into buf and returns its length; it
// reports false when the ring is empty, and ErrShortBuffer (leaving the
// record in the ring) when buf is too small.
func (r *ByteRing) TryRead(buf []byte) (int, bool, error) {
	b, err := r.peek(nil, false)
	if err != nil || !r.peekOK {
		return 0, false, err
	}
	return r.finishRead(buf, b)
}

// Read copies the next record into buf, waiting for one. It returns
// ErrClosed once the ring is closed and drained.
func (r *ByteRing) Read(ctx context.Context, buf []byte) (int, error) {
	b, err := r.peek(ctx, true)
	if err != nil {
		return 0, err
	}
	n, _, err := r.finishRead(buf, b)
	return n, err
}

func (r *ByteRing) finishRead(buf, rec []byte) (int, bool, error) {
	if len(rec) > len(buf) {
		r.peekOK = false
		return 0, false, fmt.Errorf("%w: record of %d bytes, buffer of %d", ErrShortBuffer, len(rec), len(buf))
	}
	n := copy(buf, rec)
	return n, true, r.Release()
}
