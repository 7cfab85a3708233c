package bridge

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Header names (canonical MIME form, as nats.go decodes them).
const (
	// HeaderChannel: the origin channel's name.
	HeaderChannel = "Shmkit-Channel"
	// HeaderOrigin: the id of the bridge that sent the message out.
	HeaderOrigin = "Shmkit-Origin"
	// HeaderPublisher: the origin publisher, "<slot>.<epoch>": the epoch
	// grows when a new publisher takes over a slot (its sequence restarts).
	HeaderPublisher = "Shmkit-Publisher"
	// HeaderSeq: the origin publisher's sequence number (decimal).
	HeaderSeq = "Shmkit-Seq"
)

// pubTrack gives each local publisher slot its header value, with an
// epoch that grows when the slot's sequence goes backwards (a new
// publisher in a reused slot).
type pubTrack struct {
	last  uint64
	epoch uint64
	value []string
}

type outPublisher struct {
	b     *Bridge
	pubs  map[int]*pubTrack
	msg   *nats.Msg
	js    jetstream.JetStream
	since int // messages since the last kick of the flusher
	kick  chan struct{}
	seqv  []string // the Shmkit-Seq header value, reused (core publishing copies it)
	max   int      // largest payload the server takes with our headers
}

func (b *Bridge) runOut(ctx context.Context) error {
	o := &outPublisher{b: b, pubs: map[int]*pubTrack{}}
	o.msg = &nats.Msg{Subject: b.cfg.Subject, Header: nats.Header{
		HeaderChannel: {b.cfg.Channel}, HeaderOrigin: {b.origin}, HeaderPublisher: {""}, HeaderSeq: {""},
	}}
	if b.cfg.Stream != "" {
		js, err := jetstream.New(b.nc,
			jetstream.WithPublishAsyncMaxPending(b.cfg.MaxPending),
			jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, err error) {
				b.c.outDrops.Add(1)
				decr(&b.c.outUnflushed)
				b.noteErr(fmt.Errorf("jetstream publish %s seq %s: %w", m.Subject, m.Header.Get(HeaderSeq), err))
			}),
			jetstream.WithPublishAsyncAckHandler(func(jetstream.JetStream, *nats.Msg, *jetstream.PubAck) {
				decr(&b.c.outUnflushed)
			}))
		if err != nil {
			return fmt.Errorf("%w: jetstream: %w", ErrConfig, err)
		}
		if err := b.ensureStream(ctx, js); err != nil {
			return err
		}
		o.js = js
	}
	if o.js == nil {
		// The flusher confirms in the background, every FlushInterval and
		// whenever the loop has sent FlushEvery more; the loop itself
		// waits for a flush only when 2*FlushEvery are unconfirmed.
		tick := time.NewTicker(b.cfg.FlushInterval)
		done := make(chan struct{})
		o.kick = make(chan struct{}, 1)
		go func() {
			for {
				select {
				case <-tick.C:
				case <-o.kick:
				case <-done:
					return
				}
				b.flushOut()
			}
		}()
		defer func() { close(done); tick.Stop(); b.flushOut() }()
	} else {
		defer o.drainJetStream()
	}
	for {
		if err := b.waitConnected(ctx); err != nil {
			return nil
		}
		if b.nc.IsClosed() {
			return ErrClosed
		}
		m, err := b.src.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, ErrNoPublishers) {
				if o.js == nil {
					b.flushOut()
				}
				if b.cfg.ExitWhenIdle && b.cfg.Direction == Out {
					return nil
				}
				t := time.NewTimer(100 * time.Millisecond)
				select {
				case <-ctx.Done():
					t.Stop()
					return nil
				case <-t.C:
				}
				continue
			}
			return fmt.Errorf("bridge: out: receive: %w", err)
		}
		err = o.send(ctx, m)
		if rerr := m.Release(); rerr != nil && err == nil {
			err = fmt.Errorf("bridge: out: release: %w", rerr)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

func decr(u interface {
	Load() uint64
	CompareAndSwap(old, new uint64) bool
}) {
	for {
		v := u.Load()
		if v == 0 || u.CompareAndSwap(v, v-1) {
			return
		}
	}
}

// send publishes one message. Counted losses return nil; an error stops
// the out side.
func (o *outPublisher) send(ctx context.Context, m Message) error {
	b := o.b
	if n := m.Missed(); n > 0 {
		b.c.outMissed.Add(n)
	}
	if b.cfg.Direction == Both {
		if id, ok := b.sink.PublisherID(); ok && id == m.Publisher() {
			b.c.outLooped.Add(1)
			return nil
		}
	}
	data := m.Bytes()
	pt := o.pubs[m.Publisher()]
	if pt == nil {
		pt = &pubTrack{}
		o.pubs[m.Publisher()] = pt
	}
	seq := m.Seq()
	if pt.value == nil || seq <= pt.last {
		if pt.value != nil {
			pt.epoch++
		}
		pt.value = []string{strconv.Itoa(m.Publisher()) + "." + strconv.FormatUint(pt.epoch, 10)}
	}
	pt.last = seq
	if o.max == 0 {
		o.max = int(b.nc.MaxPayload()) - 256 // headers: four short fields
	}
	if len(data) > o.max {
		b.c.outDrops.Add(1)
		b.noteErr(fmt.Errorf("%w: %d bytes from publisher %d seq %d, the server's max_payload is %d",
			ErrTooLarge, len(data), m.Publisher(), seq, b.nc.MaxPayload()))
		return nil
	}
	if o.js != nil {
		// The async publish keeps the message until acked (and may resend
		// it): it gets its own copy, the sample is released after.
		msg := &nats.Msg{Subject: b.cfg.Subject, Data: append([]byte(nil), data...), Header: nats.Header{
			HeaderChannel: o.msg.Header[HeaderChannel], HeaderOrigin: o.msg.Header[HeaderOrigin],
			HeaderPublisher: pt.value, HeaderSeq: {strconv.FormatUint(seq, 10)},
		}}
		b.c.outUnflushed.Add(1) // before: the ack may come before PublishMsgAsync returns
		for {
			// No retries: a resend after a later message was stored would
			// reorder the stream; a failed publish is a counted drop (and
			// a gap the in side reports).
			_, err := o.js.PublishMsgAsync(msg, jetstream.WithRetryAttempts(0))
			if err == nil {
				break
			}
			if errors.Is(err, jetstream.ErrTooManyStalledMsgs) && ctx.Err() == nil {
				continue // MaxPending in flight: wait for acks (back-pressure)
			}
			decr(&b.c.outUnflushed)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, nats.ErrReconnectBufExceeded) || errors.Is(err, nats.ErrMaxPayload) {
				b.c.outDrops.Add(1)
				b.noteErr(err)
				return nil
			}
			return fmt.Errorf("bridge: out: jetstream publish: %w", err)
		}
	} else {
		o.msg.Data = data
		o.msg.Header[HeaderPublisher] = pt.value
		if o.seqv == nil {
			o.seqv = []string{""}
			o.msg.Header[HeaderSeq] = o.seqv
		}
		o.seqv[0] = strconv.FormatUint(seq, 10)
		// PublishMsg copies into the client's buffer: the sample can go.
		err := b.nc.PublishMsg(o.msg)
		o.msg.Data = nil
		switch {
		case err == nil:
		case errors.Is(err, nats.ErrReconnectBufExceeded), errors.Is(err, nats.ErrMaxPayload):
			b.c.outDrops.Add(1)
			b.noteErr(err)
			return nil
		default:
			return fmt.Errorf("bridge: out: publish: %w", err)
		}
		b.c.outMsgs.Add(1)
		b.c.outBytes.Add(uint64(len(data)))
		o.since++
		if o.since >= b.cfg.FlushEvery {
			o.since = 0
			select {
			case o.kick <- struct{}{}:
			default:
			}
			if b.c.outMsgs.Load()-b.c.outConfirmed.Load() >= 2*uint64(b.cfg.FlushEvery) {
				b.flushOut() // the server is behind: wait for it
			}
		}
		return nil
	}
	b.c.outMsgs.Add(1)
	b.c.outBytes.Add(uint64(len(data)))
	return nil
}

// flushOut confirms what core publishing sent so far (one round trip).
// The flusher goroutine calls it every FlushInterval and after every
// FlushEvery messages; the out loop calls it (and waits) when 2*FlushEvery
// messages are unconfirmed, so it never runs further ahead of the server.
func (b *Bridge) flushOut() {
	sent := b.c.outMsgs.Load()
	if sent <= b.c.outConfirmed.Load() {
		return
	}
	start := time.Now()
	if err := b.nc.FlushTimeout(b.cfg.FlushTimeout); err != nil {
		if !errors.Is(err, nats.ErrConnectionClosed) {
			b.noteErr(fmt.Errorf("flush: %w", err))
		}
		return
	}
	b.c.flushRTT.Store(int64(time.Since(start)))
	for {
		c := b.c.outConfirmed.Load()
		if c >= sent || b.c.outConfirmed.CompareAndSwap(c, sent) {
			return
		}
	}
}

// drainJetStream waits (a bounded time) for the acks of what was published.
func (o *outPublisher) drainJetStream() {
	if o.js == nil {
		return
	}
	t := time.NewTimer(5 * o.b.cfg.FlushTimeout)
	defer t.Stop()
	select {
	case <-o.js.PublishAsyncComplete():
	case <-t.C:
		o.b.noteErr(fmt.Errorf("jetstream: %d publishes without an ack after %v", o.js.PublishAsyncPending(), 5*o.b.cfg.FlushTimeout))
	}
}

// ensureStream finds the stream, creating it on the subject if missing.
func (b *Bridge) ensureStream(ctx context.Context, js jetstream.JetStream) error {
	for range 3 {
		_, err := js.Stream(ctx, b.cfg.Stream)
		if err == nil {
			return nil
		}
		if !errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("%w: stream %s: %w", ErrConfig, b.cfg.Stream, err)
		}
		_, err = js.CreateStream(ctx, jetstream.StreamConfig{
			Name: b.cfg.Stream, Subjects: []string{b.cfg.Subject}, Storage: jetstream.FileStorage,
		})
		if err == nil {
			return nil
		}
		if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return fmt.Errorf("%w: create stream %s on %s: %w", ErrConfig, b.cfg.Stream, b.cfg.Subject, err)
		}
	}
	return fmt.Errorf("%w: stream %s: created and gone again", ErrConfig, b.cfg.Stream)
}
