package bridge

import "context"

// Message is one message received from a local channel. Its Bytes stay
// valid until Release; the bridge releases every message it receives,
// once, after it no longer needs the bytes. *shmkit.Sample satisfies it.
type Message interface {
	// Bytes returns the payload (read only).
	Bytes() []byte
	// Publisher identifies the message's local publisher (its participant
	// slot); Seq is that publisher's sequence number, 1, 2, ... A slot
	// reused by a new publisher starts again at 1.
	Publisher() int
	Seq() uint64
	// Missed is how many messages the bridge's subscription lost to the
	// channel's policy between the previous message and this one.
	Missed() uint64
	// Release gives the message back to the channel.
	Release() error
}

// Source is the local channel as the out side sees it: a subscription.
type Source interface {
	// Receive waits for the next message until ctx ends. It returns an
	// error wrapping ErrNoPublishers when every publisher has left and
	// everything was received; any other error stops the out side.
	Receive(ctx context.Context) (Message, error)
}

// TryReceiver is an optional method of a Source: the next message if one
// is ready, (nil, nil) when none is. With Config.Batch the out side uses it
// to pack the messages already waiting into one NATS message (unless the
// Source is a BatchReceiver it can use).
type TryReceiver interface {
	TryReceive() (Message, error)
}

// Info describes one message a BatchReceiver copied out: its length
// (more than its buffer's when it was truncated), and the Publisher, Seq
// and Missed that a Message would report.
type Info struct {
	Len       int
	Publisher int
	Seq       uint64
	Missed    uint64
}

// BatchReceiver is an optional method of a Source, which the out side
// prefers to Receive and TryReceive when Config.Batch is above 1.
// ReceiveBatch waits as Receive does (until ctx ends; an error wrapping
// ErrNoPublishers when every publisher has left and everything was
// received) until at least one message is ready, then copies up to
// len(bufs) of the messages that are ready, message i into bufs[i]
// (truncated to it) and its Info into infos[i], and returns how many. The
// messages are consumed: nothing stays held. MaxMessage is the largest
// message the source delivers: the out side passes Batch buffers of
// MaxMessage bytes (at most the server's max_payload), and uses
// TryReceive instead when that would take more than 4 MiB or MaxMessage
// is 0 (unknown).
type BatchReceiver interface {
	ReceiveBatch(ctx context.Context, bufs [][]byte, infos []Info) (int, error)
	MaxMessage() int
}

// Sink is the local channel as the in side sees it: a publisher.
type Sink interface {
	// Publish puts one message of len(p) bytes into the channel (through a
	// zero-copy loan where the channel has one: p is copied once, into the
	// channel's memory). It applies the channel's overflow policy: with
	// Block it waits until ctx ends; when the policy drops the message it
	// returns an error wrapping ErrDropped; a message over MaxMessage is
	// an error wrapping ErrTooLarge. Any other error stops the in side.
	Publish(ctx context.Context, p []byte) error
	// MaxMessage is the channel's largest message in bytes.
	MaxMessage() int
	// PublisherID is the Publisher() that messages published through this
	// sink carry when the same process receives them from the channel:
	// with Direction Both the out side skips them (no loop). ok is false
	// while it is not known yet.
	PublisherID() (id int, ok bool)
}

// BatchSink is an optional method of a Sink: PublishBatch puts msgs into
// the channel in order, as Publish would one by one (the channel's policy
// applies to each message), and returns how many it published. On success
// it returns len(msgs), nil. An error wrapping ErrDropped or ErrTooLarge
// means msgs[n] was dropped (the bridge counts it) and msgs[n+1:] were not
// tried: the bridge goes on with them. Any other error stops the in side.
// The in side hands it the messages of each batch frame it receives (see
// Config.Batch), except with a StateFile, where it publishes one message
// at a time so that the file is written after each (a kill repeats at
// most one message). msgs and its slices are valid only during the call.
type BatchSink interface {
	PublishBatch(ctx context.Context, msgs [][]byte) (int, error)
}

// StatsWriter is an optional method of a Source or a Sink: while Run runs
// it hands the bridge's counters to WriteStats every RelayEvery and once
// more when it returns, so the local channel can show the far side's
// figures beside its own (ShmkitSource and ShmkitSink write them into
// their participant's relay block, which shmctl stat and metrics read).
// An error is not fatal: Run goes on and tries again next time.
type StatsWriter interface {
	WriteStats(Stats) error
}
