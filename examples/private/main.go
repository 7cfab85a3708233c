// Command private runs a private channel: the owner creates it in a sealed
// memfd that has no name anywhere, listens on an abstract Unix socket,
// admits peers of its own uid (SO_PEERCRED) and hands them the memfd
// (SCM_RIGHTS). A peer process dials, receives three messages through
// shared memory and leaves; nothing is left behind in /dev/shm.
//
//	go run ./examples/private
package main

import (
	"context"
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
	if os.Getenv(roleEnv) == "peer" {
		err = peer(os.Getenv("SHMKIT_EXAMPLE_ADDR"))
	} else {
		err = owner()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func owner() error {
	addr := fmt.Sprintf("@shmkit-example-%d", os.Getpid())
	srv, err := shmkit.Listen(addr, shmkit.Config{MaxMessage: 256}, shmkit.Access{UIDs: []int{os.Getuid()}})
	if err != nil {
		return err
	}
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	exe, _ := os.Executable()
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), roleEnv+"=peer", "SHMKIT_EXAMPLE_ADDR="+addr)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	// Until the peer's subscriber has joined.
	if err := srv.Channel.WaitFor(ctx, shmkit.RoleSubscriber, 1); err != nil {
		return err
	}
	pub, err := srv.Channel.Publisher()
	if err != nil {
		return err
	}
	for _, m := range []string{"one", "two", "three"} {
		if err := pub.Send(ctx, []byte(m)); err != nil {
			return err
		}
	}
	pub.Close()
	return cmd.Wait()
}

func peer(addr string) error {
	ch, err := shmkit.Dial(addr)
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
	for {
		s, err := sub.Receive(ctx)
		if errors.Is(err, shmkit.ErrPeerGone) {
			return nil
		}
		if err != nil {
			return err
		}
		fmt.Printf("peer %d received %q\n", os.Getpid(), s.Bytes())
		s.Release()
	}
}
