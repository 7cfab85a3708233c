package shmkit

import (
	"fmt"

	"github.com/shmkit/shmkit/ring"
)

// Sample is a message in shared memory: loaned by a publisher (writable
// until Publish or Discard) or received by a subscriber (read-only by
// contract until Release). Its bytes are never copied.
type Sample struct {
	data   []byte // the payload's bytes: cap is what may be used
	log    int    // pub/sub: the log it came from
	pos    uint64 // pub/sub: its position there
	end    uint64
	pub    *Publisher
	sub    *Subscriber
	chunk  []byte             // work queue: the slot's payload (message header, then data)
	wqp    *ring.MPMCProducer // work queue: the loan's handle
	wqc    *ring.MPMCConsumer // work queue: the held sample's handle
	n      int
	held   int // its index among its handle's held (pub/sub, work queue) or loaned (work queue) samples
	missed uint64
	seq    uint64
	from   int
	state  int
}

const (
	sampleLoaned = iota + 1
	sampleReceived
	sampleDone
)

// Bytes returns the payload. For a loaned sample it is writable and valid
// until Publish or Discard; for a received one it must only be read and is
// valid until Release: on pub/sub it lies in a read-only mapping, and a
// write into it faults (SIGSEGV). In both cases it points into shared
// memory.
func (s *Sample) Bytes() []byte {
	if s == nil || s.state == sampleDone {
		return nil
	}
	return s.data[:s.n:s.n]
}

// Len returns the payload length.
func (s *Sample) Len() int { return s.n }

// Missed returns how many messages meant for this subscriber publishers
// dropped (policies DropNewest and DropOldest, or a Block publisher whose
// context ended) between its previous Receive and this one. With
// DropOldest the dropped messages came before this one; with DropNewest
// they came after the messages still queued at the time of the drop, so
// the count arrives ahead of the gap.
func (s *Sample) Missed() uint64 { return s.missed }

// Seq returns the message's number in its publisher slot's log: 1, 2, ...
// from the channel's creation, continued by a publisher that takes a slot
// over from one that left or died (a gap in the numbers is a message
// missed: Missed counts it). A loaned sample's Seq is the number it will
// carry when published.
func (s *Sample) Seq() uint64 { return s.seq }

// Publisher identifies the sample's publisher: its index among the
// channel's publisher slots and the slot's generation (index |
// generation<<8), so a publisher that takes over the slot of one that left
// has another identity.
func (s *Sample) Publisher() int { return s.from }

// SetLen shrinks or grows a loaned sample's payload within what was loaned
// rounded up to its chunk (for writers that learn the size while writing).
func (s *Sample) SetLen(n int) error {
	if s.state != sampleLoaned {
		return ErrSampleState
	}
	if n < 0 || n > cap(s.data) || n > s.pub.ch.cfg.MaxMessage {
		return fmt.Errorf("%w: %d bytes", ErrTooLarge, n)
	}
	s.n = n
	return nil
}

// Discard gives a loaned sample up unpublished (pub/sub: the claimed room
// becomes padding; work queue: the slot becomes a tombstone consumers
// skip).
func (s *Sample) Discard() error {
	if s.state != sampleLoaned {
		return ErrSampleState
	}
	if err := s.pub.ch.enterAt(s.pub.slot); err != nil {
		return err
	}
	defer s.pub.ch.exitAt(s.pub.slot)
	p := s.pub
	if p.wq != nil {
		p.busy.enter()
		defer p.busy.exit()
		return p.wqDiscard(s)
	}
	s.state = sampleDone
	if p.lw != nil {
		p.loaned = false
		if p.dropLoan {
			p.dropLoan = false
			return nil
		}
		return p.logErr(p.lw.Abort())
	}
	return nil
}

// Release gives a received sample back; its bytes must not be used
// afterwards, nor the Sample (pub/sub reuses it). Pub/sub: the
// subscriber's position in that publisher's log moves to the oldest sample
// it still holds there; under DropOldest Release returns ErrOverrun when
// the publisher may have overwritten the sample while it was held (what
// was read from it may be torn). Work queue: the chunk is freed.
func (smp *Sample) Release() error {
	if smp == nil || smp.state != sampleReceived {
		if smp != nil && smp.state == sampleLoaned {
			return fmt.Errorf("%w: Release of a loaned sample: give it back with Discard, or send it with Publish", ErrSampleState)
		}
		return ErrSampleState
	}
	s := smp.sub
	if (s.readers != nil || s.wq != nil) && !s.ch.guard {
		// The fast path (busy.go).
		s.busy.enter()
		err := smp.release() // checks shut
		s.busy.exit()
		return err
	}
	if err := s.ch.enterAt(s.slot); err != nil {
		smp.state = sampleDone
		return nil // released with the channel
	}
	defer s.ch.exitAt(s.slot)
	if s.wq != nil {
		return s.wqReleaseMarked(smp)
	}
	return smp.release()
}

// release is Release for a caller that has entered the channel.
func (smp *Sample) release() error {
	s := smp.sub
	if s.readers != nil {
		if s.shut.Load() {
			smp.state = sampleDone
			return nil // released with the subscriber
		}
		return s.logRelease(smp)
	}
	return s.wqRelease(smp)
}
