//go:build linux

package bench

// Every use of the channels (package shmkit, the root package) in the
// benchmark is in this file, and only through its public API. A channel
// lives in a Memfd segment (Config.Backend Memfd: nothing is named in
// /dev/shm) that the parent creates and hands to the child as a
// descriptor; the child joins it with shmkit.OpenFile.
//
// Rows:
//   - pubsub, pubsub-zc: one publisher (the child) and one subscriber (the
//     parent), stream and ping-pong (a second channel carries the echoes).
//     pubsub copies (Send, ReceiveInto); pubsub-zc writes the message in
//     a loaned chunk (LoanContext, Publish) and reads it where it lies
//     (Receive, Release).
//   - fanout, fanout-zc: one publisher, four subscribers in the parent
//     (the harness's consumer and three more goroutines, each verifying
//     every message as the consumer does), stream only. Messages/s is what
//     each subscriber receives (every one receives every message); the
//     child's CPU per message (cpu_child_ns_per_msg) is the publisher's
//     cost per published message, to set against the pubsub row's.
//   - workqueue: the scaling rows of a work queue channel, N producers
//     (Producer, Send) in the child and N consumers (Consumer,
//     ReceiveInto) in the parent, as the MPMC ring's scaling rows.
//
// The channels wait as they do by default (spin briefly, then park), so
// their rows have no waiting modes.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/shmkit/shmkit"
)

// chanKind is one channel row.
type chanKind struct {
	zeroCopy bool
	subs     int  // subscribers: 1, or fanOut for the fan-out rows
	batch    bool // SendBatch / ReceiveBatch of up to batchSize (stream only)
}

// fanOut is the number of subscribers of the fan-out rows.
const fanOut = fanOutSubscribers

func init() {
	register(chanKind{subs: 1})
	register(chanKind{subs: 1, batch: true})
	register(chanKind{subs: 1, zeroCopy: true})
	register(chanKind{subs: fanOut})
	register(chanKind{subs: fanOut, zeroCopy: true})
	register(workQueueKind{})
}

func (k chanKind) name() string {
	n := "pubsub"
	if k.subs > 1 {
		n = "fanout"
	}
	if k.zeroCopy {
		n += "-zc"
	}
	if k.batch {
		n += "-batch"
	}
	return n
}

func (chanKind) family() string { return FamilyShmkit }
func (chanKind) waits() bool    { return false }

// streamOnly: the fan-out rows measure a stream; a ping-pong with four
// echoers would measure the slowest echo.
// A batching row has no ping-pong either (one message is all a ping has).
func (k chanKind) streamOnly() bool { return k.subs > 1 || k.batch }

// chanBatchOut collects messages in buffers of its own and sends them
// batchSize at a time (and at flush) with one SendBatch call: one wake-up
// of the subscriber per batch.
type chanBatchOut struct {
	ctx  context.Context
	pub  *shmkit.Publisher
	bufs [][]byte
	k    int
}

func newChanBatchOut(ctx context.Context, pub *shmkit.Publisher, size int) *chanBatchOut {
	b := &chanBatchOut{ctx: ctx, pub: pub, bufs: make([][]byte, batchSize)}
	for i := range b.bufs {
		b.bufs[i] = make([]byte, size)
		fillPayload(b.bufs[i])
	}
	return b
}

func (b *chanBatchOut) buf(n int) ([]byte, error) { return b.bufs[b.k][:n], nil }
func (b *chanBatchOut) inPlace() bool             { return false }

func (b *chanBatchOut) send(n int) error {
	b.bufs[b.k] = b.bufs[b.k][:n]
	if b.k++; b.k == len(b.bufs) {
		return b.flush()
	}
	return nil
}

func (b *chanBatchOut) flush() error {
	k := b.k
	b.k = 0
	if k == 0 {
		return nil
	}
	_, err := b.pub.SendBatch(b.ctx, b.bufs[:k])
	return err
}

// chanBatchIn receives up to batchSize messages per ReceiveBatch call (one
// position store per batch) and hands them out one by one.
type chanBatchIn struct {
	ctx   context.Context
	sub   *shmkit.Subscriber
	bufs  [][]byte
	infos []shmkit.MessageInfo
	n, i  int
}

func newChanBatchIn(ctx context.Context, sub *shmkit.Subscriber, size int) *chanBatchIn {
	b := &chanBatchIn{ctx: ctx, sub: sub, bufs: make([][]byte, batchSize), infos: make([]shmkit.MessageInfo, batchSize)}
	for i := range b.bufs {
		b.bufs[i] = make([]byte, size)
	}
	return b
}

func (b *chanBatchIn) next() ([]byte, error) {
	if b.i == b.n {
		n, err := b.sub.ReceiveBatch(b.ctx, b.bufs, b.infos)
		if err != nil {
			return nil, err
		}
		b.n, b.i = n, 0
	}
	b.i++
	m := b.bufs[b.i-1]
	if l := b.infos[b.i-1].Len; l <= len(m) {
		m = m[:l]
	}
	return m, nil
}

func (b *chanBatchIn) done() error { return nil }

// chanConfig is the configuration of a channel for messages of size bytes:
// rings as deep as the SPSC ring rows' (ringSlots), twice as many chunks as
// a ring holds (the default), MaxMessage the message size.
func chanConfig(pattern shmkit.Pattern, size, pubs, subs int) shmkit.Config {
	return shmkit.Config{
		Pattern:        pattern,
		MaxMessage:     size,
		RingDepth:      ringSlots(size),
		MaxPublishers:  pubs,
		MaxSubscribers: subs,
		Backend:        shmkit.Memfd,
	}
}

// createChannel creates a Memfd channel and returns it with a duplicate of
// its descriptor for the child (the harness closes that one once the child
// has started).
func createChannel(name string, cfg shmkit.Config) (*shmkit.Channel, *os.File, error) {
	ch, err := shmkit.Create(name, cfg)
	if err != nil {
		return nil, nil, err
	}
	fd, err := unix.FcntlInt(ch.File().Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, nil, errors.Join(fmt.Errorf("dup channel memfd: %w", err), ch.Close())
	}
	return ch, os.NewFile(uintptr(fd), name), nil
}

// openChannel is the child's side: it joins the channel at f and closes f
// (OpenFile keeps a descriptor of its own).
func openChannel(f *os.File) (*shmkit.Channel, error) {
	ch, err := shmkit.OpenFile(f)
	f.Close()
	return ch, err
}

// chanOut sends through a publisher: copying (Send) or zero-copy
// (LoanContext, then Publish).
type chanOut struct {
	ctx      context.Context
	pub      *shmkit.Publisher
	zeroCopy bool
	b        []byte         // copying: the harness's buffer
	s        *shmkit.Sample // zero-copy: the loan being written
	// hello, when set, is received (and checked) before the first message
	// is sent: the peer's subscriber has joined then (a subscriber only
	// receives what is published after it joined).
	hello *shmkit.Subscriber
}

func (o *chanOut) buf(n int) ([]byte, error) {
	if o.hello != nil {
		if err := awaitHello(o.ctx, o.hello); err != nil {
			return nil, err
		}
		o.hello = nil
	}
	if !o.zeroCopy {
		if cap(o.b) < n {
			o.b = make([]byte, n)
		}
		return o.b[:n], nil
	}
	s, err := o.pub.LoanContext(o.ctx, n)
	if err != nil {
		return nil, err
	}
	o.s = s
	return s.Bytes(), nil
}

func (o *chanOut) send(n int) error {
	if !o.zeroCopy {
		return o.pub.Send(o.ctx, o.b[:n])
	}
	s := o.s
	o.s = nil
	if s == nil {
		return fmt.Errorf("%w: send without a loan", ErrConfig)
	}
	if n != s.Len() {
		if err := s.SetLen(n); err != nil {
			return errors.Join(err, s.Discard())
		}
	}
	return o.pub.Publish(o.ctx, s)
}

func (o *chanOut) inPlace() bool { return o.zeroCopy }

// write lets the echoer send a copying row's echo straight from the
// received bytes.
func (o *chanOut) write(msg []byte) error { return o.pub.Send(o.ctx, msg) }

// chanIn receives through a subscriber: copying (ReceiveInto) or
// zero-copy (Receive, then Release).
type chanIn struct {
	ctx      context.Context
	sub      *shmkit.Subscriber
	zeroCopy bool
	b        []byte
	s        *shmkit.Sample
	// fan, when set, are the fan-out's other subscribers: the message
	// flagged last is handed out once they have all received theirs, and
	// their failures are this end's.
	fan *fanOutSubs
}

// fanOutSubs are the other subscribers of a fan-out cell, each running the
// harness's consumer role on a goroutine.
type fanOutSubs struct {
	wg   sync.WaitGroup
	mu   sync.Mutex
	errs []error
}

func (f *fanOutSubs) fail(err error) {
	f.mu.Lock()
	f.errs = append(f.errs, err)
	f.mu.Unlock()
}

func (f *fanOutSubs) err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return errors.Join(f.errs...)
}

func (in *chanIn) next() ([]byte, error) {
	var msg []byte
	if in.zeroCopy {
		s, err := in.sub.Receive(in.ctx)
		if err != nil {
			return nil, in.withFan(err)
		}
		in.s = s
		msg = s.Bytes()
	} else {
		n, err := in.sub.ReceiveInto(in.ctx, in.b)
		if err != nil {
			return nil, in.withFan(err)
		}
		if n > len(in.b) {
			return nil, fmt.Errorf("%w: message of %d bytes, buffer of %d", ErrCorrupt, n, len(in.b))
		}
		msg = in.b[:n]
	}
	if in.fan != nil && len(msg) >= 8 && binary.LittleEndian.Uint64(msg)&flagLast != 0 {
		in.fan.wg.Wait()
		if err := in.fan.err(); err != nil {
			return nil, errors.Join(err, in.done())
		}
	}
	return msg, nil
}

// withFan puts the fan-out's failures (which cancel the cell) before err.
func (in *chanIn) withFan(err error) error {
	if in.fan != nil {
		if ferr := in.fan.err(); ferr != nil {
			return errors.Join(ferr, err)
		}
	}
	return err
}

func (in *chanIn) done() error {
	if s := in.s; s != nil {
		in.s = nil
		return s.Release()
	}
	return nil
}

// helloSize is the size of the hello message, below any harness message.
const helloSize = 1

func sendHello(ctx context.Context, pub *shmkit.Publisher) error {
	return pub.Send(ctx, []byte{'h'})
}

func awaitHello(ctx context.Context, sub *shmkit.Subscriber) error {
	buf := make([]byte, MinSize)
	n, err := sub.ReceiveInto(ctx, buf)
	if err != nil {
		return fmt.Errorf("wait for the peer's hello: %w", err)
	}
	if n != helloSize || buf[0] != 'h' {
		return fmt.Errorf("%w: hello of %d bytes", ErrCorrupt, n)
	}
	return nil
}

// Channel names, in the order of the child's descriptors: "up" carries the
// stream and the echoes (child to parent), "down" the pings.
const (
	chanUp   = 0
	chanDown = 1
)

func (k chanKind) open(c *cell) (*link, error) {
	ctx, cancel := context.WithCancel(context.Background())
	var (
		chans   []*shmkit.Channel
		files   []*os.File
		closers []func() error
		fan     fanOutSubs
	)
	release := func() error {
		cancel()
		fan.wg.Wait()
		var errs []error
		for i := len(closers) - 1; i >= 0; i-- {
			errs = append(errs, closers[i]())
		}
		for _, ch := range chans {
			errs = append(errs, ch.Close())
		}
		return errors.Join(errs...)
	}
	fail := func(err error) (*link, error) {
		for _, f := range files {
			f.Close()
		}
		return nil, errors.Join(err, release())
	}
	n := 1
	if c.pingpong() {
		n = 2
	}
	for i := range n {
		ch, f, err := createChannel(fmt.Sprintf("bench-%s-%d", k.name(), i), chanConfig(shmkit.PubSub, c.Size, 1, k.subs))
		if err != nil {
			return fail(err)
		}
		chans, files = append(chans, ch), append(files, f)
	}
	// The parent's subscribers join before the child starts: they receive
	// everything it publishes.
	var subs []*shmkit.Subscriber
	for range k.subs {
		sub, err := chans[chanUp].Subscriber()
		if err != nil {
			return fail(err)
		}
		subs = append(subs, sub)
		closers = append(closers, sub.Close)
	}
	in := &chanIn{ctx: ctx, sub: subs[0], zeroCopy: k.zeroCopy, b: make([]byte, c.Size)}
	l := &link{ends: ends{in: in}, files: files, abort: cancel, release: release}
	if k.batch {
		l.ends.in = newChanBatchIn(ctx, subs[0], c.Size)
	}
	if c.pingpong() {
		pub, err := chans[chanDown].Publisher()
		if err != nil {
			return fail(err)
		}
		closers = append(closers, pub.Close)
		l.out = &chanOut{ctx: ctx, pub: pub, zeroCopy: k.zeroCopy, hello: subs[0]}
	}
	if len(subs) > 1 {
		// The other subscribers of the fan-out: the harness's consumer
		// role each, on a goroutine, checking every message as the
		// measured one does. One that fails cancels the cell (the
		// publisher would otherwise block on its full ring).
		p := paceOf(c)
		for i, sub := range subs[1:] {
			fan.wg.Add(1)
			go func() {
				defer fan.wg.Done()
				e := &chanIn{ctx: ctx, sub: sub, zeroCopy: k.zeroCopy, b: make([]byte, c.Size)}
				if err := runRole(newConsumer(e, p)); err != nil {
					fan.fail(fmt.Errorf("subscriber %d: %w", i+1, err))
					cancel()
				}
			}()
		}
		// The measured subscriber hands out the last message once every
		// other subscriber has received its own last one: the window
		// covers all four.
		in.fan = &fan
	}
	return l, nil
}

func (k chanKind) attach(c *cell, files []*os.File) (ends, error) {
	want := 1
	if c.pingpong() {
		want = 2
	}
	if len(files) != want {
		return ends{}, fmt.Errorf("%w: channel child needs %d descriptors, has %d", ErrConfig, want, len(files))
	}
	ctx := context.Background()
	var chans []*shmkit.Channel
	for _, f := range files {
		ch, err := openChannel(f)
		if err != nil {
			return ends{}, err
		}
		chans = append(chans, ch)
	}
	// The channels stay joined until the process exits.
	pub, err := chans[chanUp].Publisher()
	if err != nil {
		return ends{}, err
	}
	e := ends{out: &chanOut{ctx: ctx, pub: pub, zeroCopy: k.zeroCopy}}
	if k.batch {
		e.out = newChanBatchOut(ctx, pub, c.Size)
	}
	if !c.pingpong() {
		return e, nil
	}
	sub, err := chans[chanDown].Subscriber()
	if err != nil {
		return ends{}, err
	}
	e.in = &chanIn{ctx: ctx, sub: sub, zeroCopy: k.zeroCopy, b: make([]byte, c.Size)}
	if !k.zeroCopy {
		// Echo from the received bytes, as the other copying rows do.
		e.out = newCopyOut(e.out.(*chanOut), c.Size)
	}
	// Subscribed: the parent may send its first ping now.
	return e, sendHello(ctx, pub)
}

// workQueueKind is the work queue channel of the scaling rows.
type workQueueKind struct{}

func (workQueueKind) name() string   { return "workqueue" }
func (workQueueKind) family() string { return FamilyShmkit }
func (workQueueKind) waits() bool    { return false }

// scalingOnly: the work queue has scaling rows only (with one producer and
// one consumer it is the pubsub row's path).
func (workQueueKind) scalingOnly() bool { return true }

func (workQueueKind) open(*cell) (*link, error) {
	return nil, fmt.Errorf("%w: the work queue has scaling rows only", ErrConfig)
}

func (workQueueKind) attach(*cell, []*os.File) (ends, error) {
	return ends{}, fmt.Errorf("%w: the work queue has scaling rows only", ErrConfig)
}

// wqShared is a work queue channel of a scaling cell: the parent's side
// takes consumers, the child's producers, one per goroutine.
type wqShared struct {
	ch     *shmkit.Channel
	parent bool
	size   int
	ctx    context.Context
	cancel context.CancelFunc
	mu     sync.Mutex
	subs   []*shmkit.Consumer
}

// newWorkQueue creates the channel (parent) and the descriptor for the
// child.
func newWorkQueue(c *cell) (*wqShared, *os.File, error) {
	n := max(c.Senders, c.Receivers, 1)
	ch, f, err := createChannel("bench-workqueue", chanConfig(shmkit.WorkQueue, c.Size, n, n))
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &wqShared{ch: ch, parent: true, size: c.Size, ctx: ctx, cancel: cancel}, f, nil
}

// attachWorkQueue is the child's side.
func attachWorkQueue(c *cell, f *os.File) (*wqShared, error) {
	ch, err := openChannel(f)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &wqShared{ch: ch, size: c.Size, ctx: ctx, cancel: cancel}, nil
}

// handle joins a consumer (parent) or a producer (child).
func (w *wqShared) handle() (ends, error) {
	if !w.parent {
		p, err := w.ch.Producer()
		if err != nil {
			return ends{}, err
		}
		return ends{out: newCopyOut(&chanOut{ctx: w.ctx, pub: p.Publisher}, w.size)}, nil
	}
	s, err := w.ch.Consumer()
	if err != nil {
		return ends{}, err
	}
	w.mu.Lock()
	w.subs = append(w.subs, s)
	w.mu.Unlock()
	return ends{in: &chanIn{ctx: w.ctx, sub: s.Subscriber, b: make([]byte, w.size)}}, nil
}

// close ends the consumers' waits. The scaling consumers call it once
// every producer's last message was taken, and a work queue hands each
// producer's messages out in order, so nothing is left then.
func (w *wqShared) close() { w.cancel() }

// closed reports whether err ends a consumer normally: the cell is over
// (close), or every producer has left and the queue is empty.
func (w *wqShared) closed(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, shmkit.ErrPeerGone) || errors.Is(err, shmkit.ErrClosed)
}

func (w *wqShared) release() error {
	w.cancel()
	var errs []error
	w.mu.Lock()
	for _, s := range w.subs {
		errs = append(errs, s.Close())
	}
	w.mu.Unlock()
	return errors.Join(append(errs, w.ch.Close())...)
}
