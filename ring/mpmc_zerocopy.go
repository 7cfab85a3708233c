package ring

import (
	"context"
	"fmt"
)

// Zero-copy MPMC calls. A reserved or peeked position is claimed: until
// Commit (Release) the consumers (producers) of the ring wait at it, so keep
// the time between the two calls short. A handle holds at most one.

// TryReserve claims a free slot and returns its payload, SlotSize bytes to
// write the message into in place; Commit publishes it. It reports false
// when the ring is full, ErrClosed once it is closed. The slice is valid
// until Commit.
func (p *MPMCProducer) TryReserve() ([]byte, bool, error) {
	r := p.r
	cl, err := p.claim()
	if err != nil {
		return nil, false, err
	}
	pos, ok, err := r.claimPut(cl)
	if !ok {
		return nil, false, err
	}
	p.reserved, p.resvPos, p.ready = true, pos, false
	return r.payload(r.slot(pos), r.slotSize), true, nil
}

// Reserve is TryReserve, waiting while the ring is full; it returns
// ctx.Err() when ctx ends.
func (p *MPMCProducer) Reserve(ctx context.Context) ([]byte, error) {
	for {
		b, ok, err := p.TryReserve()
		if ok || err != nil {
			return b, err
		}
		if err := p.r.opts.wait(ctx, p.r.c, &p.r.c.notFull, p.r.canPut); err != nil {
			return nil, err
		}
	}
}

// Commit publishes the first n bytes of the reserved slot as a message. It
// returns ErrOrder without a reservation and ErrTooLarge (keeping the
// reservation) for n over SlotSize.
func (p *MPMCProducer) Commit(n int) error {
	r := p.r
	if !p.reserved {
		return fmt.Errorf("%w: commit without reserve", ErrOrder)
	}
	if n < 0 || n > r.slotSize {
		return r.tooLarge(n)
	}
	setSlotLen(r.slot(p.resvPos), n)
	p.reserved, p.ready = false, true
	r.publish(p.resvPos)
	return nil
}

// Abort gives up the reserved slot without publishing a message: the
// position becomes a tombstone that consumers skip, as Repair makes of a
// dead producer's claim. It returns ErrOrder without a reservation.
func (p *MPMCProducer) Abort() error {
	r := p.r
	if !p.reserved {
		return fmt.Errorf("%w: abort without reserve", ErrOrder)
	}
	p.reserved, p.ready = false, true
	if mpmcHook != nil {
		mpmcHook(stepPutWritten)
	}
	publish64(r.turn(p.resvPos), r.putTurn(p.resvPos)+2)
	if r.c.mayWake(&r.c.notEmpty) {
		r.c.wake(&r.c.notEmpty)
	}
	return nil
}

// TryPeek claims the next message and returns it in place, valid until
// Release, which frees its slot. It reports false when the ring is empty,
// ErrClosed once it is closed and drained.
func (c *MPMCConsumer) TryPeek() ([]byte, bool, error) {
	r := c.r
	cl, err := c.claim()
	if err != nil {
		return nil, false, err
	}
	for {
		pos, tomb, ok, err := r.claimGet(cl, r.slotSize)
		if !ok {
			return nil, false, err
		}
		s := r.slot(pos)
		l := int(slotLen(s).Load())
		if tomb || l > r.slotSize {
			r.free(pos)
			if tomb {
				continue
			}
			return nil, false, fmt.Errorf("%w: mpmc slot length %d, slot size %d", ErrCorrupt, l, r.slotSize)
		}
		if mpmcHook != nil {
			mpmcHook(stepGetCopied)
		}
		c.peeked, c.peekPos, c.ready = true, pos, false
		return r.readPayload(s, l), true, nil
	}
}

// Peek is TryPeek, waiting while the ring is empty; it returns ctx.Err()
// when ctx ends.
func (c *MPMCConsumer) Peek(ctx context.Context) ([]byte, error) {
	for {
		b, ok, err := c.TryPeek()
		if ok || err != nil {
			return b, err
		}
		if err := c.r.opts.wait(ctx, c.r.c, &c.r.c.notEmpty, c.r.canGet); err != nil {
			return nil, err
		}
	}
}

// Release frees the slot of the message Peek returned; the message's bytes
// must not be used afterwards. It returns ErrOrder without a peek.
func (c *MPMCConsumer) Release() error {
	if !c.peeked {
		return fmt.Errorf("%w: release without peek", ErrOrder)
	}
	c.peeked, c.ready = false, true
	c.r.free(c.peekPos)
	return nil
}
