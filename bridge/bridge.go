package bridge

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// Direction says which way a bridge moves messages.
type Direction int

// Directions.
const (
	// Out: local channel -> NATS subject.
	Out Direction = 1 << iota
	// In: NATS subject -> local channel.
	In
	// Both: one bridge each way; a message that came in from NATS is not
	// sent back out.
	Both = Out | In
)

func (d Direction) String() string {
	switch d {
	case Out:
		return "out"
	case In:
		return "in"
	case Both:
		return "both"
	}
	return fmt.Sprintf("direction(%d)", int(d))
}

// ParseDirection parses "out", "in" or "both".
func ParseDirection(s string) (Direction, error) {
	switch s {
	case "out":
		return Out, nil
	case "in":
		return In, nil
	case "both":
		return Both, nil
	}
	return 0, fmt.Errorf("%w: direction %q (want out, in or both)", ErrConfig, s)
}

// DefaultBatch is Config.Batch's default: up to 64 waiting messages per
// NATS message. With batching off (Batch 1), a steady stream of 200 000
// small messages between two channels through a NATS server on localhost
// lost messages to the in side's slow-consumer limit (TestPairDefaultsLoseNothing,
// docs/bridge.md); with it on, none.
const DefaultBatch = 64

// Config describes a bridge. Zero fields take the defaults below.
type Config struct {
	// URLs of the NATS servers (a cluster's seeds); default nats.DefaultURL.
	URLs []string
	// Channel is the local channel's name: it goes into every message's
	// Shmkit header and the default subject.
	Channel string
	// Subject is the NATS subject; default "shmkit.<Channel>".
	Subject string
	// Direction: Out, In or Both.
	Direction Direction

	// Stream selects JetStream: the out side publishes into this stream
	// (created on Subject if missing) and the in side reads it through the
	// durable pull consumer Durable (default "shmkit-<Channel>"), acking a
	// message only after the local publish returned.
	Stream  string
	Durable string
	// AckWait is how long JetStream waits for an ack before redelivering
	// (default 5 s).
	AckWait time.Duration

	// TLS files (PEM) and a credentials file, handed to nats.go's
	// ClientCert, RootCAs and UserCredentials options.
	TLSCert, TLSKey, TLSCA string
	Creds                  string

	// FlushEvery and FlushInterval: the out side confirms what it sent
	// with a flush (a round trip), in the background, after this many
	// messages and every interval (defaults 4096, 20 ms); it stops to wait
	// for the server when 2*FlushEvery messages are unconfirmed.
	FlushEvery    int
	FlushInterval time.Duration
	// FlushTimeout bounds one flush (default 2 s).
	FlushTimeout time.Duration
	// MaxPending bounds what is in flight: JetStream async publishes
	// without an ack (out), messages buffered in the client for the in
	// side (core NATS; beyond it the client drops and counts), and the
	// consumer's MaxAckPending (JetStream in). Default 4096.
	MaxPending int
	// Batch, when above 1, lets the out side pack up to this many
	// messages that are already waiting in the channel (it never waits
	// for more) into one NATS message, a frame the in side unpacks; each
	// message keeps its publisher and sequence. It divides the per-message
	// costs of NATS; a plain NATS subscriber then sees frames (a Shmkit
	// header "<channel> <origin> batch <count>"). Needs a Source with
	// ReceiveBatch (BatchReceiver) or TryReceive (TryReceiver); the in side
	// publishes a frame's messages with one PublishBatch where its Sink
	// has one (BatchSink). Default DefaultBatch (64); 1 turns batching off
	// (for plain NATS subscribers).
	Batch int
	// MaxPendingBytes bounds the bytes of the messages the client buffers
	// for the in side (core NATS; default 64 MiB).
	MaxPendingBytes int
	// ReconnectBuffer is the client's buffer for messages published while
	// reconnecting, in bytes (default 1 MiB); when full, a publish is a
	// counted drop. The out side stops receiving while disconnected, so
	// only what was in flight at the disconnect goes there.
	ReconnectBuffer int
	// ReconnectWait and MaxReconnectWait: exponential back-off between
	// reconnect attempts, with jitter (defaults 100 ms, 5 s). The bridge
	// reconnects forever.
	ReconnectWait, MaxReconnectWait time.Duration

	// NoFlowControl turns off the credit the bridges give each other over
	// core NATS (see FlowHeader): without it, an out side publishes as fast
	// as its channel delivers, and an in side that falls more than
	// MaxPending messages or MaxPendingBytes behind loses messages in its
	// client (counted in InSlow and InLost). With it (the default), an out
	// side waits while an in side it has heard from within 2 s has more
	// than half its pending limits outstanding. JetStream needs none.
	NoFlowControl bool

	// StateFile (in side, optional) keeps each origin publisher's last
	// delivered sequence on disk, so a restarted in side reports what it
	// missed while it was down (core NATS) and skips what JetStream
	// redelivers but was already delivered.
	StateFile string

	// ExitWhenIdle makes Run return (after a final flush) when the out
	// side's source reports ErrNoPublishers and no in side runs. Tests
	// and one-shot transfers use it.
	ExitWhenIdle bool

	// Logger receives connection events and loss reports (default: none).
	Logger *slog.Logger
	// NATSOptions are appended to the bridge's own nats.go options.
	NATSOptions []nats.Option
}

func (c Config) withDefaults() Config {
	if len(c.URLs) == 0 {
		c.URLs = []string{nats.DefaultURL}
	}
	if c.Subject == "" && c.Channel != "" {
		c.Subject = "shmkit." + c.Channel
	}
	if c.Durable == "" && c.Channel != "" {
		c.Durable = "shmkit-" + strings.NewReplacer(".", "_", "*", "_", ">", "_").Replace(c.Channel)
	}
	if c.AckWait == 0 {
		c.AckWait = 5 * time.Second
	}
	if c.FlushEvery == 0 {
		c.FlushEvery = 4096
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = 20 * time.Millisecond
	}
	if c.FlushTimeout == 0 {
		c.FlushTimeout = 2 * time.Second
	}
	if c.MaxPending == 0 {
		c.MaxPending = 4096
	}
	if c.Batch == 0 {
		c.Batch = DefaultBatch
	}
	if c.MaxPendingBytes == 0 {
		c.MaxPendingBytes = 64 << 20
	}
	if c.ReconnectBuffer == 0 {
		c.ReconnectBuffer = 1 << 20
	}
	if c.ReconnectWait == 0 {
		c.ReconnectWait = 100 * time.Millisecond
	}
	if c.MaxReconnectWait == 0 {
		c.MaxReconnectWait = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func (c Config) validate(src Source, sink Sink) error {
	switch {
	case c.Direction != Out && c.Direction != In && c.Direction != Both:
		return fmt.Errorf("%w: direction %v", ErrConfig, c.Direction)
	case c.Subject == "":
		return fmt.Errorf("%w: no subject and no channel name to derive it from", ErrConfig)
	case strings.ContainsAny(c.Subject, " \t\r\n"):
		return fmt.Errorf("%w: subject %q holds white space", ErrConfig, c.Subject)
	case c.Direction&Out != 0 && strings.ContainsAny(c.Subject, "*>"):
		return fmt.Errorf("%w: the out side publishes to one subject, %q has a wildcard", ErrConfig, c.Subject)
	case strings.HasPrefix(c.Subject, ".") || strings.HasSuffix(c.Subject, ".") || strings.Contains(c.Subject, ".."):
		return fmt.Errorf("%w: subject %q has an empty token", ErrConfig, c.Subject)
	case c.Direction&Out != 0 && src == nil:
		return fmt.Errorf("%w: direction %v needs a source", ErrConfig, c.Direction)
	case c.Direction&In != 0 && sink == nil:
		return fmt.Errorf("%w: direction %v needs a sink", ErrConfig, c.Direction)
	case (c.TLSCert == "") != (c.TLSKey == ""):
		return fmt.Errorf("%w: a TLS client certificate needs both cert and key", ErrConfig)
	case c.FlushEvery < 1 || c.MaxPending < 1 || c.MaxPendingBytes < 1 || c.ReconnectBuffer < 0 || c.Batch < 0:
		return fmt.Errorf("%w: FlushEvery, MaxPending, MaxPendingBytes must be positive", ErrConfig)
	}
	return nil
}

// Stats are a bridge's counters; Stats() returns a consistent-enough copy
// (each field is read atomically).
type Stats struct {
	// Out side: messages and payload bytes handed to NATS.
	OutMsgs, OutBytes uint64
	// OutDrops: messages received from the channel but not delivered to
	// NATS: reconnect buffer full, larger than max_payload, or a JetStream
	// publish that failed.
	OutDrops uint64
	// OutMissed: messages the bridge's subscription lost to the channel's
	// overflow policy (it fell behind).
	OutMissed uint64
	// OutLooped: messages skipped because they came in from NATS.
	OutLooped uint64
	// OutFrames: NATS messages published: OutMsgs without batching, fewer
	// with it (OutMsgs/OutFrames channel messages per NATS message).
	OutFrames uint64
	// OutFlowWaits and OutFlowWait: how often and how long the out side
	// waited for an in side to catch up (flow control).
	OutFlowWaits uint64
	OutFlowWait  time.Duration
	// OutUnflushed: messages sent since the last confirmed flush (core) or
	// without a JetStream ack yet: the out side's lag.
	OutUnflushed uint64

	// In side: messages and payload bytes published into the channel.
	InMsgs, InBytes uint64
	// InDrops: messages the channel's policy dropped or that exceed the
	// channel's MaxMessage.
	InDrops uint64
	// InSlow: messages the NATS client dropped because the in side fell
	// more than MaxPending behind (core NATS "slow consumer").
	InSlow uint64
	// InLost: messages missing in an origin publisher's sequence: lost
	// anywhere between that publisher's channel and this one, whatever the
	// cause (so a message counted in OutDrops, OutMissed or InSlow shows up
	// here too once a later one from the same publisher arrives), including
	// while this bridge was down when a StateFile says where it stopped.
	InLost uint64
	// InDuplicates: messages skipped as already delivered (JetStream
	// redelivery).
	InDuplicates uint64
	// InEcho: messages that this bridge itself sent out (ignored).
	InEcho uint64
	// InPending: messages waiting in the client (core) or in the stream
	// for the consumer (JetStream): the in side's lag.
	InPending uint64

	// Connection.
	Reconnects, Disconnects uint64
	// FlushRTT is the last flush's round trip.
	FlushRTT time.Duration
	// Errors counts asynchronous errors; LastError is the latest.
	Errors    uint64
	LastError string
}

type counters struct {
	outMsgs, outBytes, outDrops, outMissed, outLooped, outUnflushed, outConfirmed atomic.Uint64
	outFrames, outFlowWaits, outFlowWaitNs                                        atomic.Uint64
	inMsgs, inBytes, inDrops, inSlow, inLost, inDup, inEcho                       atomic.Uint64
	inPending                                                                     atomic.Uint64
	reconnects, disconnects, errors                                               atomic.Uint64
	flushRTT                                                                      atomic.Int64
	lastErr                                                                       atomic.Pointer[string]
}

// Bridge moves messages between one local channel and one NATS subject.
type Bridge struct {
	cfg    Config
	src    Source
	sink   Sink
	nc     *nats.Conn
	origin string // this bridge's id in the Shmkit header
	c      counters

	connMu    sync.Mutex
	connected chan struct{} // closed while connected; replaced on disconnect

	inSub   atomic.Pointer[nats.Subscription]
	state   *stateFile
	closeMu sync.Mutex
	closed  bool
}

// New validates cfg, connects to NATS and returns a bridge ready to Run.
// src is needed for Out, sink for In (both for Both). The caller keeps
// ownership of src and sink and closes them after the bridge. An
// unreachable server, bad TLS files or credentials fail here with
// ErrConnect; after that the bridge reconnects by itself.
func New(cfg Config, src Source, sink Sink) (*Bridge, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(src, sink); err != nil {
		return nil, err
	}
	var id [8]byte
	_, _ = crand.Read(id[:])
	b := &Bridge{cfg: cfg, src: src, sink: sink, origin: hex.EncodeToString(id[:]), connected: make(chan struct{})}
	close(b.connected)
	if cfg.StateFile != "" && cfg.Direction&In != 0 {
		st, err := openState(cfg.StateFile)
		if err != nil {
			return nil, err
		}
		b.state = st
	}
	nc, err := nats.Connect(strings.Join(cfg.URLs, ","), b.natsOptions()...)
	if err != nil {
		if b.state != nil {
			_ = b.state.close()
		}
		return nil, fmt.Errorf("%w: %s: %w", ErrConnect, strings.Join(cfg.URLs, ","), err)
	}
	b.nc = nc
	return b, nil
}

func (b *Bridge) natsOptions() []nats.Option {
	cfg := b.cfg
	opts := []nats.Option{
		nats.Name("shmkit-bridge " + cfg.Channel + " " + cfg.Direction.String()),
		nats.MaxReconnects(-1),
		nats.ReconnectBufSize(cfg.ReconnectBuffer),
		nats.CustomReconnectDelay(func(attempts int) time.Duration {
			d := cfg.ReconnectWait
			for i := 1; i < attempts && d < cfg.MaxReconnectWait; i++ {
				d *= 2
			}
			d = min(d, cfg.MaxReconnectWait)
			return d/2 + rand.N(d/2+1) // jitter: [d/2, d]
		}),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if nc.IsClosed() {
				return // our own Close
			}
			b.c.disconnects.Add(1)
			b.connMu.Lock()
			select {
			case <-b.connected:
				b.connected = make(chan struct{})
			default:
			}
			b.connMu.Unlock()
			b.cfg.Logger.Warn("bridge: disconnected", "channel", cfg.Channel, "err", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			b.c.reconnects.Add(1)
			b.setConnected()
			b.cfg.Logger.Info("bridge: reconnected", "channel", cfg.Channel, "url", nc.ConnectedUrlRedacted())
		}),
		nats.ClosedHandler(func(*nats.Conn) { b.setConnected() }), // wake waiters; they see the closed conn
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrSlowConsumer) {
				return // counted from the subscription's Dropped
			}
			b.noteErr(err)
		}),
	}
	if cfg.Direction == Both {
		// The server does not send this connection's own publishes back.
		opts = append(opts, nats.NoEcho())
	}
	if cfg.TLSCert != "" {
		opts = append(opts, nats.ClientCert(cfg.TLSCert, cfg.TLSKey))
	}
	if cfg.TLSCA != "" {
		opts = append(opts, nats.RootCAs(cfg.TLSCA))
	}
	if cfg.Creds != "" {
		opts = append(opts, nats.UserCredentials(cfg.Creds))
	}
	return append(opts, cfg.NATSOptions...)
}

func (b *Bridge) setConnected() {
	b.connMu.Lock()
	select {
	case <-b.connected:
	default:
		close(b.connected)
	}
	b.connMu.Unlock()
}

// waitConnected returns once the connection is up (or closed), or ctx ends.
func (b *Bridge) waitConnected(ctx context.Context) error {
	for {
		if b.nc.IsConnected() || b.nc.IsClosed() {
			return nil
		}
		b.connMu.Lock()
		ch := b.connected
		b.connMu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (b *Bridge) noteErr(err error) {
	b.c.errors.Add(1)
	s := err.Error()
	b.c.lastErr.Store(&s)
	b.cfg.Logger.Warn("bridge: error", "channel", b.cfg.Channel, "err", err)
}

// Origin is this bridge's id, sent in every outgoing message's Shmkit
// header (a fresh random value per New).
func (b *Bridge) Origin() string { return b.origin }

// Config returns the configuration with defaults filled in.
func (b *Bridge) Config() Config { return b.cfg }

// Run moves messages until ctx ends (it then returns nil), or a side fails
// for good (a Source or Sink error other than the counted ones, or the
// connection closed). With ExitWhenIdle and Direction Out it returns nil
// once the source has no publishers left and everything was flushed.
func (b *Bridge) Run(ctx context.Context) error {
	b.closeMu.Lock()
	if b.closed {
		b.closeMu.Unlock()
		return ErrClosed
	}
	b.closeMu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	run := func(i int, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil {
				errs[i] = err
				cancel()
			}
		}()
	}
	if b.cfg.Direction&In != 0 {
		run(1, b.runIn)
	}
	if b.cfg.Direction&Out != 0 {
		if b.cfg.Direction == Out && b.cfg.ExitWhenIdle {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[0] = b.runOut(ctx)
				cancel()
			}()
		} else {
			run(0, b.runOut)
		}
	}
	stopStats := b.writeStats()
	wg.Wait()
	stopStats()
	return errors.Join(errs...)
}

// RelayEvery is how often Run hands the bridge's counters to a Source or
// Sink that is a StatsWriter.
const RelayEvery = 100 * time.Millisecond

// writeStats starts handing Stats to the source and sink that are
// StatsWriters, every RelayEvery; the returned stop hands them the final
// figures once more and returns after that.
func (b *Bridge) writeStats() (stop func()) {
	var ws []StatsWriter
	if w, ok := b.src.(StatsWriter); ok && b.cfg.Direction&Out != 0 {
		ws = append(ws, w)
	}
	if w, ok := b.sink.(StatsWriter); ok && b.cfg.Direction&In != 0 {
		ws = append(ws, w)
	}
	if len(ws) == 0 {
		return func() {}
	}
	write := func() {
		s := b.Stats()
		for _, w := range ws {
			_ = w.WriteStats(s) // the participant may have left: nothing to show then
		}
	}
	write()
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(RelayEvery)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				write()
			case <-quit:
				write()
				return
			}
		}
	}()
	return func() { close(quit); <-done }
}

// Stats returns the bridge's counters.
func (b *Bridge) Stats() Stats {
	s := Stats{
		OutMsgs: b.c.outMsgs.Load(), OutBytes: b.c.outBytes.Load(), OutDrops: b.c.outDrops.Load(),
		OutMissed: b.c.outMissed.Load(), OutLooped: b.c.outLooped.Load(), OutFrames: b.c.outFrames.Load(),
		OutFlowWaits: b.c.outFlowWaits.Load(), OutFlowWait: time.Duration(b.c.outFlowWaitNs.Load()),
		InMsgs: b.c.inMsgs.Load(), InBytes: b.c.inBytes.Load(), InDrops: b.c.inDrops.Load(),
		InSlow: b.c.inSlow.Load(), InLost: b.c.inLost.Load(), InDuplicates: b.c.inDup.Load(),
		InEcho: b.c.inEcho.Load(), InPending: b.c.inPending.Load(),
		Reconnects: b.c.reconnects.Load(), Disconnects: b.c.disconnects.Load(),
		FlushRTT: time.Duration(b.c.flushRTT.Load()), Errors: b.c.errors.Load(),
	}
	if sub := b.inSub.Load(); sub != nil {
		if n, err := sub.Dropped(); err == nil {
			s.InSlow = uint64(n)
		}
		if n, _, err := sub.Pending(); err == nil {
			s.InPending = uint64(n)
		}
	}
	if b.cfg.Stream != "" {
		s.OutUnflushed = b.c.outUnflushed.Load()
	} else if c := b.c.outConfirmed.Load(); c < s.OutMsgs {
		s.OutUnflushed = s.OutMsgs - c
	}
	if p := b.c.lastErr.Load(); p != nil {
		s.LastError = *p
	}
	return s
}

// Close closes the NATS connection (flushing what it buffered, for at most
// FlushTimeout) and the state file. Run returns soon after. Idempotent.
func (b *Bridge) Close() error {
	b.closeMu.Lock()
	defer b.closeMu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	var errs []error
	if b.nc.IsConnected() {
		if err := b.nc.FlushTimeout(b.cfg.FlushTimeout); err != nil {
			errs = append(errs, fmt.Errorf("%w: final flush: %w", ErrClosed, err))
		}
	}
	b.nc.Close()
	if b.state != nil {
		errs = append(errs, b.state.close())
	}
	return errors.Join(errs...)
}
