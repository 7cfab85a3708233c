// Command frames is a Go publisher of fixed-size frames for the Python
// subscriber beside it (examples/python/frames_subscriber.py): a video or
// sensor pipeline handing its output to a numpy/PyTorch process without a
// copy. It creates the channel, waits until the subscribers have joined,
// writes each frame in place in shared memory (a loan) and publishes it,
// then leaves; the subscribers see PeerGone after the last frame.
//
//	go run ./examples/python/frames -name frames -count 1000 &
//	SHMKIT_LIB=$PWD/libshmkit.so python3 examples/python/frames_subscriber.py frames
//
// Each frame starts and ends with its number (uint64, little endian); a
// real producer writes its pixels between them, in place. With -size 64
// the same program publishes small messages (the bindings' benchmarks).
package main

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/shmkit/shmkit"
	"github.com/shmkit/shmkit/futex"
)

func main() {
	name := flag.String("name", "frames", "channel name")
	count := flag.Int("count", 1000, "frames to publish")
	size := flag.Int("size", 1<<20, "frame size in bytes (at least 16)")
	subs := flag.Int("subscribers", 1, "subscribers to wait for before publishing")
	depth := flag.Int("depth", 8, "frames each subscriber's ring holds")
	wait := flag.Duration("wait", time.Minute, "how long to wait for the subscribers")
	park := flag.Bool("park", false, "sleep at once when the subscribers are behind (default: spin briefly first)")
	flag.Parse()
	var opts []shmkit.Option
	if *park {
		opts = append(opts, shmkit.WithWaiter(futex.Waiter{Strategy: futex.Park}))
	}
	if err := run(*name, *count, *size, *subs, *depth, *wait, opts...); err != nil {
		fmt.Fprintln(os.Stderr, "frames:", err)
		os.Exit(1)
	}
}

func run(name string, count, size, subs, depth int, wait time.Duration, opts ...shmkit.Option) error {
	if size < 16 {
		return fmt.Errorf("-size %d: a frame holds its number at both ends (16 bytes at least)", size)
	}
	ch, err := shmkit.Create(name, shmkit.Config{MaxMessage: size, RingDepth: depth, ChunksPerClass: 2*depth*max(subs, 1) + 2}, opts...)
	if err != nil {
		return err
	}
	defer ch.Close() // the last participant to leave removes the name
	// A subscriber sees what is published after it joined: wait for them.
	end := time.Now().Add(wait)
	for {
		st, err := ch.Stats()
		if err != nil {
			return err
		}
		if st.Count("subscriber") >= subs {
			break
		}
		if time.Now().After(end) {
			return fmt.Errorf("%d of %d subscribers joined within %v", st.Count("subscriber"), subs, wait)
		}
		time.Sleep(time.Millisecond)
	}
	pub, err := ch.Publisher()
	if err != nil {
		return err
	}
	ctx := context.Background()
	start := time.Now()
	for i := range count {
		s, err := pub.LoanContext(ctx, size) // waits while every chunk is in use
		if err != nil {
			return err
		}
		b := s.Bytes() // the frame, in shared memory
		binary.LittleEndian.PutUint64(b, uint64(i))
		binary.LittleEndian.PutUint64(b[size-8:], uint64(i))
		if err := pub.Publish(ctx, s); err != nil {
			return err
		}
	}
	el := time.Since(start)
	if err := pub.Close(); err != nil { // subscribers drain, then see PeerGone
		return err
	}
	fmt.Printf("published %d frames of %d bytes in %v (%.0f frames/s)\n", count, size, el.Round(time.Millisecond), float64(count)/el.Seconds())
	// Stay until the subscribers have left, so the channel outlives the
	// frames they still hold.
	for {
		st, err := ch.Stats()
		if err != nil || st.Count("subscriber") == 0 || time.Now().After(end.Add(wait)) {
			return err
		}
		time.Sleep(time.Millisecond)
	}
}
