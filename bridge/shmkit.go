package bridge

import (
	"context"
	"errors"
	"fmt"

	"github.com/shmkit/shmkit"
)

// This file is the only one that knows the shmkit channel API. It relies
// on: Channel.Publisher/Subscriber/Config; Publisher.Send, SendBatch, Loan,
// Publish, ID, Close, Relay; Subscriber.Receive, TryReceive, ReceiveBatch,
// Close, Relay; MessageInfo; Relay.SetKind, Store; Sample.Bytes,
// Publisher, Seq, Missed, Release; the errors ErrPeerGone, ErrTooLarge,
// ErrNoMemory.

// Relay kinds the bridge's participants carry in the channel (shmctl stat
// and metrics show them).
const (
	RelayKindOut = "nats-out" // the out side's subscriber
	RelayKindIn  = "nats-in"  // the in side's publisher
)

// outRelay and inRelay are the far-side figures of each side, as the
// channel's relay block holds them: messages and bytes handed to NATS (or
// taken from it), drops there, reconnects, and the lag (unconfirmed
// messages out; messages waiting in the client or stream in).
func outRelay(s Stats) shmkit.RelayStats {
	return shmkit.RelayStats{Kind: RelayKindOut, Messages: s.OutMsgs, Bytes: s.OutBytes, Drops: s.OutDrops,
		Reconnects: s.Reconnects, Lag: s.OutUnflushed}
}

// The in side's drops are the channel's (InDrops) plus what was lost on the
// way: the client's slow-consumer drops (InSlow) or the gaps in the origin
// publishers' sequences (InLost), whichever is larger (a message the client
// dropped also shows as a gap once a later one of its publisher arrives, so
// the two overlap; a gap alone is a loss before this host: out side, server,
// or while this in side was down).
func inRelay(s Stats) shmkit.RelayStats {
	return shmkit.RelayStats{Kind: RelayKindIn, Messages: s.InMsgs, Bytes: s.InBytes, Drops: s.InDrops + max(s.InSlow, s.InLost),
		Reconnects: s.Reconnects, Lag: s.InPending}
}

func storeRelay(r *shmkit.Relay, st shmkit.RelayStats) error {
	if err := r.SetKind(st.Kind); err != nil {
		return err
	}
	return r.Store(st)
}

// ShmkitSource is the out side's view of a shmkit subscriber. Made by
// NewShmkitSource (or JoinShmkit) it is a BatchReceiver: the out side takes
// each batch with one Subscriber.ReceiveBatch. A ShmkitSource{S: sub}
// literal works too, one sample at a time (TryReceive).
type ShmkitSource struct {
	S     *shmkit.Subscriber
	max   int                   // the channel's MaxMessage; 0: unknown
	infos *[]shmkit.MessageInfo // ReceiveBatch's, reused
}

// NewShmkitSource wraps s, a subscriber of ch.
func NewShmkitSource(ch *shmkit.Channel, s *shmkit.Subscriber) ShmkitSource {
	return ShmkitSource{S: s, max: ch.Config().MaxMessage, infos: new([]shmkit.MessageInfo)}
}

// MaxMessage is the channel's MaxMessage, 0 for a ShmkitSource not made by
// NewShmkitSource (the out side then uses TryReceive).
func (a ShmkitSource) MaxMessage() int {
	if a.infos == nil {
		return 0
	}
	return a.max
}

// ReceiveBatch copies up to len(bufs) messages with one
// Subscriber.ReceiveBatch (BatchReceiver): it waits for the first, takes
// what else is ready, and on pub/sub stores the subscriber's position once
// per publisher log; nothing stays held. ErrPeerGone becomes
// ErrNoPublishers.
func (a ShmkitSource) ReceiveBatch(ctx context.Context, bufs [][]byte, infos []Info) (int, error) {
	if len(*a.infos) < len(bufs) {
		*a.infos = make([]shmkit.MessageInfo, len(bufs))
	}
	n, err := a.S.ReceiveBatch(ctx, bufs, *a.infos)
	for i, in := range (*a.infos)[:n] {
		infos[i] = Info{Len: in.Len, Publisher: in.Publisher, Seq: in.Seq, Missed: in.Missed}
	}
	if err != nil && errors.Is(err, shmkit.ErrPeerGone) {
		return n, fmt.Errorf("%w: %w", ErrNoPublishers, err)
	}
	return n, err
}

// Receive waits for the next sample; ErrPeerGone becomes ErrNoPublishers.
// The *shmkit.Sample is the Message: its bytes stay in shared memory
// until the bridge releases it.
func (a ShmkitSource) Receive(ctx context.Context) (Message, error) {
	smp, err := a.S.Receive(ctx)
	if err != nil {
		if errors.Is(err, shmkit.ErrPeerGone) {
			return nil, fmt.Errorf("%w: %w", ErrNoPublishers, err)
		}
		return nil, err
	}
	return smp, nil
}

// WriteStats writes the out side's figures into the subscriber's relay
// block (kind RelayKindOut; see StatsWriter).
func (a ShmkitSource) WriteStats(s Stats) error { return storeRelay(a.S.Relay(), outRelay(s)) }

// TryReceive returns the next sample if one is ready, (nil, nil) if not
// (the out side's batches).
func (a ShmkitSource) TryReceive() (Message, error) {
	smp, err := a.S.TryReceive()
	if err != nil {
		if errors.Is(err, shmkit.ErrWouldBlock) || errors.Is(err, shmkit.ErrPeerGone) {
			return nil, nil
		}
		return nil, err
	}
	return smp, nil
}

// ShmkitSink is the in side's view of a shmkit publisher. The payload is
// copied once, from the NATS message into shared memory: the publisher's
// log, or a slot of the work queue (Send, or Loan and Publish).
type ShmkitSink struct {
	p      *shmkit.Publisher
	max    int
	policy shmkit.Policy
	id     int  // the publisher's id (Publisher.ID)
	pubsub bool // a pub/sub channel (the publisher writes its own log)
}

// NewShmkitSink wraps p, a publisher of ch.
func NewShmkitSink(ch *shmkit.Channel, p *shmkit.Publisher) *ShmkitSink {
	cfg := ch.Config()
	return &ShmkitSink{p: p, max: cfg.MaxMessage, policy: cfg.Policy, id: p.ID(), pubsub: cfg.Pattern == shmkit.PubSub}
}

// Publish copies b into the channel and publishes it. A pub/sub channel:
// Send, one copy into the publisher's log, under every policy (Block waits
// for room until ctx ends; DropNewest drops a message the log has no room
// for and the channel counts it, for the publisher and for every
// subscriber's Missed; DropOldest never waits). A work queue: with Block a
// full queue waits (Send); with DropNewest a full queue is ErrDropped
// (Loan, which does not wait).
func (s *ShmkitSink) Publish(ctx context.Context, b []byte) error {
	if len(b) > s.max {
		return fmt.Errorf("%w: %d bytes, the channel's MaxMessage is %d", ErrTooLarge, len(b), s.max)
	}
	if s.policy == shmkit.Block || s.pubsub {
		return sinkErr(s.p.Send(ctx, b))
	}
	smp, err := s.p.Loan(len(b))
	if err != nil {
		return sinkErr(err)
	}
	copy(smp.Bytes(), b)
	return s.p.Publish(ctx, smp)
}

// PublishBatch publishes msgs in order (BatchSink). A pub/sub channel:
// one SendBatch, which copies each message into the publisher's log as
// Send does, under the same policies, and wakes waiting subscribers once
// for the batch. A message over MaxMessage ends the batch before it
// (ErrTooLarge, n its index). A work queue: Publish, one at a time.
func (s *ShmkitSink) PublishBatch(ctx context.Context, msgs [][]byte) (int, error) {
	if !s.pubsub {
		for i, m := range msgs {
			if err := s.Publish(ctx, m); err != nil {
				return i, err
			}
		}
		return len(msgs), nil
	}
	lim := len(msgs)
	for i, m := range msgs {
		if len(m) > s.max {
			lim = i
			break
		}
	}
	n, err := s.p.SendBatch(ctx, msgs[:lim])
	if err != nil {
		return n, sinkErr(err)
	}
	if lim < len(msgs) {
		return lim, fmt.Errorf("%w: %d bytes, the channel's MaxMessage is %d", ErrTooLarge, len(msgs[lim]), s.max)
	}
	return len(msgs), nil
}

// sinkErr maps the channel's pool errors onto the Sink's.
func sinkErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, shmkit.ErrNoMemory):
		return fmt.Errorf("%w: %w", ErrDropped, err)
	case errors.Is(err, shmkit.ErrTooLarge):
		return fmt.Errorf("%w: %w", ErrTooLarge, err)
	}
	return err
}

// WriteStats writes the in side's figures into the publisher's relay
// block (kind RelayKindIn; see StatsWriter).
func (s *ShmkitSink) WriteStats(st Stats) error { return storeRelay(s.p.Relay(), inRelay(st)) }

// MaxMessage is the channel's MaxMessage.
func (s *ShmkitSink) MaxMessage() int { return s.max }

// PublisherID is the id the channel gives this sink's messages
// (Publisher.ID); always known.
func (s *ShmkitSink) PublisherID() (int, bool) { return s.id, true }

// JoinShmkit joins ch for a bridge in direction d: a subscriber for Out, a
// publisher for In (both for Both); on a work queue a consumer (one more
// competing for the messages) and a producer. The returned close leaves the channel
// (call it after the bridge's Close).
func JoinShmkit(ch *shmkit.Channel, d Direction) (src Source, sink Sink, leave func() error, err error) {
	var sub *shmkit.Subscriber
	var pub *shmkit.Publisher
	leave = func() error {
		var errs []error
		if sub != nil {
			errs = append(errs, sub.Close())
		}
		if pub != nil {
			errs = append(errs, pub.Close())
		}
		return errors.Join(errs...)
	}
	wq := ch.Config().Pattern == shmkit.WorkQueue
	if d&Out != 0 {
		if wq {
			var c *shmkit.Consumer
			if c, err = ch.Consumer(); err == nil {
				sub = c.Subscriber
			}
		} else {
			sub, err = ch.Subscriber()
		}
		if err != nil {
			return nil, nil, nil, fmt.Errorf("bridge: join %s as subscriber: %w", ch.Name(), err)
		}
		src = NewShmkitSource(ch, sub)
		_ = sub.Relay().SetKind(RelayKindOut)
	}
	if d&In != 0 {
		if wq {
			var p *shmkit.Producer
			if p, err = ch.Producer(); err == nil {
				pub = p.Publisher
			}
		} else {
			pub, err = ch.Publisher()
		}
		if err != nil {
			_ = leave()
			return nil, nil, nil, fmt.Errorf("bridge: join %s as publisher: %w", ch.Name(), err)
		}
		sink = NewShmkitSink(ch, pub)
		_ = pub.Relay().SetKind(RelayKindIn)
	}
	return src, sink, leave, nil
}
