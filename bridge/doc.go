// Package bridge extends a local shmkit channel to other hosts over NATS.
//
// A Bridge moves messages between one local channel and one NATS subject
// (default "shmkit.<channel>"):
//
//   - Out: it subscribes to the channel (a Source) and publishes each
//     message to the subject, through the client's buffered asynchronous
//     publishing confirmed by a flush every Config.FlushEvery messages or
//     Config.FlushInterval (core NATS), or through JetStream's
//     PublishMsgAsync with at most Config.MaxPending unacknowledged.
//   - In: it subscribes to the subject (core NATS) or reads a JetStream
//     stream through a durable pull consumer, and publishes each message
//     into the channel (a Sink), acking a JetStream message only after the
//     local publish returned: at-least-once across a bridge restart.
//   - Both: the two at once, without loops: the connection does not
//     receive its own publishes (NoEcho), a message carrying this bridge's
//     origin is ignored, and the out side skips what the in side's
//     publisher put into the channel.
//
// Every outgoing message carries one header, Shmkit (see Header and Meta):
// the channel, the sending bridge, the local publisher and its epoch, and
// that publisher's sequence. The
// in side follows each origin publisher's sequence and counts every gap as
// lost (Stats.InLost): loss is reported, never hidden. With a StateFile it
// also knows where it stopped before a restart.
//
// Memory stays bounded: the out side stops receiving while the server is
// slow (a blocked write or a flush) or unreachable, so the channel's own
// overflow policy blocks its publishers or drops (and counts) for the
// bridge's subscription; only what was in flight at a disconnect waits in
// the client's reconnect buffer (Config.ReconnectBuffer), and a publish
// that finds it full is a counted drop. The in side lets at most
// Config.MaxPending messages wait in the client (core NATS: beyond that
// the client drops and counts them, Stats.InSlow; JetStream: the consumer's
// MaxAckPending holds the rest on the server).
//
// The defaults lose nothing on a healthy network: the out side packs the
// messages already waiting into one NATS message (Config.Batch, default
// DefaultBatch), and over core NATS the bridges give each other credit
// (flow control, see FlowHeader): an out side waits while an in side it
// has heard from has more than half its pending limits outstanding.
// Core NATS still loses what is published while no in side is subscribed
// and what a server or connection going down holds; JetStream
// (Config.Stream) is the lossless mode.
//
// The bridge sees the channel only through the small Source and Sink
// interfaces (local.go) and their optional batch methods (TryReceiver,
// BatchReceiver, BatchSink); shmkit.go adapts a shmkit channel to them
// (JoinShmkit, ShmkitSource, ShmkitSink: a frame's messages go into the
// channel with one Publisher.SendBatch), and tests use an in-memory one.
package bridge
