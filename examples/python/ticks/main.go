// Command ticks is a Go subscriber of the 64-byte ticks a Python program
// publishes (examples/python/ticks_publisher.py), or of any publisher of
// numbered messages (examples/python/frames -size 64, examples/c/publisher.c):
// it opens the channel once it exists, receives zero copy until every
// publisher has left, checks that the messages are numbered 0, 1, 2, ...
// (uint64 little endian at the start) and prints the rate.
//
//	SHMKIT_LIB=$PWD/libshmkit.so python3 examples/python/ticks_publisher.py ticks 100000 &
//	go run ./examples/python/ticks -name ticks
package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/shmkit/shmkit"
)

func main() {
	name := flag.String("name", "ticks", "channel name")
	want := flag.Int("count", -1, "messages expected (-1: any number)")
	flag.Parse()
	if err := run(*name, *want); err != nil {
		fmt.Fprintln(os.Stderr, "ticks:", err)
		os.Exit(1)
	}
}

func run(name string, want int) error {
	ch, err := openWhenThere(name, time.Minute)
	if err != nil {
		return err
	}
	defer ch.Close()
	sub, err := ch.Subscriber()
	if err != nil {
		return err
	}
	ctx := context.Background()
	n := 0
	var start time.Time
	for {
		s, err := sub.Receive(ctx)
		if errors.Is(err, shmkit.ErrPeerGone) {
			break
		}
		if err != nil {
			return err
		}
		if n == 0 {
			start = time.Now()
		}
		b := s.Bytes() // shared memory, valid until Release
		if len(b) < 8 || binary.LittleEndian.Uint64(b) != uint64(n) {
			return fmt.Errorf("message %d: %d bytes, numbered %v", n, len(b), b[:min(8, len(b))])
		}
		s.Release()
		n++
	}
	if want >= 0 && n != want {
		return fmt.Errorf("received %d messages, want %d", n, want)
	}
	rate := 0.0
	if el := time.Since(start); n > 1 {
		rate = float64(n-1) / el.Seconds()
	}
	fmt.Printf("received %d messages, %.0f msgs/s\n", n, rate)
	return nil
}

// openWhenThere opens the channel, waiting for its creator.
func openWhenThere(name string, wait time.Duration) (*shmkit.Channel, error) {
	end := time.Now().Add(wait)
	for {
		ch, err := shmkit.Open(name)
		if err == nil || !errors.Is(err, shmkit.ErrNotExist) || time.Now().After(end) {
			return ch, err
		}
		time.Sleep(5 * time.Millisecond)
	}
}
