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
// records in a shared region. Records can be written and read in place: the
// producer reserves contiguous bytes, writes them and commits; the consumer
// peeks at the next record and releases it. A record never wraps around the
// end of the buffer (a padding record fills the tail instead), so a record
// is always one contiguous slice. Enqueue and Dequeue are the copying
// conveniences.
//
// As with SPSC, the producing process takes its side with Producer and the
// consuming process with Consumer.
type ByteRing struct {
	c          *control
	data       []byte
	capacity   uint64
	mask       uint64
	maxPayload uint64
	opts       options
	prod       *ByteProducer
	cons       *ByteConsumer
}

// ByteProducer is the producing side of a byte ring. It is not safe for
// concurrent use.
type ByteProducer struct {
	r          *ByteRing
	tail       uint64 // next byte to write; published after every record
	cachedHead uint64
	closed     bool
	want       uint64 // bytes the blocked producer needs (read by canPut)
	resvOK     bool   // a reservation is pending
	resvPad    uint64 // padding bytes in front of the reservation
	resvOff    uint64 // header position of the reserved record
	resvN      uint64 // reserved payload bytes
	canPut     func() bool
	_          [cacheLine]byte
}

// ByteConsumer is the consuming side of a byte ring. It is not safe for
// concurrent use.
type ByteConsumer struct {
	r          *ByteRing
	head       uint64 // next byte to read; published after every release
	cachedTail uint64
	peekOK     bool
	peekSkip   uint64 // bytes the peeked record(s) take
	canGet     func() bool
	_          [cacheLine]byte
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
// be 64-byte aligned and at least ByteRingSize(capacityBytes) long. The
// ring value and its handles are valid while mem stays mapped.
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

// AttachByteRing returns the byte ring initialised at the start of mem,
// after validating its header.
func AttachByteRing(mem []byte, opts ...Option) (*ByteRing, error) {
	c, p, err := attachControl(mem, KindByte)
	if err != nil {
		return nil, err
	}
	want, err := byteParams(int(min(p.capacity, MaxByteRing+1)))
	if err != nil {
		return nil, fmt.Errorf("%w: header: %w", ErrCorrupt, err)
	}
	if p.slotSize != 0 || want.size != p.size {
		return nil, fmt.Errorf("%w: byte ring header size %d, slot size %d, capacity needs %d", ErrCorrupt, p.size, p.slotSize, want.size)
	}
	return newByteRing(mem, c, p, opts), nil
}

func newByteRing(mem []byte, c *control, p params, opts []Option) *ByteRing {
	return &ByteRing{
		c:          c,
		data:       mem[dataOffset:p.size:p.size],
		capacity:   p.capacity,
		mask:       p.capacity - 1,
		maxPayload: p.capacity/2 - recHeader,
		opts:       applyOptions(opts),
	}
}

// Producer returns this process's producing handle, the same one on every
// call. It starts at the shared tail: a record that a killed producer wrote
// but had not published is overwritten.
func (r *ByteRing) Producer() *ByteProducer {
	if r.prod == nil {
		p := &ByteProducer{r: r, tail: r.c.tail.Load(), cachedHead: r.c.head.Load(), closed: r.c.isClosed()}
		p.canPut = func() bool {
			used := p.tail - r.c.head.Load()
			return used > r.capacity || r.capacity-used >= p.want
		}
		r.prod = p
	}
	return r.prod
}

// Consumer returns this process's consuming handle, the same one on every
// call. It starts at the shared head: a record that a killed consumer read
// but had not released is delivered again.
func (r *ByteRing) Consumer() *ByteConsumer {
	if r.cons == nil {
		c := &ByteConsumer{r: r, head: r.c.head.Load()}
		c.cachedTail = c.head
		c.canGet = func() bool { return r.c.tail.Load() != c.head || r.c.isClosed() }
		r.cons = c
	}
	return r.cons
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

// --- producer ---

// space finds contiguous room for a record of need bytes (header and
// padded payload) at the producer's tail t and returns the padding that
// must go in front of it, or ok false when there is no room yet. It reloads
// the consumer's head only when the cached copy says there is no room.
func (p *ByteProducer) space(t, need uint64) (pad uint64, ok bool, err error) {
	r := p.r
	pos := t & r.mask
	if r.capacity-pos < need {
		pad = r.capacity - pos // the record goes to the start; pad the tail
	}
	total := pad + need
	used := t - p.cachedHead
	if used > r.capacity || r.capacity-used < total {
		// Acquire: the consumer finished reading what it released.
		p.cachedHead = r.c.head.Load()
		used = t - p.cachedHead
		if used > r.capacity {
			return 0, false, fmt.Errorf("%w: byte ring tail %d, head %d, capacity %d", ErrCorrupt, t, p.cachedHead, r.capacity)
		}
	}
	return pad, r.capacity-used >= total, nil
}

// place writes the padding record (if any) in front of a record at tail t
// and returns the record's header position.
func (p *ByteProducer) place(t, pad uint64) uint64 {
	pos := t & p.r.mask
	if pad == 0 {
		return pos
	}
	putRecHeader(p.r.data, pos, pad-recHeader, recPad)
	return 0
}

// publish makes everything before tail t visible: one release store of the
// shared tail after the records and their headers (the consumer's acquire
// load of tail orders its reads of them), then a wake of the consumer if
// it is parked.
func (p *ByteProducer) publish(t uint64) {
	hook(stepProducerWritten)
	p.tail = t
	publish64(&p.r.c.tail, t)
	hook(stepProducerPublished)
	if e := &p.r.c.notEmpty; p.r.c.mayWake(e) {
		p.r.c.wake(e)
	}
	hook(stepProducerNotified)
}

// reserve finds contiguous room for a record of n payload bytes, waiting
// for it if block.
func (p *ByteProducer) reserve(ctx context.Context, n int, block bool) ([]byte, error) {
	r := p.r
	if p.resvOK {
		return nil, fmt.Errorf("%w: reserve with a reservation pending", ErrOrder)
	}
	if n < 0 || uint64(n) > r.maxPayload {
		return nil, fmt.Errorf("%w: record of %d bytes, byte ring takes at most %d", ErrTooLarge, n, r.maxPayload)
	}
	need := recHeader + align8(uint64(n))
	for {
		if p.closed {
			return nil, ErrClosed
		}
		t := p.tail
		if t%8 != 0 {
			return nil, fmt.Errorf("%w: byte ring tail %d not 8-byte aligned", ErrCorrupt, t)
		}
		pad, ok, err := p.space(t, need)
		if err != nil {
			return nil, err
		}
		if ok {
			off := p.place(t, pad)
			p.resvOK, p.resvPad, p.resvOff, p.resvN = true, pad, off, uint64(n)
			return r.data[off+recHeader : off+recHeader+uint64(n) : off+recHeader+uint64(n)], nil
		}
		if !block {
			return nil, nil
		}
		p.want = pad + need
		if err := r.opts.wait(ctx, r.c, &r.c.notFull, p.canPut); err != nil {
			return nil, err
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
}

// Reserve waits for n contiguous bytes and returns them for the caller to
// write the record in place; Commit publishes it. The slice is valid until
// Commit or Close. n may be at most MaxRecord.
func (p *ByteProducer) Reserve(ctx context.Context, n int) ([]byte, error) {
	return p.reserve(ctx, n, true)
}

// TryReserve is Reserve without waiting: it reports false when there is no
// room.
func (p *ByteProducer) TryReserve(n int) ([]byte, bool, error) {
	b, err := p.reserve(nil, n, false)
	return b, b != nil, err
}

// Commit publishes the reserved record with its first n bytes (n at most
// the reserved length).
func (p *ByteProducer) Commit(n int) error {
	if !p.resvOK {
		return fmt.Errorf("%w: commit without reserve", ErrOrder)
	}
	if n < 0 || uint64(n) > p.resvN {
		return fmt.Errorf("%w: commit of %d bytes, %d reserved", ErrTooLarge, n, p.resvN)
	}
	putRecHeader(p.r.data, p.resvOff, uint64(n), recData)
	p.resvOK = false
	p.publish(p.tail + p.resvPad + recHeader + align8(uint64(n)))
	return nil
}

// TryEnqueue copies msg into the ring as one record if there is room; it
// reports false when there is none.
func (p *ByteProducer) TryEnqueue(msg []byte) (bool, error) {
	b, err := p.reserve(nil, len(msg), false)
	if b == nil || err != nil {
		return false, err
	}
	copy(b, msg)
	return true, p.Commit(len(msg))
}

// Enqueue copies msg into the ring as one record, waiting for room. It
// returns ErrClosed once the ring is closed and ctx.Err() when ctx ends
// first.
func (p *ByteProducer) Enqueue(ctx context.Context, msg []byte) error {
	b, err := p.reserve(ctx, len(msg), true)
	if err != nil {
		return err
	}
	copy(b, msg)
	return p.Commit(len(msg))
}

// TryEnqueueBatch copies as many of msgs as there is room for into the
// ring, one record each, publishing them with one store, and returns how
// many (0 when there is no room for the first). A message over MaxRecord
// stops the batch with ErrTooLarge after the ones before it.
func (p *ByteProducer) TryEnqueueBatch(msgs [][]byte) (int, error) {
	r := p.r
	if p.resvOK {
		return 0, fmt.Errorf("%w: enqueue with a reservation pending", ErrOrder)
	}
	if p.closed {
		return 0, ErrClosed
	}
	t := p.tail
	if t%8 != 0 {
		return 0, fmt.Errorf("%w: byte ring tail %d not 8-byte aligned", ErrCorrupt, t)
	}
	var err error
	i := 0
	for ; i < len(msgs); i++ {
		m := msgs[i]
		if uint64(len(m)) > r.maxPayload {
			err = fmt.Errorf("%w: record of %d bytes, byte ring takes at most %d", ErrTooLarge, len(m), r.maxPayload)
			break
		}
		need := recHeader + align8(uint64(len(m)))
		pad, ok, serr := p.space(t, need)
		if serr != nil {
			err = serr
			break
		}
		if !ok {
			break
		}
		off := p.place(t, pad)
		putRecHeader(r.data, off, uint64(len(m)), recData)
		copy(r.data[off+recHeader:], m)
		t += pad + need
	}
	if i > 0 {
		p.publish(t)
	}
	return i, err
}

// EnqueueBatch enqueues every message of msgs in order, waiting for room,
// and returns how many it enqueued: len(msgs) unless an error stopped it.
func (p *ByteProducer) EnqueueBatch(ctx context.Context, msgs [][]byte) (int, error) {
	done := 0
	for done < len(msgs) {
		n, err := p.TryEnqueueBatch(msgs[done:])
		done += n
		if err != nil {
			return done, err
		}
		if n == 0 {
			// Wait for room for the next record, as Enqueue would.
			b, err := p.reserve(ctx, len(msgs[done]), true)
			if err != nil {
				return done, err
			}
			copy(b, msgs[done])
			if err := p.Commit(len(msgs[done])); err != nil {
				return done, err
			}
			done++
		}
	}
	return done, nil
}

// Close marks the ring closed and wakes both sides. Further enqueues fail
// with ErrClosed; the consumer receives the records still in the ring and
// then ErrClosed. Close is idempotent. A pending reservation is discarded.
func (p *ByteProducer) Close() error {
	p.resvOK = false
	p.closed = true
	p.r.c.close()
	return nil
}

// --- consumer ---

// avail returns how many published bytes follow the consumer's head,
// reloading the producer's tail (acquire) only when the cached copy says
// none.
func (c *ByteConsumer) avail() (uint64, error) {
	r := c.r
	n := c.cachedTail - c.head
	if n == 0 || n > r.capacity {
		c.cachedTail = r.c.tail.Load()
		n = c.cachedTail - c.head
		if n > r.capacity {
			return 0, fmt.Errorf("%w: byte ring tail %d, head %d, capacity %d", ErrCorrupt, c.cachedTail, c.head, r.capacity)
		}
	}
	return n, nil
}

// empty is the result of a try that found no published bytes: ErrClosed
// once the ring is closed and the tail (read after closed) equals the
// head, else nothing. It never waits.
func (c *ByteConsumer) empty() error {
	if !c.r.c.isClosed() {
		return nil
	}
	c.cachedTail = c.r.c.tail.Load()
	if c.cachedTail == c.head {
		return ErrClosed
	}
	return nil
}

// wait waits until bytes may be published or the ring is closed; it
// returns ctx's error after a satisfied wait too, so no loop outlives ctx.
func (c *ByteConsumer) wait(ctx context.Context) error {
	if err := c.r.opts.wait(ctx, c.r.c, &c.r.c.notEmpty, c.canGet); err != nil {
		return err
	}
	return ctx.Err()
}

// peek decodes the next record, waiting for one if block.
func (c *ByteConsumer) peek(ctx context.Context, block bool) ([]byte, error) {
	r := c.r
	if c.peekOK {
		return nil, fmt.Errorf("%w: peek with a record peeked", ErrOrder)
	}
	for {
		avail, err := c.avail()
		if err != nil {
			return nil, err
		}
		if avail > 0 {
			rec, err := decodeRecord(r.data, c.head&r.mask, avail, r.maxPayload)
			if err != nil {
				return nil, err
			}
			c.peekOK, c.peekSkip = true, rec.skip
			return r.data[rec.off : rec.off+rec.n : rec.off+rec.n], nil
		}
		if err := c.empty(); err != nil {
			return nil, err
		}
		if c.cachedTail != c.head {
			continue // published just before the close
		}
		if !block {
			return nil, nil
		}
		if err := c.wait(ctx); err != nil {
			return nil, err
		}
	}
}

// Peek waits for the next record and returns its payload in place. The
// slice is valid until Release. It returns ErrClosed once the ring is
// closed and drained.
func (c *ByteConsumer) Peek(ctx context.Context) ([]byte, error) { return c.peek(ctx, true) }

// TryPeek is Peek without waiting: it reports false when the ring is empty.
func (c *ByteConsumer) TryPeek() ([]byte, bool, error) {
	b, err := c.peek(nil, false)
	return b, err == nil && c.peekOK, err
}

// release hands the bytes before h back to the producer: a release store
// of head after the consumer's reads, then a wake if the producer sleeps.
func (c *ByteConsumer) release(h uint64) {
	hook(stepConsumerCopied)
	c.head = h
	publish64(&c.r.c.head, h)
	hook(stepConsumerReleased)
	if e := &c.r.c.notFull; c.r.c.mayWake(e) {
		c.r.c.wake(e)
	}
}

// Release hands the peeked record's bytes back to the producer.
func (c *ByteConsumer) Release() error {
	if !c.peekOK {
		return fmt.Errorf("%w: release without peek", ErrOrder)
	}
	c.peekOK = false
	c.release(c.head + c.peekSkip)
	return nil
}

// TryDequeue copies the next record into buf and returns its length; it
// reports false when the ring is empty, ErrClosed when it is empty and
// closed, and ErrShortBuffer (leaving the record in the ring) when buf is
// too small.
func (c *ByteConsumer) TryDequeue(buf []byte) (int, bool, error) {
	b, err := c.peek(nil, false)
	if err != nil || !c.peekOK {
		return 0, false, err
	}
	return c.finish(buf, b)
}

// Dequeue copies the next record into buf, waiting for one. It returns
// ErrClosed once the ring is closed and drained, and ctx.Err() when ctx
// ends first.
func (c *ByteConsumer) Dequeue(ctx context.Context, buf []byte) (int, error) {
	b, err := c.peek(ctx, true)
	if err != nil {
		return 0, err
	}
	n, _, err := c.finish(buf, b)
	return n, err
}

func (c *ByteConsumer) finish(buf, rec []byte) (int, bool, error) {
	if len(rec) > len(buf) {
		c.peekOK = false
		return 0, false, fmt.Errorf("%w: record of %d bytes, buffer of %d", ErrShortBuffer, len(rec), len(buf))
	}
	n := copy(buf, rec)
	return n, true, c.Release()
}

// TryDequeueBatch copies up to len(bufs) records and hands their bytes back
// with one store. Record i goes into bufs[i][:cap(bufs[i])] and bufs[i] is
// resliced to its length. It returns how many (0 when empty), ErrClosed
// when empty and closed, and ErrShortBuffer when the first record does not
// fit bufs[0]; a later record that does not fit ends the batch early.
func (c *ByteConsumer) TryDequeueBatch(bufs [][]byte) (int, error) {
	r := c.r
	if c.peekOK {
		return 0, fmt.Errorf("%w: dequeue with a record peeked", ErrOrder)
	}
	if len(bufs) == 0 {
		return 0, nil
	}
	avail, err := c.avail()
	if err != nil {
		return 0, err
	}
	if avail == 0 {
		if err := c.empty(); err != nil || c.cachedTail == c.head {
			return 0, err
		}
		avail = c.cachedTail - c.head
	}
	h := c.head
	i := 0
	for ; i < len(bufs) && avail > 0; i++ {
		rec, derr := decodeRecord(r.data, h&r.mask, avail, r.maxPayload)
		if derr != nil {
			err = derr
			break
		}
		b := bufs[i][:cap(bufs[i])]
		if rec.n > uint64(len(b)) {
			if i == 0 {
				err = fmt.Errorf("%w: record of %d bytes, buffer of %d", ErrShortBuffer, rec.n, len(b))
			}
			break
		}
		bufs[i] = b[:copy(b, r.data[rec.off:rec.off+rec.n])]
		h += rec.skip
		avail -= rec.skip
	}
	if i > 0 {
		c.release(h)
	}
	return i, err
}

// DequeueBatch waits until at least one record is in the ring, then
// dequeues like TryDequeueBatch.
func (c *ByteConsumer) DequeueBatch(ctx context.Context, bufs [][]byte) (int, error) {
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
