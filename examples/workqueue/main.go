// Command workqueue runs two producer and three worker processes on one
// shmkit work queue: every job goes to exactly one worker. The first
// process creates the queue and starts the others; each worker reports the
// jobs it did, and the first process checks that every job was done once.
//
//	go run ./examples/workqueue
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/shmkit/shmkit"
)

const roleEnv = "SHMKIT_EXAMPLE_ROLE"

func main() { os.Exit(run()) }

func run() int {
	var err error
	name := os.Getenv("SHMKIT_EXAMPLE_CHANNEL")
	switch os.Getenv(roleEnv) {
	case "producer":
		err = producer(name)
	case "worker":
		err = worker(name)
	default:
		err = coordinator()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

const jobsPerProducer = 5000

func coordinator() error {
	name := fmt.Sprintf("example-workqueue-%d", os.Getpid())
	ch, err := shmkit.Create(name, shmkit.Config{Pattern: shmkit.WorkQueue, MaxMessage: 64, RingDepth: 128})
	if err != nil {
		return err
	}
	defer ch.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := func(role string) (*exec.Cmd, *strings.Builder, error) {
		exe, _ := os.Executable()
		cmd := exec.CommandContext(ctx, exe)
		cmd.Env = append(os.Environ(), roleEnv+"="+role, "SHMKIT_EXAMPLE_CHANNEL="+name)
		out := &strings.Builder{}
		cmd.Stdout, cmd.Stderr = out, os.Stderr
		return cmd, out, cmd.Start()
	}
	// A producer handle of our own keeps the workers from seeing "every
	// producer gone" before the producer processes have joined.
	hold, err := ch.Producer()
	if err != nil {
		return err
	}
	var workers, producers []*exec.Cmd
	var outs []*strings.Builder
	for range 3 {
		c, out, err := start("worker")
		if err != nil {
			return err
		}
		workers, outs = append(workers, c), append(outs, out)
	}
	for range 2 {
		c, _, err := start("producer")
		if err != nil {
			return err
		}
		producers = append(producers, c)
	}
	for _, c := range producers {
		if err := c.Wait(); err != nil {
			return fmt.Errorf("producer: %w", err)
		}
	}
	hold.Close()
	done := map[string]int{}
	for i, c := range workers {
		if err := c.Wait(); err != nil {
			return fmt.Errorf("worker: %w", err)
		}
		jobs := strings.Fields(outs[i].String())
		fmt.Printf("worker %d did %d jobs\n", i, len(jobs))
		for _, j := range jobs {
			done[j]++
		}
	}
	for j, n := range done {
		if n != 1 {
			return fmt.Errorf("job %s done %d times", j, n)
		}
	}
	if len(done) != 2*jobsPerProducer {
		return fmt.Errorf("%d jobs done, want %d", len(done), 2*jobsPerProducer)
	}
	fmt.Printf("all %d jobs done exactly once\n", len(done))
	return nil
}

func producer(name string) error {
	ch, err := shmkit.Open(name)
	if err != nil {
		return err
	}
	defer ch.Close()
	p, err := ch.Producer()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := range jobsPerProducer {
		if err := p.Send(ctx, fmt.Appendf(nil, "%d/%d", os.Getpid(), i)); err != nil {
			return err
		}
	}
	return nil
}

func worker(name string) error {
	ch, err := shmkit.Open(name)
	if err != nil {
		return err
	}
	defer ch.Close()
	c, err := ch.Consumer()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	buf := make([]byte, 64)
	for {
		n, err := c.ReceiveInto(ctx, buf)
		if errors.Is(err, shmkit.ErrPeerGone) {
			return nil
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "%s\n", buf[:n])
	}
}
