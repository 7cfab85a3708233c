package main

import (
	"fmt"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/shmkit/shmkit/segment"
)

// TestBridgeCreateUnreachable: `bridge --create` against a server nobody
// listens on fails with one line and removes the channel it created.
func TestBridgeCreateUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nobody listens there now
	name := fmt.Sprintf("bct.%d", os.Getpid())
	t.Cleanup(func() { segment.Remove(segment.POSIX, name, nil) })
	_, errOut, code := shmctl(t, "bridge", name, "--direction", "in", "--create", "--server", "nats://"+addr)
	if code == 0 || strings.Count(errOut, "\n") != 1 {
		t.Fatalf("exit %d, stderr %q; want one line and a non-zero exit", code, errOut)
	}
	if exists(segment.POSIX, name) {
		t.Fatalf("bridge --create left the channel %s behind after failing: %s", name, errOut)
	}
}
