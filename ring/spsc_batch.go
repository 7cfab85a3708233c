package ring

import (
	"context"
	"encoding/binary"
	"fmt"
)

// TryEnqueueBatch copies as many of msgs as there is room for into the
// ring, publishing them with one index store, and returns how many it
// enqueued (0 when the ring is full). A message longer than SlotSize stops
// the batch: the ones before it are enqueued and the error wraps
// ErrTooLarge.
func (r *SPSC) TryEnqueueBatch(msgs [][]byte) (int, error) {
	if r.reserved != 0 {
		return 0, fmt.Errorf("%w: enqueue with %d slots reserved", ErrOrder, r.reserved)
	}
	if r.c.isClosed() {
		return 0, ErrClosed
	}
	if len(msgs) == 0 {
		return 0, nil
	}
	t := r.c.tail.Load()
	room, err := r.room(t)
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
		s := r.slot(t + i)
		binary.LittleEndian.PutUint32(s[slotLenOff:], uint32(len(m)))
		copy(s[slotHeader:], m)
	}
	switch {
	case i == 1:
		r.publishOne(t)
	case i > 1:
		r.publishTail(t + i)
	}
	return int(i), err
}

// EnqueueBatch enqueues every message of msgs in order, waiting while the
// ring is full, with one index store per run of free slots. It returns how
// many it enqueued: len(msgs) unless an error (ErrClosed, ErrTooLarge,
// ctx.Err()) stopped it.
func (r *SPSC) EnqueueBatch(ctx context.Context, msgs [][]byte) (int, error) {
	return enqueueAll(ctx, &r.opts, &r.c.notFull, r.canPut, r.TryEnqueueBatch, msgs)
}

// TryDequeueBatch copies up to len(bufs) messages, releasing them with one
// index store. Message i goes into bufs[i][:cap(bufs[i])], and bufs[i] is
// resliced to the message's length. It returns how many it dequeued (0 when
// empty), ErrClosed when empty and closed, and ErrShortBuffer when the
// first message does not fit bufs[0]; a later message that does not fit
// ends the batch early without an error.
func (r *SPSC) TryDequeueBatch(bufs [][]byte) (int, error) {
	if r.peeked != 0 {
		return 0, fmt.Errorf("%w: dequeue with %d slots peeked", ErrOrder, r.peeked)
	}
	if len(bufs) == 0 {
		return 0, nil
	}
	h := r.c.head.Load()
	a, err := r.avail(h, uint64(len(bufs)))
	if err != nil {
		return 0, err
	}
	if a == 0 {
		if r.drained(h) {
			return 0, ErrClosed
		}
		return 0, nil
	}
	k := min(a, uint64(len(bufs)))
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
		r.publishHead(h + i)
	}
	return int(i), err
}

// DequeueBatch waits until at least one message is in the ring, then
// dequeues like TryDequeueBatch. It returns ErrClosed once the ring is
// closed and drained, and ctx.Err() when ctx ends first.
func (r *SPSC) DequeueBatch(ctx context.Context, bufs [][]byte) (int, error) {
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

// reserve hands out up to k free slots, waiting for at least one if block.
func (r *SPSC) reserve(ctx context.Context, k int, block bool) ([][]byte, error) {
	if r.reserved != 0 {
		return nil, fmt.Errorf("%w: reserve with %d slots reserved", ErrOrder, r.reserved)
	}
	if k < 1 {
		return nil, nil
	}
	for {
		if r.c.isClosed() {
			return nil, ErrClosed
		}
		t := r.c.tail.Load()
		room, err := r.room(t)
		if err != nil {
			return nil, err
		}
		if room > 0 {
			n := int(min(room, uint64(k)))
			r.resv = r.resv[:0]
			for i := range n {
				s := r.slot(t + uint64(i))
				r.resv = append(r.resv, s[slotHeader:slotHeader+r.slotSize:slotHeader+r.slotSize])
			}
			r.reserved = n
			return r.resv, nil
		}
		if !block {
			return nil, nil
		}
		if err := r.opts.wait(ctx, &r.c.notFull, r.canPut); err != nil {
			return nil, err
		}
	}
}

// Reserve waits for a free slot and returns its payload bytes (SlotSize
// long) for the caller to write in place; Commit publishes it. The slice is
// valid until Commit or Close. Only one reservation may be pending.
func (r *SPSC) Reserve(ctx context.Context) ([]byte, error) {
	v, err := r.reserve(ctx, 1, true)
	if err != nil {
		return nil, err
	}
	return v[0], nil
}

// TryReserve is Reserve without waiting: it reports false when the ring is
// full.
func (r *SPSC) TryReserve() ([]byte, bool, error) {
	v, err := r.reserve(nil, 1, false)
	if err != nil || len(v) == 0 {
		return nil, false, err
	}
	return v[0], true, nil
}

// ReserveBatch waits for at least one free slot and reserves up to k
// consecutive ones, returning their payload bytes (each SlotSize long).
// The returned slice and the slots are valid until CommitBatch or Close.
func (r *SPSC) ReserveBatch(ctx context.Context, k int) ([][]byte, error) {
	return r.reserve(ctx, k, true)
}

// Commit publishes the reserved slot as a message of its first n bytes.
func (r *SPSC) Commit(n int) error {
	var lens [1]int
	lens[0] = n
	return r.CommitBatch(lens[:])
}

// CommitBatch publishes the first len(lens) reserved slots, slot i as a
// message of lens[i] bytes, with one index store, and drops the rest of the
// reservation.
func (r *SPSC) CommitBatch(lens []int) error {
	if len(lens) > r.reserved {
		return fmt.Errorf("%w: commit of %d slots, %d reserved", ErrOrder, len(lens), r.reserved)
	}
	for _, n := range lens {
		if n < 0 || n > r.slotSize {
			return fmt.Errorf("%w: commit length %d", ErrTooLarge, n)
		}
	}
	t := r.c.tail.Load()
	for i, n := range lens {
		binary.LittleEndian.PutUint32(r.slot(t + uint64(i))[slotLenOff:], uint32(n))
	}
	r.reserved = 0
	switch {
	case len(lens) == 1:
		r.publishOne(t)
	case len(lens) > 1:
		r.publishTail(t + uint64(len(lens)))
	}
	return nil
}

// peek hands out up to k messages in place, waiting for one if block.
func (r *SPSC) peek(ctx context.Context, k int, block bool) ([][]byte, error) {
	if r.peeked != 0 {
		return nil, fmt.Errorf("%w: peek with %d slots peeked", ErrOrder, r.peeked)
	}
	if k < 1 {
		return nil, nil
	}
	for {
		h := r.c.head.Load()
		a, err := r.avail(h, uint64(k))
		if err != nil {
			return nil, err
		}
		if a > 0 {
			n := int(min(a, uint64(k)))
			r.peekv = r.peekv[:0]
			for i := range n {
				s := r.slot(h + uint64(i))
				l, err := r.msgLen(s)
				if err != nil {
					return nil, err
				}
				r.peekv = append(r.peekv, s[slotHeader:slotHeader+l:slotHeader+l])
			}
			r.peeked = n
			return r.peekv, nil
		}
		if r.drained(h) {
			return nil, ErrClosed
		}
		if !block {
			return nil, nil
		}
		if err := r.opts.wait(ctx, &r.c.notEmpty, r.canGet); err != nil {
			return nil, err
		}
	}
}

// Peek waits for a message and returns its bytes in place, without copying.
// The slice is valid until Release; the message stays in the ring until
// then. It returns ErrClosed once the ring is closed and drained.
func (r *SPSC) Peek(ctx context.Context) ([]byte, error) {
	v, err := r.peek(ctx, 1, true)
	if err != nil {
		return nil, err
	}
	return v[0], nil
}

// TryPeek is Peek without waiting: it reports false when the ring is empty.
func (r *SPSC) TryPeek() ([]byte, bool, error) {
	v, err := r.peek(nil, 1, false)
	if err != nil || len(v) == 0 {
		return nil, false, err
	}
	return v[0], true, nil
}

// PeekBatch waits for at least one message and returns up to k messages in
// place. The returned slice and the messages are valid until Release.
func (r *SPSC) PeekBatch(ctx context.Context, k int) ([][]byte, error) {
	return r.peek(ctx, k, true)
}

// Release hands the peeked slots back to the producer with one index store.
func (r *SPSC) Release() error {
	if r.peeked == 0 {
		return fmt.Errorf("%w: release without peek", ErrOrder)
	}
	h := r.c.head.Load()
	r.publishHead(h + uint64(r.peeked))
	r.peeked = 0
	return nil
}
