package bridge_test

import (
	"bufio"
	"context"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/shmkit/shmkit"
	"github.com/shmkit/shmkit/bridge"
)

// Sending a channel's messages to other hosts: join the channel as a
// subscriber, publish everything to the subject shmkit.orders until
// interrupted. The far host runs the same with bridge.In.
func ExampleNew() {
	ch, err := shmkit.Open("orders")
	if err != nil {
		log.Fatal(err)
	}
	defer ch.Close()
	src, sink, leave, err := bridge.JoinShmkit(ch, bridge.Out)
	if err != nil {
		log.Fatal(err)
	}
	defer leave()
	b, err := bridge.New(bridge.Config{
		URLs:      []string{"nats://nats.example:4222"},
		Channel:   "orders",
		Direction: bridge.Out,
	}, src, sink)
	if err != nil {
		log.Fatal(err) // bridge.ErrConnect: unreachable, TLS or credentials
	}
	defer b.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := b.Run(ctx); err != nil {
		log.Print(err)
	}
	s := b.Stats()
	log.Printf("sent %d messages (%d bytes), %d dropped, %d missed", s.OutMsgs, s.OutBytes, s.OutDrops, s.OutMissed)
}

// At-least-once into this host's channel: a JetStream stream and a durable
// consumer acked after each local publish; the state file skips what a
// restart redelivers.
func ExampleConfig_jetStream() {
	ch, err := shmkit.Create("orders", shmkit.Config{MaxMessage: 64 << 10})
	if err != nil {
		log.Fatal(err)
	}
	defer ch.Close()
	src, sink, leave, err := bridge.JoinShmkit(ch, bridge.In)
	if err != nil {
		log.Fatal(err)
	}
	defer leave()
	b, err := bridge.New(bridge.Config{
		URLs:      []string{"tls://nats.example:4222"},
		Channel:   "orders",
		Direction: bridge.In,
		Stream:    "ORDERS",
		Durable:   "host-b",
		StateFile: "/var/lib/shmkit/orders.state",
		TLSCA:     "ca.pem",
		Creds:     "host-b.creds",
	}, src, sink)
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	_ = b.Run(context.Background())
}

// lineSink is a Sink of one's own: it writes each message as a line to a
// buffered writer. With PublishBatch (BatchSink) the in side hands it a
// batch frame's messages at once, and it flushes once per frame.
type lineSink struct{ w *bufio.Writer }

func (s lineSink) Publish(ctx context.Context, p []byte) error {
	_, err := s.PublishBatch(ctx, [][]byte{p})
	return err
}

func (s lineSink) PublishBatch(_ context.Context, msgs [][]byte) (int, error) {
	for i, m := range msgs {
		if _, err := fmt.Fprintf(s.w, "%q\n", m); err != nil {
			return i, err
		}
	}
	return len(msgs), s.w.Flush()
}

func (s lineSink) MaxMessage() int          { return 1 << 20 }
func (s lineSink) PublisherID() (int, bool) { return 0, false }

// Bridging a subject into something that is not a channel: a Sink of one's
// own, here lines on standard output. BatchSink is optional; TryReceiver
// and BatchReceiver are the Source's counterparts.
func ExampleBatchSink() {
	var sink bridge.Sink = lineSink{bufio.NewWriter(os.Stdout)}
	b, err := bridge.New(bridge.Config{URLs: []string{"nats://nats.example:4222"}, Channel: "orders", Direction: bridge.In}, nil, sink)
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	_ = b.Run(context.Background())
}
