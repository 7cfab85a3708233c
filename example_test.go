package shmkit_test

import (
	"context"
	"fmt"
	"os"

	"github.com/shmkit/shmkit"
)

// Create a channel, join it as publisher and subscriber, and move one
// message without copying it. In real use the subscriber is another
// process that calls shmkit.Open(name).
func Example() {
	name := fmt.Sprintf("example-%d", os.Getpid())
	ch, err := shmkit.Create(name, shmkit.Config{MaxMessage: 1024})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ch.Close() // the last participant to leave removes the name

	sub, _ := ch.Subscriber() // before publishing: a late joiner sees only later messages
	pub, _ := ch.Publisher()
	ctx := context.Background()

	s, _ := pub.Loan(5) // five bytes in shared memory
	copy(s.Bytes(), "hello")
	if err := pub.Publish(ctx, s); err != nil {
		fmt.Println(err)
		return
	}

	m, err := sub.Receive(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s (message %d)\n", m.Bytes(), m.Seq()) // valid until Release
	m.Release()
	// Output: hello (message 1)
}

// Open joins a channel another process created, checking that it is what
// this program expects.
func ExampleOpen() {
	name := fmt.Sprintf("example-open-%d", os.Getpid())
	owner, _ := shmkit.Create(name, shmkit.Config{Pattern: shmkit.WorkQueue, MaxMessage: 64})
	defer owner.Close()

	ch, err := shmkit.Open(name, shmkit.WithExpect(shmkit.Config{Pattern: shmkit.WorkQueue, MaxMessage: 64}))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ch.Close()
	fmt.Println(ch.Config().Pattern, ch.Config().MaxMessage)
	_, err = shmkit.Open(name, shmkit.WithExpect(shmkit.Config{Pattern: shmkit.PubSub}))
	fmt.Println(err != nil)
	// Output:
	// workqueue 64
	// true
}

type Quote struct {
	Seq   uint64
	Bid   float64
	Ask   float64
	Venue [4]byte
}

// Typed samples: a fixed-size, pointer-free struct written and read in
// place in shared memory.
func ExampleLoanAs() {
	name := fmt.Sprintf("example-typed-%d", os.Getpid())
	ch, _ := shmkit.Create(name, shmkit.Config{MaxMessage: 64})
	defer ch.Close()
	sub, _ := ch.Subscriber()
	pub, _ := ch.Publisher()
	ctx := context.Background()

	s, q, err := shmkit.LoanAs[Quote](ctx, pub)
	if err != nil {
		fmt.Println(err)
		return
	}
	*q = Quote{Seq: 1, Bid: 99.5, Ask: 100.5, Venue: [4]byte{'X', 'N', 'Y', 'S'}}
	pub.Publish(ctx, s)

	m, got, err := shmkit.ReceiveAs[Quote](ctx, sub)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s %.1f/%.1f\n", got.Venue[:], got.Bid, got.Ask)
	m.Release()
	// Output: XNYS 99.5/100.5
}

// A private channel: a memfd named nowhere, handed to admitted processes
// over a Unix socket. Dial is what the other process calls.
func ExampleListen() {
	addr := fmt.Sprintf("@example-private-%d", os.Getpid())
	srv, err := shmkit.Listen(addr, shmkit.Config{MaxMessage: 64}, shmkit.Access{UIDs: []int{os.Getuid()}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()

	peer, err := shmkit.Dial(addr) // normally in another process
	if err != nil {
		fmt.Println(err)
		return
	}
	defer peer.Close()
	sub, _ := peer.Subscriber()
	pub, _ := srv.Channel.Publisher()
	pub.Send(context.Background(), []byte("private"))
	buf := make([]byte, 64)
	n, _ := sub.ReceiveInto(context.Background(), buf)
	fmt.Println(string(buf[:n]))
	// Output: private
}

// A service that may start first, or restart after a crash, joins its
// channel or creates it; the publisher waits until its subscriber has
// joined instead of polling.
func ExampleOpenOrCreate() {
	name := fmt.Sprintf("example-ooc-%d", os.Getpid())
	ch, err := shmkit.OpenOrCreate(name, shmkit.Config{MaxMessage: 256})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ch.Close()
	ctx := context.Background()

	// The subscriber: in real use another process's OpenOrCreate.
	other, err := shmkit.OpenOrCreate(name, shmkit.Config{MaxMessage: 256})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer other.Close()
	sub, _ := other.Subscriber()

	pub, _ := ch.Publisher()
	if err := ch.WaitFor(ctx, shmkit.RoleSubscriber, 1); err != nil {
		fmt.Println(err)
		return
	}
	_ = pub.Send(ctx, []byte("hello"))
	m, _ := sub.Receive(ctx)
	fmt.Printf("%s\n", m.Bytes())
	m.Release()
	// Output: hello
}
