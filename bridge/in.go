package bridge

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// verdict is what the in side does with one message from NATS.
type verdict int

const (
	deliver verdict = iota
	skipDup
	skipEcho
)

// seqTracker follows each origin publisher's sequence on the in side.
type seqTracker struct {
	b    *Bridge
	last map[uint64]uint64 // key hash -> last delivered (or dropped) seq
	// The key of the latest (origin, publisher): consecutive messages
	// mostly come from the same one.
	lastOrigin, lastPub string
	lastKey             uint64
}

// maxTracked bounds the tracker: beyond it the map is cleared (each origin
// publisher then starts afresh; its next gap is not seen).
const maxTracked = 1 << 16

func pubKey(origin, pub string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(origin))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(pub))
	return h.Sum64()
}

func first(h nats.Header, k string) string {
	if v := h[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// check classifies m and, for a message to deliver, counts the gap before
// it. key is 0 for a message without shmkit headers (not tracked).
func (t *seqTracker) check(h nats.Header) (verdict, uint64, uint64) {
	origin := first(h, HeaderOrigin)
	if origin == "" {
		return deliver, 0, 0
	}
	if origin == t.b.origin {
		return skipEcho, 0, 0
	}
	seq, err := strconv.ParseUint(first(h, HeaderSeq), 10, 64)
	if err != nil || seq == 0 {
		return deliver, 0, 0
	}
	pub := first(h, HeaderPublisher)
	if origin != t.lastOrigin || pub != t.lastPub {
		t.lastOrigin, t.lastPub, t.lastKey = origin, pub, pubKey(origin, pub)
	}
	key := t.lastKey
	last, ok := t.last[key]
	if !ok && t.b.state != nil {
		last, ok = t.b.state.get(key)
	}
	switch {
	case ok && seq <= last:
		return skipDup, key, seq
	case ok && seq > last+1:
		n := seq - last - 1
		t.b.c.inLost.Add(n)
		t.b.cfg.Logger.Warn("bridge: messages lost", "channel", first(h, HeaderChannel), "origin", origin,
			"publisher", first(h, HeaderPublisher), "after", last, "next", seq, "lost", n)
	}
	return deliver, key, seq
}

func (t *seqTracker) done(key, seq uint64) error {
	if key == 0 {
		return nil
	}
	if len(t.last) >= maxTracked {
		clear(t.last)
	}
	t.last[key] = seq
	if t.b.state != nil {
		return t.b.state.put(key, seq)
	}
	return nil
}

// handle delivers one message into the local channel. It returns nil when
// the message is done with (delivered, or a counted drop or skip), so a
// JetStream message may be acked; an error stops the in side.
func (t *seqTracker) handle(ctx context.Context, m *nats.Msg) error {
	b := t.b
	v, key, seq := t.check(m.Header)
	switch v {
	case skipEcho:
		b.c.inEcho.Add(1)
		return nil
	case skipDup:
		b.c.inDup.Add(1)
		return nil
	}
	err := b.sink.Publish(ctx, m.Data)
	switch {
	case err == nil:
		b.c.inMsgs.Add(1)
		b.c.inBytes.Add(uint64(len(m.Data)))
	case errors.Is(err, ErrDropped), errors.Is(err, ErrTooLarge):
		b.c.inDrops.Add(1)
		if errors.Is(err, ErrTooLarge) {
			b.noteErr(err)
		}
	default:
		return fmt.Errorf("bridge: in: publish: %w", err)
	}
	if err := t.done(key, seq); err != nil {
		return err
	}
	return nil
}

func (b *Bridge) runIn(ctx context.Context) error {
	t := &seqTracker{b: b, last: map[uint64]uint64{}}
	if b.cfg.Stream != "" {
		return b.runInJetStream(ctx, t)
	}
	fail := make(chan error, 1)
	sub, err := b.nc.Subscribe(b.cfg.Subject, func(m *nats.Msg) {
		if ctx.Err() != nil {
			return
		}
		if err := t.handle(ctx, m); err != nil && ctx.Err() == nil {
			select {
			case fail <- err:
			default:
			}
		}
	})
	if err != nil {
		return fmt.Errorf("%w: subscribe %s: %w", ErrConfig, b.cfg.Subject, err)
	}
	// Bounded: beyond MaxPending messages or MaxPendingBytes the client
	// drops and counts them (Stats.InSlow).
	if err := sub.SetPendingLimits(b.cfg.MaxPending, b.cfg.MaxPendingBytes); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if err := b.nc.FlushTimeout(b.cfg.FlushTimeout); err != nil { // the server has the subscription
		b.noteErr(fmt.Errorf("subscribe flush: %w", err))
	}
	b.inSub.Store(sub)
	var res error
	select {
	case <-ctx.Done():
	case res = <-fail:
	}
	if n, err := sub.Dropped(); err == nil {
		b.c.inSlow.Store(uint64(n)) // kept after the subscription is gone
	}
	b.inSub.Store(nil)
	_ = sub.Unsubscribe()
	return res
}

func (b *Bridge) runInJetStream(ctx context.Context, t *seqTracker) error {
	js, err := jetstream.New(b.nc)
	if err != nil {
		return fmt.Errorf("%w: jetstream: %w", ErrConfig, err)
	}
	if err := b.ensureStream(ctx, js); err != nil {
		return err
	}
	cc := jetstream.ConsumerConfig{
		Durable:       b.cfg.Durable,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       b.cfg.AckWait,
		MaxAckPending: b.cfg.MaxPending,
		FilterSubject: b.cfg.Subject,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	// A durable left by an earlier run holds messages that run pulled and
	// never acked; JetStream would redeliver them only after AckWait,
	// behind newer ones, out of order. So the consumer restarts from its
	// ack floor: everything after it comes again, in stream order, and
	// what was already delivered is skipped by sequence (StateFile) or
	// delivered twice (at-least-once).
	if old, err := js.Consumer(ctx, b.cfg.Stream, b.cfg.Durable); err == nil {
		info := old.CachedInfo()
		if err := js.DeleteConsumer(ctx, b.cfg.Stream, b.cfg.Durable); err != nil {
			return fmt.Errorf("bridge: in: restart consumer %s: %w", b.cfg.Durable, err)
		}
		cc.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cc.OptStartSeq = info.AckFloor.Stream + 1
		b.cfg.Logger.Info("bridge: resuming durable", "durable", b.cfg.Durable, "from", cc.OptStartSeq)
	} else if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("%w: consumer %s on stream %s: %w", ErrConfig, b.cfg.Durable, b.cfg.Stream, err)
	}
	cons, err := js.CreateConsumer(ctx, b.cfg.Stream, cc)
	if err != nil {
		return fmt.Errorf("%w: consumer %s on stream %s: %w", ErrConfig, b.cfg.Durable, b.cfg.Stream, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(min(b.cfg.MaxPending, 1024)))
	if err != nil {
		return fmt.Errorf("bridge: in: pull: %w", err)
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	defer it.Stop()
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			b.noteErr(fmt.Errorf("pull: %w", err))
			continue
		}
		if md, err := m.Metadata(); err == nil {
			b.c.inPending.Store(md.NumPending)
		}
		nm := &nats.Msg{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()}
		if err := t.handle(ctx, nm); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			_ = m.Nak() // not delivered: JetStream keeps it
			return err
		}
		// Acked only now: the local publish returned (or the message is a
		// counted drop or a duplicate).
		if err := m.Ack(); err != nil {
			b.noteErr(fmt.Errorf("ack: %w", err))
		}
	}
}
