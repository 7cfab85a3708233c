package bridge

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// frameHeader is the per-message header in a batch frame: length u32,
// publisher id u32, epoch u32, sequence u64, little endian.
const frameHeader = 20

// pubTrack gives each local publisher slot its header value, with an
// epoch that grows when the slot's sequence goes backwards (a new
// publisher in a reused slot).
type pubTrack struct {
	last    uint64
	epoch   uint64
	started bool
}

type outPublisher struct {
	b     *Bridge
	pubs  map[int]*pubTrack
	msg   *nats.Msg
	hv    []string // msg's Shmkit header value, reused (core publishing copies it)
	hbuf  []byte   // where a header value is formatted
	js    jetstream.JetStream
	since int // messages since the last kick of the flusher
	kick  chan struct{}
	max   int
	tr    TryReceiver   // for batches; nil when off
	next  Message       // received for a batch it did not fit in
	br    BatchReceiver // for batches, preferred to tr; nil when off
	bufs  [][]byte      // br's buffers, one per message of a batch
	infos []Info
	frame []byte
	bmsg  *nats.Msg // largest payload the server takes with our headers
	fc    *flowOut  // nil: no flow control (JetStream, or turned off)
}

func (b *Bridge) runOut(ctx context.Context) error {
	o := &outPublisher{b: b, pubs: map[int]*pubTrack{}}
	o.hv = []string{""}
	o.msg = &nats.Msg{Subject: b.cfg.Subject, Header: nats.Header{Header: o.hv}}
	if b.cfg.Stream != "" {
		js, err := jetstream.New(b.nc,
			jetstream.WithPublishAsyncMaxPending(b.cfg.MaxPending),
			jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, err error) {
				b.c.outDrops.Add(msgCount(m))
				sub(&b.c.outUnflushed, msgCount(m))
				b.noteErr(fmt.Errorf("jetstream publish %s (%s): %w", m.Subject, m.Header.Get(Header), err))
			}),
			jetstream.WithPublishAsyncAckHandler(func(_ jetstream.JetStream, m *nats.Msg, _ *jetstream.PubAck) {
				sub(&b.c.outUnflushed, msgCount(m))
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
		o.fc = b.startFlowOut()
		defer o.fc.stop()
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
	o.max = int(b.nc.MaxPayload()) - 256 // headers: a few short fields
	if b.cfg.Batch > 1 {
		if br, ok := b.src.(BatchReceiver); ok && br.MaxMessage() > 0 {
			size := min(br.MaxMessage(), o.max+1) // longer: a drop anyway
			if size*b.cfg.Batch <= maxBatchBuffers {
				o.br = br
				buf := make([]byte, size*b.cfg.Batch)
				o.bufs = make([][]byte, b.cfg.Batch)
				for i := range o.bufs {
					o.bufs[i] = buf[i*size : (i+1)*size : (i+1)*size]
				}
				o.infos = make([]Info, b.cfg.Batch)
			}
		}
		if tr, ok := b.src.(TryReceiver); ok || o.br != nil {
			o.tr = tr
			o.bmsg = &nats.Msg{Subject: b.cfg.Subject, Header: nats.Header{Header: {""}}}
		}
	}
	defer func() {
		if o.next != nil {
			_ = o.next.Release()
		}
	}()
	for {
		if err := b.waitConnected(ctx); err != nil {
			return nil
		}
		if b.nc.IsClosed() {
			return ErrClosed
		}
		if o.br != nil {
			n, err := o.br.ReceiveBatch(ctx, o.bufs, o.infos)
			if err == nil {
				err = o.sendReceived(ctx, n)
			} else if ctx.Err() == nil && errors.Is(err, ErrNoPublishers) {
				if done, err := o.idle(ctx); done || err != nil {
					return err
				}
				continue
			} else if ctx.Err() == nil {
				err = fmt.Errorf("bridge: out: receive: %w", err)
			}
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			continue
		}
		m := o.next // a message an earlier batch had no room for
		o.next = nil
		if m == nil {
			var err error
			if m, err = b.src.Receive(ctx); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				if errors.Is(err, ErrNoPublishers) {
					if done, err := o.idle(ctx); done || err != nil {
						return err
					}
					continue
				}
				return fmt.Errorf("bridge: out: receive: %w", err)
			}
		}
		var err error
		if o.tr != nil {
			err = o.sendBatch(ctx, m) // releases m
		} else {
			err = o.send(ctx, m)
			if rerr := m.Release(); rerr != nil && err == nil {
				err = fmt.Errorf("bridge: out: release: %w", rerr)
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// idle handles a source without publishers: flush, then end (done) with
// ExitWhenIdle, or wait a little for a publisher to come.
func (o *outPublisher) idle(ctx context.Context) (done bool, err error) {
	b := o.b
	if o.js == nil {
		b.flushOut()
	}
	if b.cfg.ExitWhenIdle && b.cfg.Direction == Out {
		return true, nil
	}
	t := time.NewTimer(100 * time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return true, nil
	case <-t.C:
	}
	return false, nil
}

// sendBatch sends first and whatever else is ready in the channel (up to
// Batch messages and the server's max_payload) as one frame; alone, first
// goes as a single message. Each message is copied into the frame and
// released at once (a channel limits the samples a subscriber holds); one
// that does not fit waits in o.next for the next frame.
func (o *outPublisher) sendBatch(ctx context.Context, first Message) error {
	b := o.b
	var relErr error
	release := func(m Message) {
		if err := m.Release(); err != nil && relErr == nil {
			relErr = fmt.Errorf("bridge: out: release: %w", err)
		}
	}
	fits := func(size int, m Message) bool { return size+frameHeader+len(m.Bytes()) <= o.max }
	var second Message
	if fits(0, first) {
		m, err := o.tr.TryReceive()
		if err != nil {
			release(first)
			return errors.Join(fmt.Errorf("bridge: out: receive: %w", err), relErr)
		}
		if m != nil && !fits(frameHeader+len(first.Bytes()), m) {
			o.next = m
		} else {
			second = m
		}
	}
	if second == nil {
		err := o.send(ctx, first) // alone, or too large (a counted drop)
		release(first)
		return errors.Join(err, relErr)
	}
	f := o.frame[:0]
	count, nbytes := 0, 0
	add := func(m Message) {
		if pt, skip := o.track(m); !skip {
			data := m.Bytes()
			f = binary.LittleEndian.AppendUint32(f, uint32(len(data)))
			f = binary.LittleEndian.AppendUint32(f, uint32(m.Publisher()))
			f = binary.LittleEndian.AppendUint32(f, uint32(pt.epoch))
			f = binary.LittleEndian.AppendUint64(f, m.Seq())
			f = append(f, data...)
			count++
			nbytes += len(data)
		}
		release(m)
	}
	add(first)
	add(second)
	for n := 2; n < b.cfg.Batch; n++ {
		m, err := o.tr.TryReceive()
		if err != nil {
			o.frame = f
			return errors.Join(fmt.Errorf("bridge: out: receive: %w", err), relErr)
		}
		if m == nil {
			break
		}
		if !fits(len(f), m) {
			o.next = m
			break
		}
		add(m)
	}
	o.frame = f
	if relErr != nil {
		return relErr
	}
	if count == 0 {
		return nil
	}
	o.hbuf = Meta{Channel: b.cfg.Channel, Origin: b.origin, Batch: count}.appendTo(o.hbuf[:0])
	o.bmsg.Header[Header][0] = string(o.hbuf)
	return o.emit(ctx, o.bmsg, f, count, nbytes)
}

type counter interface {
	Load() uint64
	CompareAndSwap(old, new uint64) bool
}

// msgCount is the number of channel messages a NATS message carries.
func msgCount(m *nats.Msg) uint64 {
	if meta, ok := metaOf(m.Header); ok && meta.Batch > 0 {
		return uint64(meta.Batch)
	}
	return 1
}

// sub subtracts n, stopping at 0.
func sub(u counter, n uint64) {
	for {
		v := u.Load()
		if u.CompareAndSwap(v, v-min(v, n)) {
			return
		}
	}
}

// track applies m's Missed count, the loop check (skip: m came in from
// NATS through our own in side) and the publisher's epoch.
func (o *outPublisher) track(m Message) (pt *pubTrack, skip bool) {
	return o.trackInfo(m.Publisher(), m.Seq(), m.Missed())
}

func (o *outPublisher) trackInfo(pub int, seq, missed uint64) (pt *pubTrack, skip bool) {
	b := o.b
	if missed > 0 {
		b.c.outMissed.Add(missed)
	}
	if b.cfg.Direction == Both {
		if id, ok := b.sink.PublisherID(); ok && id == pub {
			b.c.outLooped.Add(1)
			return nil, true
		}
	}
	pt = o.pubs[pub]
	if pt == nil {
		pt = &pubTrack{}
		o.pubs[pub] = pt
	}
	if pt.started && seq <= pt.last {
		pt.epoch++
	}
	pt.started, pt.last = true, seq
	return pt, false
}

// send publishes one message with its own headers. Counted losses return
// nil; an error stops the out side.
func (o *outPublisher) send(ctx context.Context, m Message) error {
	pt, skip := o.track(m)
	if skip {
		return nil
	}
	data := m.Bytes()
	return o.sendOne(ctx, pt, m.Publisher(), m.Seq(), data, len(data))
}

// sendOne publishes one message, data (n bytes long; longer than data
// when it was truncated, a drop), with its own header.
func (o *outPublisher) sendOne(ctx context.Context, pt *pubTrack, pub int, seq uint64, data []byte, n int) error {
	b := o.b
	if o.tooLarge(pub, seq, n) {
		return nil
	}
	o.hbuf = Meta{Channel: b.cfg.Channel, Origin: b.origin, Publisher: pub, Epoch: pt.epoch, Seq: seq}.appendTo(o.hbuf[:0])
	o.hv[0] = string(o.hbuf)
	return o.emit(ctx, o.msg, data, 1, len(data))
}

// tooLarge counts and reports a message of n bytes that no NATS message
// can carry.
func (o *outPublisher) tooLarge(pub int, seq uint64, n int) bool {
	if n <= o.max {
		return false
	}
	o.b.c.outDrops.Add(1)
	o.b.noteErr(fmt.Errorf("%w: %d bytes from publisher %d seq %d, the server's max_payload is %d",
		ErrTooLarge, n, pub, seq, o.b.nc.MaxPayload()))
	return true
}

// whole reports whether buffer i holds all of message in; a message the
// source truncated (longer than its MaxMessage said) is a counted drop.
func (o *outPublisher) whole(i int, in Info) bool {
	if in.Len >= 0 && in.Len <= len(o.bufs[i]) {
		return true
	}
	o.b.c.outDrops.Add(1)
	o.b.noteErr(fmt.Errorf("%w: %d bytes from publisher %d seq %d, truncated to the source's MaxMessage %d",
		ErrTooLarge, in.Len, in.Publisher, in.Seq, len(o.bufs[i])))
	return false
}

// maxBatchBuffers bounds the memory of a BatchReceiver's buffers.
const maxBatchBuffers = 4 << 20

// sendReceived sends the n messages a BatchReceiver copied into o.bufs:
// one alone as a single message, more as frames of what fits.
func (o *outPublisher) sendReceived(ctx context.Context, n int) error {
	b := o.b
	n = min(max(n, 0), len(o.bufs))
	if n == 1 {
		in := o.infos[0]
		pt, skip := o.trackInfo(in.Publisher, in.Seq, in.Missed)
		if skip {
			return nil
		}
		if o.tooLarge(in.Publisher, in.Seq, in.Len) || !o.whole(0, in) {
			return nil
		}
		return o.sendOne(ctx, pt, in.Publisher, in.Seq, o.bufs[0][:in.Len], in.Len)
	}
	f := o.frame[:0]
	count, nbytes := 0, 0
	flush := func() error {
		if count == 0 {
			return nil
		}
		o.hbuf = Meta{Channel: b.cfg.Channel, Origin: b.origin, Batch: count}.appendTo(o.hbuf[:0])
		o.bmsg.Header[Header][0] = string(o.hbuf)
		err := o.emit(ctx, o.bmsg, f, count, nbytes)
		f, count, nbytes = f[:0], 0, 0
		return err
	}
	for i, in := range o.infos[:n] {
		pt, skip := o.trackInfo(in.Publisher, in.Seq, in.Missed)
		if skip || o.tooLarge(in.Publisher, in.Seq, in.Len) || !o.whole(i, in) {
			continue
		}
		if len(f)+frameHeader+in.Len > o.max {
			if err := flush(); err != nil {
				o.frame = f
				return err
			}
		}
		f = binary.LittleEndian.AppendUint32(f, uint32(in.Len))
		f = binary.LittleEndian.AppendUint32(f, uint32(in.Publisher))
		f = binary.LittleEndian.AppendUint32(f, uint32(pt.epoch))
		f = binary.LittleEndian.AppendUint64(f, in.Seq)
		f = append(f, o.bufs[i][:in.Len]...)
		count++
		nbytes += in.Len
	}
	err := flush()
	o.frame = f
	return err
}

// emit publishes msg with data, standing for n channel messages of nbytes
// payload. Core NATS copies msg into the client's buffer, so msg and data
// are free again on return; JetStream gets copies.
func (o *outPublisher) emit(ctx context.Context, msg *nats.Msg, data []byte, n, nbytes int) error {
	b := o.b
	if o.js != nil {
		// The async publish keeps the message until acked: its own copy.
		h := make(nats.Header, len(msg.Header))
		for k, v := range msg.Header {
			h[k] = []string{v[0]}
		}
		jm := &nats.Msg{Subject: msg.Subject, Data: append([]byte(nil), data...), Header: h}
		b.c.outUnflushed.Add(uint64(n)) // before: the ack may come before PublishMsgAsync returns
		for {
			// No retries: a resend after a later message was stored would
			// reorder the stream; a failed publish is a counted drop (and
			// a gap the in side reports).
			_, err := o.js.PublishMsgAsync(jm, jetstream.WithRetryAttempts(0))
			if err == nil {
				break
			}
			if errors.Is(err, jetstream.ErrTooManyStalledMsgs) && ctx.Err() == nil {
				continue // MaxPending in flight: wait for acks (back-pressure)
			}
			sub(&b.c.outUnflushed, uint64(n))
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, nats.ErrReconnectBufExceeded) || errors.Is(err, nats.ErrMaxPayload) {
				b.c.outDrops.Add(uint64(n))
				b.noteErr(err)
				return nil
			}
			return fmt.Errorf("bridge: out: jetstream publish: %w", err)
		}
		b.c.outMsgs.Add(uint64(n))
		b.c.outBytes.Add(uint64(nbytes))
		b.c.outFrames.Add(1)
		return nil
	}
	if err := o.fc.wait(ctx); err != nil {
		return err
	}
	marked := o.fc.mark(msg, len(data))
	msg.Data = data
	err := b.nc.PublishMsg(msg)
	msg.Data = nil
	if marked {
		unmark(msg)
	}
	switch {
	case err == nil:
	case errors.Is(err, nats.ErrReconnectBufExceeded), errors.Is(err, nats.ErrMaxPayload):
		b.c.outDrops.Add(uint64(n))
		b.noteErr(err)
		return nil
	default:
		return fmt.Errorf("bridge: out: publish: %w", err)
	}
	b.c.outMsgs.Add(uint64(n))
	b.c.outBytes.Add(uint64(nbytes))
	b.c.outFrames.Add(1)
	o.since += n
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
