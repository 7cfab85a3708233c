// Command pubsub runs a publisher and two subscriber processes on one
// shmkit channel: the publisher process creates the channel, starts two
// copies of itself as subscribers, waits until both have joined, publishes
// 10000 messages zero-copy and leaves; each subscriber receives every
// message, checks it, and stops at ErrPeerGone. The last participant to
// leave removes the channel from /dev/shm.
//
//	go run ./examples/pubsub
package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"time"

	"github.com/shmkit/shmkit"
)

const roleEnv = "SHMKIT_EXAMPLE_ROLE"

func main() { os.Exit(run()) }

func run() int {
	var err error
	if os.Getenv(roleEnv) == "subscriber" {
		err = subscriber(os.Getenv("SHMKIT_EXAMPLE_CHANNEL"))
	} else {
		err = publisher()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

const messages = 10000

func publisher() error {
	name := fmt.Sprintf("example-pubsub-%d", os.Getpid())
	ch, err := shmkit.Create(name, shmkit.Config{MaxMessage: 1024, RingDepth: 256})
	if err != nil {
		return err
	}
	defer ch.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	var subs []*exec.Cmd
	for range 2 {
		exe, _ := os.Executable()
		cmd := exec.CommandContext(ctx, exe)
		cmd.Env = append(os.Environ(), roleEnv+"=subscriber", "SHMKIT_EXAMPLE_CHANNEL="+name)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Start(); err != nil {
			return err
		}
		subs = append(subs, cmd)
	}
	// Wait until both subscribers have joined: a late joiner only sees
	// what is published after it joined.
	if err := ch.WaitFor(ctx, shmkit.RoleSubscriber, 2); err != nil {
		return err
	}

	pub, err := ch.Publisher()
	if err != nil {
		return err
	}
	for i := range messages {
		s, err := pub.LoanContext(ctx, 8+i%1000) // the payload lives in shared memory
		if err != nil {
			return err
		}
		b := s.Bytes()
		binary.LittleEndian.PutUint64(b, uint64(i))
		for j := 8; j < len(b); j++ {
			b[j] = byte(i + j)
		}
		if err := pub.Publish(ctx, s); err != nil {
			return err
		}
	}
	pub.Close() // subscribers drain, then get ErrPeerGone
	for _, c := range subs {
		if err := c.Wait(); err != nil {
			return fmt.Errorf("subscriber: %w", err)
		}
	}
	fmt.Printf("published %d messages to 2 subscribers\n", messages)
	return nil
}

func subscriber(name string) error {
	ch, err := shmkit.Open(name)
	if err != nil {
		return err
	}
	defer ch.Close()
	sub, err := ch.Subscriber()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n := 0
	for {
		s, err := sub.Receive(ctx)
		if errors.Is(err, shmkit.ErrPeerGone) {
			break
		}
		if err != nil {
			return err
		}
		b := s.Bytes() // in shared memory, valid until Release
		i := int(binary.LittleEndian.Uint64(b))
		if i != n || len(b) != 8+i%1000 {
			return fmt.Errorf("message %d: got number %d, %d bytes", n, i, len(b))
		}
		for j := 8; j < len(b); j++ {
			if b[j] != byte(i+j) {
				return fmt.Errorf("message %d: byte %d wrong", i, j)
			}
		}
		s.Release()
		n++
	}
	fmt.Printf("subscriber %d: received and checked %d messages\n", os.Getpid(), n)
	if n != messages {
		return fmt.Errorf("received %d messages, want %d", n, messages)
	}
	return nil
}
