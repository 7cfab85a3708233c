package bridge

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"

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
	// batch is the sink's PublishBatch; nil without one, or with a state
	// file (written after each message).
	batch BatchSink
	msgs  [][]byte // a frame's messages to deliver, reused
	// The key of the last origin publisher a frame named (a frame holds
	// few publishers, usually one): pubKeyIDs hashes decimal strings.
	kOrigin     string
	kID, kEpoch uint64
	key         uint64
}

func newSeqTracker(b *Bridge) *seqTracker {
	t := &seqTracker{b: b, last: map[uint64]uint64{}}
	if bs, ok := b.sink.(BatchSink); ok && b.state == nil {
		t.batch = bs
	}
	return t
}

// keyOf is pubKeyIDs(origin, id, epoch), remembered for the next call.
func (t *seqTracker) keyOf(origin string, id, epoch uint64) uint64 {
	if t.key == 0 || id != t.kID || epoch != t.kEpoch || origin != t.kOrigin {
		t.kOrigin, t.kID, t.kEpoch = origin, id, epoch
		t.key = pubKeyIDs(origin, id, epoch)
	}
	return t.key
}

// maxTracked bounds the tracker: beyond it the map is cleared (each origin
// publisher then starts afresh; its next gap is not seen).
const maxTracked = 1 << 16

// FNV-1a, inline so that keys cost no allocation.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func fnvString(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * fnvPrime
	}
	return h
}

func fnvDecimal(h, v uint64) uint64 {
	var buf [20]byte
	for _, c := range strconv.AppendUint(buf[:0], v, 10) {
		h = (h ^ uint64(c)) * fnvPrime
	}
	return h
}

// pubKeyIDs identifies an origin publisher: the hash of its origin, a zero
// byte and "<id>.<epoch>" in decimal (the key a StateFile keeps).
func pubKeyIDs(origin string, id, epoch uint64) uint64 {
	h := fnvDecimal((fnvString(fnvOffset, origin)^0)*fnvPrime, id)
	return fnvDecimal((h^'.')*fnvPrime, epoch)
}

// check classifies a single message by its Shmkit header and, for a
// message to deliver, counts the gap before it. key is 0 for a message
// without a (well-formed) Shmkit header: a plain NATS publisher's, delivered
// untracked.
func (t *seqTracker) check(meta Meta, ok bool) (verdict, uint64, uint64) {
	if !ok {
		return deliver, 0, 0
	}
	if meta.Origin == t.b.origin {
		return skipEcho, 0, 0
	}
	key := pubKeyIDs(meta.Origin, uint64(meta.Publisher), meta.Epoch)
	return t.gap(key, meta.Seq, meta.Origin), key, meta.Seq
}

// gap checks seq against the last one of key: a duplicate is skipped, a
// gap is counted as lost.
func (t *seqTracker) gap(key, seq uint64, origin string) verdict {
	last, ok := t.last[key]
	if !ok && t.b.state != nil {
		last, ok = t.b.state.get(key)
	}
	switch {
	case ok && seq <= last:
		return skipDup
	case ok && seq > last+1:
		n := seq - last - 1
		t.b.c.inLost.Add(n)
		t.b.cfg.Logger.Warn("bridge: messages lost", "channel", t.b.cfg.Channel, "origin", origin,
			"after", last, "next", seq, "lost", n)
	}
	return deliver
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

// handle delivers one NATS message (a single channel message, or a batch
// frame of several) into the local channel. It returns nil when the
// message is done with (delivered, or counted drops or skips), so a
// JetStream message may be acked; an error stops the in side.
func (t *seqTracker) handle(ctx context.Context, m *nats.Msg) error {
	meta, ok := metaOf(m.Header)
	if ok && meta.Batch > 0 {
		if meta.Origin == t.b.origin {
			t.b.c.inEcho.Add(1)
			return nil
		}
		return t.handleFrame(ctx, meta.Origin, m.Data)
	}
	v, key, seq := t.check(meta, ok)
	switch v {
	case skipEcho:
		t.b.c.inEcho.Add(1)
		return nil
	case skipDup:
		t.b.c.inDup.Add(1)
		return nil
	}
	return t.deliver(ctx, key, seq, m.Data)
}

// handleFrame unpacks a batch frame: per message a 20-byte header (length
// u32, publisher id u32, epoch u32, sequence u64, little endian) and the
// payload. The frame comes from the network: a malformed one is counted
// (InDrops) and reported, never trusted past its bounds. With a BatchSink
// the messages go into the channel in one PublishBatch (what precedes a
// malformed part is delivered); without, one Publish each.
func (t *seqTracker) handleFrame(ctx context.Context, origin string, b []byte) error {
	msgs := t.msgs[:0]
	defer func() { clear(msgs); t.msgs = msgs[:0] }() // no pointers into the NATS buffer kept
	var bad error
	for len(b) > 0 {
		if len(b) < frameHeader {
			bad = t.badFrame(len(b))
			break
		}
		n := uint64(binary.LittleEndian.Uint32(b))
		if n > uint64(len(b)-frameHeader) {
			bad = t.badFrame(len(b))
			break
		}
		id := uint64(binary.LittleEndian.Uint32(b[4:]))
		epoch := uint64(binary.LittleEndian.Uint32(b[8:]))
		seq := binary.LittleEndian.Uint64(b[12:])
		data := b[frameHeader : frameHeader+n]
		b = b[frameHeader+n:]
		var key uint64
		if origin != "" && seq != 0 {
			key = t.keyOf(origin, id, epoch)
			if t.gap(key, seq, origin) == skipDup {
				t.b.c.inDup.Add(1)
				continue
			}
		}
		if t.batch == nil {
			if err := t.deliver(ctx, key, seq, data); err != nil {
				return err
			}
			continue
		}
		// Recorded now (no state file: only the map), so the next
		// message of the same publisher in this frame is checked
		// against this one; the in side stops if the delivery fails.
		_ = t.done(key, seq)
		msgs = append(msgs, data)
	}
	if len(msgs) > 0 {
		if err := t.deliverBatch(ctx, msgs); err != nil {
			return err
		}
	}
	return bad
}

// deliverBatch publishes a frame's messages through the BatchSink,
// counting each delivered and each dropped one as deliver does.
func (t *seqTracker) deliverBatch(ctx context.Context, msgs [][]byte) error {
	b := t.b
	for len(msgs) > 0 {
		n, err := t.batch.PublishBatch(ctx, msgs)
		n = min(max(n, 0), len(msgs))
		var bytes int
		for _, m := range msgs[:n] {
			bytes += len(m)
		}
		b.c.inMsgs.Add(uint64(n))
		b.c.inBytes.Add(uint64(bytes))
		msgs = msgs[n:]
		switch {
		case err == nil && len(msgs) == 0:
			return nil
		case err == nil:
			return fmt.Errorf("bridge: in: publish: the sink published %d of %d messages and returned no error", n, n+len(msgs))
		case len(msgs) > 0 && (errors.Is(err, ErrDropped) || errors.Is(err, ErrTooLarge)):
			b.c.inDrops.Add(1)
			if errors.Is(err, ErrTooLarge) {
				b.noteErr(err)
			}
			msgs = msgs[1:]
		default:
			return fmt.Errorf("bridge: in: publish: %w", err)
		}
	}
	return nil
}

func (t *seqTracker) badFrame(rest int) error {
	t.b.c.inDrops.Add(1)
	t.b.noteErr(fmt.Errorf("%w: batch frame: %d bytes left that hold no whole message", ErrCorrupt, rest))
	return nil
}

// deliver publishes one message into the channel and records its sequence.
func (t *seqTracker) deliver(ctx context.Context, key, seq uint64, data []byte) error {
	b := t.b
	err := b.sink.Publish(ctx, data)
	switch {
	case err == nil:
		b.c.inMsgs.Add(1)
		b.c.inBytes.Add(uint64(len(data)))
	case errors.Is(err, ErrDropped), errors.Is(err, ErrTooLarge):
		b.c.inDrops.Add(1)
		if errors.Is(err, ErrTooLarge) {
			b.noteErr(err)
		}
	default:
		return fmt.Errorf("bridge: in: publish: %w", err)
	}
	return t.done(key, seq)
}

func (b *Bridge) runIn(ctx context.Context) error {
	t := newSeqTracker(b)
	if b.cfg.Stream != "" {
		return b.runInJetStream(ctx, t)
	}
	fail := make(chan error, 1)
	fin := b.startFlowIn(ctx)
	sub, err := b.nc.Subscribe(b.cfg.Subject, func(m *nats.Msg) {
		if ctx.Err() != nil {
			return
		}
		if err := t.handle(ctx, m); err != nil {
			if ctx.Err() == nil {
				select {
				case fail <- err:
				default:
				}
			}
			return
		}
		if len(m.Header[FlowHeader]) > 0 { // one NATS message in flowMarkEvery
			if meta, ok := metaOf(m.Header); ok {
				fin.handled(meta.Origin, m)
			}
		}
	})
	if err != nil {
		return fmt.Errorf("%w: subscribe %s: %w", ErrConfig, b.cfg.Subject, err)
	}
	// The client calls the closed handler from the callback goroutine once
	// it has returned for the last time: after it, the counters hold every
	// message the callback published (Stats right after Run must not miss
	// the one in flight when ctx ended).
	cbDone := make(chan struct{})
	sub.SetClosedHandler(func(string) { close(cbDone) })
	// Bounded: beyond MaxPending messages or MaxPendingBytes the client
	// drops and counts them (Stats.InSlow).
	if err := sub.SetPendingLimits(b.cfg.MaxPending, b.cfg.MaxPendingBytes); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if err := b.nc.FlushTimeout(b.cfg.FlushTimeout); err != nil { // the server has the subscription
		b.noteErr(fmt.Errorf("subscribe flush: %w", err))
	}
	b.inSub.Store(sub)
	fin.setSub(sub)
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
	// The callback sees ctx (or the failure) and returns; the sink's
	// Publish honours ctx, so this wait is short. Bounded all the same.
	select {
	case <-cbDone:
	case <-time.After(callbackWait):
		b.noteErr(fmt.Errorf("in: the subscription's callback did not return within %v", callbackWait))
	}
	return res
}

// callbackWait bounds how long the in side waits, when it stops, for the
// NATS callback that is delivering a message.
const callbackWait = 10 * time.Second

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
