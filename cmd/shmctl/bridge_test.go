package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/shmkit/shmkit"
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

// TestBridgeDefaultsLoseNothing (issue 18): `shmctl bridge` with default
// flags, out of one channel and into another through a NATS server started
// here (embedded, as the bridge tests use), each bridge its own process:
// 200 000 messages from `shmctl pub` arrive at a subscriber of the second
// channel, every one in order, and both bridges report no loss.
// SHMKIT_BRIDGE_CLI_MSGS sets the count.
func TestBridgeDefaultsLoseNothing(t *testing.T) {
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(20 * time.Second) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	n := 200_000
	if v, err := strconv.Atoi(os.Getenv("SHMKIT_BRIDGE_CLI_MSGS")); err == nil && v > 0 {
		n = v
	}
	a, b := chanName(t, "bra"), chanName(t, "brb")
	mustShmctl(t, "create", "--channel", a)
	mustShmctl(t, "create", "--channel", b)
	ch, err := shmkit.Open(b)
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	sub, err := ch.Subscriber()
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()

	subject := "shmkit.clidefaults"
	// SHMKIT_BRIDGE_CLI_FLAGS adds flags to both bridges, to measure what
	// the defaults do (docs/bridge.md); the test runs the defaults.
	extra := strings.Fields(os.Getenv("SHMKIT_BRIDGE_CLI_FLAGS"))
	in := startShmctl(t, append([]string{"bridge", b, "--direction", "in", "--subject", subject, "--server", srv.ClientURL(), "--stats-every", "0"}, extra...)...)
	deadline := time.Now().Add(30 * time.Second)
	for srv.GlobalAccount().Interest(subject) == 0 { // core NATS drops what nobody subscribed to yet
		if time.Now().After(deadline) {
			t.Fatalf("the in bridge never subscribed: %s", in.stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	out := startShmctl(t, append([]string{"bridge", a, "--direction", "out", "--subject", subject, "--server", srv.ClientURL(), "--stats-every", "0"}, extra...)...)
	start := time.Now()
	pub := startShmctl(t, "pub", a, "--count", strconv.Itoa(n), "--size", "64", "--wait-subscribers", "1", "--timeout", "100s")

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Second)
	defer cancel()
	buf := make([]byte, 256)
	for i := 1; i <= n; i++ {
		k, err := sub.ReceiveInto(ctx, buf)
		if err != nil {
			t.Fatalf("after %d of %d: %v\nout: %s\nin: %s", i-1, n, err, out.stderr.String(), in.stderr.String())
		}
		if k != 64 || binary.LittleEndian.Uint64(buf) != uint64(i) {
			t.Fatalf("message %d: %d bytes, number %d", i, k, binary.LittleEndian.Uint64(buf))
		}
	}
	took := time.Since(start)
	pub.wait(t)
	for _, p := range []*bg{out, in} {
		p.cmd.Process.Signal(os.Interrupt)
		if err := p.cmd.Wait(); err != nil {
			t.Fatalf("bridge %v: %v\n%s", p.cmd.Args[1:], err, p.stderr.String())
		}
	}
	outLast, inLast := lastLine(out.stderr.String()), lastLine(in.stderr.String())
	t.Logf("%d messages in %v (machine shared)\nout: %s\nin:  %s", n, took, outLast, inLast)
	if !strings.Contains(outLast, fmt.Sprintf("out %d msgs", n)) || !strings.Contains(inLast, fmt.Sprintf("in %d msgs", n)) {
		t.Errorf("the bridges' final counters do not show %d messages each way", n)
	}
	for _, l := range []string{outLast, inLast} {
		for _, m := range lossRe.FindAllStringSubmatch(l, -1) {
			if m[2] != "0" {
				t.Errorf("%s %s counted: %s", m[1], m[2], l)
			}
		}
	}
}

// lossRe finds the loss counters of a bridge's stats line.
var lossRe = regexp.MustCompile(`\b(drops|missed|slow|lost) (\d+)`)

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	return s[strings.LastIndexByte(s, '\n')+1:]
}
