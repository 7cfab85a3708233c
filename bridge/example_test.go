package bridge_test

import (
	"context"
	"log"
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
