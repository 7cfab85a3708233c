package ring

import (
	"context"
	"encoding/binary"
	"fmt"
	"unsafe"
)

// MPMCProducer is a producer handle of an MPMC ring. Make one per goroutine
// with MPMC.Producer; a handle is not safe for concurrent use. Messages one
// handle enqueues are dequeued in the order it enqueued them.
type MPMCProducer struct {
	r        *MPMC
	cl       *mpmcClaim // claim record, taken at the first operation on a ring with claim slots
	reserved bool       // a position claimed by Reserve awaits Commit
	resvPos  uint64
	ready    bool // cl is set (or not needed) and nothing is reserved: claim's fast path
}

// MPMCConsumer is a consumer handle of an MPMC ring. Make one per goroutine
// with MPMC.Consumer; a handle is not safe for concurrent use.
type MPMCConsumer struct {
	r       *MPMC
	cl      *mpmcClaim
	peeked  bool // a position claimed by Peek awaits Release
	peekPos uint64
	ready   bool // cl is set (or not needed) and nothing is peeked: claim's fast path
}

// Producer returns a new producer handle. On a ring with claim slots it
// takes one at its first operation and holds it until Detach.
func (r *MPMC) Producer() *MPMCProducer { return &MPMCProducer{r: r} }

// Consumer returns a new consumer handle. On a ring with claim slots it
// takes one at its first operation and holds it until Detach.
func (r *MPMC) Consumer() *MPMCConsumer { return &MPMCConsumer{r: r} }

// claim returns the handle's claim record, taking one on first use. The
// common case is small enough to be inlined into the fast path.
func (p *MPMCProducer) claim() (*mpmcClaim, error) {
	if p.ready {
		return p.cl, nil
	}
	return p.claimSlow()
}

func (p *MPMCProducer) claimSlow() (*mpmcClaim, error) {
	if p.reserved {
		return nil, fmt.Errorf("%w: enqueue with a slot reserved", ErrOrder)
	}
	if p.cl == nil && p.r.nclaims > 0 {
		cl, err := p.r.acquireClaim(roleProducer)
		if err != nil {
			return nil, err
		}
		p.cl = cl
	}
	p.ready = true
	return p.cl, nil
}

func (c *MPMCConsumer) claim() (*mpmcClaim, error) {
	if c.ready {
		return c.cl, nil
	}
	return c.claimSlow()
}

func (c *MPMCConsumer) claimSlow() (*mpmcClaim, error) {
	if c.peeked {
		return nil, fmt.Errorf("%w: dequeue with a slot peeked", ErrOrder)
	}
	if c.cl == nil && c.r.nclaims > 0 {
		cl, err := c.r.acquireClaim(roleConsumer)
		if err != nil {
			return nil, err
		}
		c.cl = cl
	}
	c.ready = true
	return c.cl, nil
}

// Detach gives the handle's claim slot back. Call it when the handle will
// not be used again; using it afterwards takes a slot anew. It returns
// ErrOrder, and keeps the slot, while a reservation awaits Commit.
func (p *MPMCProducer) Detach() error {
	if p.reserved {
		return fmt.Errorf("%w: detach with a slot reserved", ErrOrder)
	}
	if p.cl != nil {
		p.r.releaseClaim(p.cl)
		p.cl = nil
	}
	p.ready = false
	return nil
}

// Detach gives the handle's claim slot back (see MPMCProducer.Detach); it
// returns ErrOrder while a peeked message awaits Release.
func (c *MPMCConsumer) Detach() error {
	if c.peeked {
		return fmt.Errorf("%w: detach with a slot peeked", ErrOrder)
	}
	if c.cl != nil {
		c.r.releaseClaim(c.cl)
		c.cl = nil
	}
	c.ready = false
	return nil
}

// Close marks the ring closed and wakes everyone: every producer's further
// enqueues fail with ErrClosed (an enqueue that claimed its position before
// Close still completes), and consumers receive what is left and then
// ErrClosed. Any producer may call it; it is idempotent.
func (p *MPMCProducer) Close() error {
	p.r.close()
	return nil
}

func (r *MPMC) tooLarge(n int) error {
	return fmt.Errorf("%w: message of %d bytes, slot holds %d", ErrTooLarge, n, r.slotSize)
}

// TryEnqueue copies msg into a free slot; it reports false when the ring is
// full, ErrClosed once it is closed, ErrTooLarge for a message longer than
// SlotSize.
func (p *MPMCProducer) TryEnqueue(msg []byte) (bool, error) {
	r := p.r
	if len(msg) > r.slotSize {
		return false, r.tooLarge(len(msg))
	}
	cl, err := p.claim()
	if err != nil {
		return false, err
	}
	pos, ok, err := r.claimPut(cl)
	if !ok {
		return false, err
	}
	s := r.slot(pos)
	setSlotLen(s, len(msg))
	copy(r.payload(s, len(msg)), msg)
	r.publish(pos)
	return true, nil
}

// publish stores the turn that hands pos's slot to its consumer (a release
// store: the length and payload written before it are visible to whoever
// loads the turn) and wakes sleeping consumers.
func (r *MPMC) publish(pos uint64) {
	if mpmcHook != nil {
		mpmcHook(stepPutWritten)
	}
	publish64(r.turn(pos), r.getTurn(pos))
	if mpmcHook != nil {
		mpmcHook(stepPutPublished)
	}
	if r.c.mayWake(&r.c.notEmpty) {
		r.c.wake(&r.c.notEmpty)
	}
}

// Enqueue copies msg into a free slot, waiting while the ring is full. It
// returns ErrClosed once the ring is closed and ctx.Err() when ctx ends.
func (p *MPMCProducer) Enqueue(ctx context.Context, msg []byte) error {
	for {
		ok, err := p.TryEnqueue(msg)
		if ok || err != nil {
			return err
		}
		if err := p.r.opts.wait(ctx, p.r.c, &p.r.c.notFull, p.r.canPut); err != nil {
			return err
		}
	}
}

// TryEnqueueU64 enqueues the 8-byte little-endian message v (a chunk
// reference, say) without a slice: the fixed-size fast path. The ring's
// slot size must be at least 8.
func (p *MPMCProducer) TryEnqueueU64(v uint64) (bool, error) {
	r := p.r
	if r.slotSize < 8 {
		return false, r.tooLarge(8)
	}
	cl, err := p.claim()
	if err != nil {
		return false, err
	}
	pos, ok, err := r.claimPut(cl)
	if !ok {
		return false, err
	}
	s := r.slot(pos)
	setSlotLen(s, 8)
	binary.LittleEndian.PutUint64(r.payload(s, 8), v)
	r.publish(pos)
	return true, nil
}

// EnqueueU64 is TryEnqueueU64, waiting while the ring is full, like Enqueue.
func (p *MPMCProducer) EnqueueU64(ctx context.Context, v uint64) error {
	for {
		ok, err := p.TryEnqueueU64(v)
		if ok || err != nil {
			return err
		}
		if err := p.r.opts.wait(ctx, p.r.c, &p.r.c.notFull, p.r.canPut); err != nil {
			return err
		}
	}
}

// TryEnqueueBatch copies as many of msgs as there are free slots for (up to
// 255 per call), claiming them with one compare-and-swap, and returns how
// many (0 when the ring is full). All messages are checked against SlotSize
// first.
func (p *MPMCProducer) TryEnqueueBatch(msgs [][]byte) (int, error) {
	r := p.r
	for _, m := range msgs {
		if len(m) > r.slotSize {
			return 0, r.tooLarge(len(m))
		}
	}
	if len(msgs) == 0 {
		return 0, nil
	}
	cl, err := p.claim()
	if err != nil {
		return 0, err
	}
	pos, n, err := r.claimPutRun(cl, len(msgs))
	if n == 0 {
		return 0, err
	}
	for i := range n {
		q := pos + uint64(i)
		s := r.slot(q)
		setSlotLen(s, len(msgs[i]))
		copy(r.payload(s, len(msgs[i])), msgs[i])
		if mpmcHook != nil {
			mpmcHook(stepPutWritten)
		}
		publish64(r.turn(q), r.getTurn(q))
	}
	if mpmcHook != nil {
		mpmcHook(stepPutPublished)
	}
	if r.c.mayWake(&r.c.notEmpty) {
		r.c.wake(&r.c.notEmpty)
	}
	return n, nil
}

// EnqueueBatch enqueues every message of msgs, waiting while the ring is
// full, and returns how many it enqueued (len(msgs) unless an error stopped
// it). The messages of one batch keep their order but may interleave with
// other producers' messages.
func (p *MPMCProducer) EnqueueBatch(ctx context.Context, msgs [][]byte) (int, error) {
	return enqueueAll(ctx, &p.r.opts, p.r.c, &p.r.c.notFull, p.r.canPut, p.TryEnqueueBatch, msgs)
}

// TryDequeue copies the next message into buf and returns its length; it
// reports false when the ring is empty, and ErrClosed once it is closed and
// drained. A message longer than buf stays in the ring and ErrShortBuffer is
// returned (a buffer of SlotSize bytes always fits).
func (c *MPMCConsumer) TryDequeue(buf []byte) (int, bool, error) {
	r := c.r
	cl, err := c.claim()
	if err != nil {
		return 0, false, err
	}
	for {
		pos, tomb, ok, err := r.claimGet(cl, len(buf))
		if !ok {
			return 0, false, err
		}
		s := r.slot(pos)
		n, err := 0, error(nil)
		if !tomb {
			n, err = r.copyOut(s, buf)
		}
		r.free(pos)
		if tomb {
			continue // a dead producer's position: skip it
		}
		return n, err == nil, err
	}
}

// copyOut copies the message of slot s into buf, which the claim checked it
// fits unless the length is impossible (ErrCorrupt; the slot is freed all
// the same, so the ring does not stall on it).
func (r *MPMC) copyOut(s unsafe.Pointer, buf []byte) (int, error) {
	l := int(slotLen(s).Load())
	if l > r.slotSize || l > len(buf) {
		return 0, fmt.Errorf("%w: mpmc slot length %d, slot size %d, buffer %d", ErrCorrupt, l, r.slotSize, len(buf))
	}
	n := copy(buf[:l], r.payload(s, l))
	if mpmcHook != nil {
		mpmcHook(stepGetCopied)
	}
	return n, nil
}

// free stores the turn that hands pos's slot to the producer of the next
// lap (a release store: the copy out of the slot is complete before a
// producer can see the slot free) and wakes sleeping producers.
func (r *MPMC) free(pos uint64) {
	publish64(r.turn(pos), r.putTurn(pos)+4)
	if mpmcHook != nil {
		mpmcHook(stepGetFreed)
	}
	if r.c.mayWake(&r.c.notFull) {
		r.c.wake(&r.c.notFull)
	}
}

// Dequeue copies the next message into buf, waiting while the ring is
// empty. It returns ErrClosed once the ring is closed and drained and
// ctx.Err() when ctx ends.
func (c *MPMCConsumer) Dequeue(ctx context.Context, buf []byte) (int, error) {
	for {
		n, ok, err := c.TryDequeue(buf)
		if ok || err != nil {
			return n, err
		}
		if err := c.r.opts.wait(ctx, c.r.c, &c.r.c.notEmpty, c.r.canGet); err != nil {
			return 0, err
		}
	}
}

// TryDequeueU64 dequeues an 8-byte message as a little-endian uint64 (see
// TryEnqueueU64). A message of another length is consumed and reported as
// ErrCorrupt: on a ring of 8-byte messages it can only come from a broken
// peer.
func (c *MPMCConsumer) TryDequeueU64() (uint64, bool, error) {
	r := c.r
	cl, err := c.claim()
	if err != nil {
		return 0, false, err
	}
	for {
		pos, tomb, ok, err := r.claimGet(cl, r.slotSize)
		if !ok {
			return 0, false, err
		}
		if tomb {
			r.free(pos)
			continue
		}
		s := r.slot(pos)
		l := slotLen(s).Load()
		v := binary.LittleEndian.Uint64(r.payload(s, 8))
		if mpmcHook != nil {
			mpmcHook(stepGetCopied)
		}
		r.free(pos)
		if l != 8 {
			return 0, false, fmt.Errorf("%w: mpmc message of %d bytes where 8 were expected", ErrCorrupt, l)
		}
		return v, true, nil
	}
}

// DequeueU64 is TryDequeueU64, waiting while the ring is empty, like
// Dequeue.
func (c *MPMCConsumer) DequeueU64(ctx context.Context) (uint64, error) {
	for {
		v, ok, err := c.TryDequeueU64()
		if ok || err != nil {
			return v, err
		}
		if err := c.r.opts.wait(ctx, c.r.c, &c.r.c.notEmpty, c.r.canGet); err != nil {
			return 0, err
		}
	}
}

// TryDequeueBatch copies up to len(bufs) messages (up to 255 per call),
// claiming them with one compare-and-swap; message i goes into
// bufs[i][:cap(bufs[i])] and bufs[i] is resliced to its length. The batch
// stops before a message longer than its buffer's capacity; ErrShortBuffer
// is returned, and nothing taken, when the first one is. It returns how many
// it dequeued (0 when empty) and ErrClosed when the ring is closed and
// drained.
func (c *MPMCConsumer) TryDequeueBatch(bufs [][]byte) (int, error) {
	r := c.r
	if len(bufs) == 0 {
		return 0, nil
	}
	cl, err := c.claim()
	if err != nil {
		return 0, err
	}
	for {
		pos, n, err := r.claimGetRun(cl, bufs)
		if n == 0 {
			return 0, err
		}
		// Copy everything, then free everything: a consumer killed
		// before the frees leaves all its messages to Repair.
		got := 0
		for i := range n {
			q := pos + uint64(i)
			if r.getReady(q, r.turn(q).Load()) == 1 {
				b := bufs[got][:cap(bufs[got])]
				k, e := r.copyOut(r.slot(q), b)
				if e != nil && err == nil {
					err = e
				}
				bufs[got] = b[:k]
				if e == nil {
					got++
				}
			}
		}
		for i := range n {
			q := pos + uint64(i)
			publish64(r.turn(q), r.putTurn(q)+4)
		}
		if mpmcHook != nil {
			mpmcHook(stepGetFreed)
		}
		if r.c.mayWake(&r.c.notFull) {
			r.c.wake(&r.c.notFull)
		}
		if got > 0 || err != nil {
			return got, err
		}
		// Only tombstones: look again.
	}
}

// DequeueBatch waits until a message is available, then dequeues like
// TryDequeueBatch.
func (c *MPMCConsumer) DequeueBatch(ctx context.Context, bufs [][]byte) (int, error) {
	for {
		n, err := c.TryDequeueBatch(bufs)
		if n > 0 || err != nil || len(bufs) == 0 {
			return n, err
		}
		if err := c.r.opts.wait(ctx, c.r.c, &c.r.c.notEmpty, c.r.canGet); err != nil {
			return 0, err
		}
	}
}
