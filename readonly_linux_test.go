package shmkit_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/shmkit/shmkit"
	"github.com/shmkit/shmkit/internal/proctest"
)

func init() { extraChildren["rowriter"] = childROWriter }

// childROWriter subscribes, says so on stdout, receives one message and
// writes into its bytes: the write must kill it (SIGSEGV on the read-only
// mapping); getting past it is exit status 3.
func childROWriter() int {
	ch, err := shmkit.Open(env("CH"))
	if err != nil {
		return fail("rowriter: %v", err)
	}
	defer ch.Close()
	s, err := ch.Subscriber()
	if err != nil {
		return fail("rowriter: %v", err)
	}
	os.Stdout.WriteString("joined\n")
	smp, err := s.Receive(childCtx())
	if err != nil {
		return fail("rowriter: %v", err)
	}
	b := smp.Bytes()
	os.Stderr.WriteString("rowriter: writing into the sample\n")
	b[0] = 'X'
	os.Stderr.WriteString("rowriter: the write did not fault\n")
	return 3
}

// TestSubscriberWriteFaults: a subscriber process that writes into a
// received sample's bytes dies of the fault at that write (its payloads
// are a read-only second mapping of the logs), and another subscriber
// gets the message unchanged.
func TestSubscriberWriteFaults(t *testing.T) {
	name := chanName(t)
	ch, err := shmkit.Create(name, shmkit.Config{MaxMessage: 64, RingDepth: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	pub, err := ch.Publisher()
	if err != nil {
		t.Fatal(err)
	}
	sub, err := ch.Subscriber()
	if err != nil {
		t.Fatal(err)
	}
	cmd := proctest.Command(t, "rowriter", "CH="+name)
	var out, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &stderr
	proctest.Start(t, cmd)
	waitFor(t, "the child to subscribe", func() bool { return count(t, ch, shmkit.RoleSubscriber) == 2 })
	ctx := ctxT(t)
	if err := pub.Send(ctx, []byte("read-only payload")); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 3 {
		t.Fatalf("child: %v, want death by the fault (stderr %q)", err, stderr.String())
	}
	se := stderr.String()
	if !strings.Contains(se, "writing into the sample") || !strings.Contains(se, "SIGSEGV") {
		t.Fatalf("child died (%v), but not of a fault at its write: stderr %q", err, se)
	}
	smp, err := sub.Receive(ctx)
	if err != nil || string(smp.Bytes()) != "read-only payload" {
		t.Fatalf("the other subscriber got %q, %v", smp.Bytes(), err)
	}
	if err := smp.Release(); err != nil {
		t.Fatal(err)
	}
}

// TestSubscriberPayloadReadOnly: on every backend, the samples a
// subscriber receives (from a publisher in its own process or through
// another handle) fault when written, while the same process's publisher
// writes its loans and the copying receives work.
func TestSubscriberPayloadReadOnly(t *testing.T) {
	ctx := ctxT(t)
	eachBackend(t, func(t *testing.T, name string, b shmkit.Backend) {
		for _, p := range []shmkit.Policy{shmkit.Block, shmkit.DropOldest} {
			readOnlyRound(t, ctx, name, b, p)
		}
	})
}

// eachBackend runs f as a subtest for every backend, with a name for a
// channel there (a path in a temporary directory for File).
func eachBackend(t *testing.T, f func(t *testing.T, name string, b shmkit.Backend)) {
	for _, b := range []shmkit.Backend{shmkit.POSIX, shmkit.SysV, shmkit.File, shmkit.Memfd} {
		t.Run(b.String(), func(t *testing.T) {
			name := chanName(t)
			if b == shmkit.File {
				name = filepath.Join(t.TempDir(), "chan")
			}
			f(t, name, b)
		})
	}
}

// readOnlyRound is one backend and policy of TestSubscriberPayloadReadOnly;
// its channel is gone when it returns, failed or not.
func readOnlyRound(t *testing.T, ctx context.Context, name string, b shmkit.Backend, p shmkit.Policy) {
	t.Helper()
	ch, err := shmkit.Create(name, shmkit.Config{Backend: b, MaxMessage: 64, RingDepth: 8, Policy: p})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close() // the last participant's Close removes the name
	var peer *shmkit.Channel
	if b == shmkit.Memfd {
		peer, err = shmkit.OpenFile(ch.File())
	} else {
		peer, err = shmkit.Open(name, shmkit.WithBackend(b))
	}
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	pub, err := ch.Publisher()
	if err != nil {
		t.Fatal(err)
	}
	var subs []*shmkit.Subscriber
	for _, c := range []*shmkit.Channel{ch, peer} {
		s, err := c.Subscriber()
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, s)
	}
	for i := range 20 { // more than a lap of each log
		loan, err := pub.Loan(8)
		if err != nil {
			t.Fatal(err)
		}
		copy(loan.Bytes(), "payload!")
		loan.Bytes()[7] = byte('0' + i%10)
		if err := pub.Publish(ctx, loan); err != nil {
			t.Fatal(err)
		}
		want := "payload" + string(rune('0'+i%10))
		for k, s := range subs {
			smp, err := s.Receive(ctx)
			if err != nil || string(smp.Bytes()) != want {
				t.Fatalf("%v %v message %d subscriber %d: %q, %v", b, p, i, k, smp.Bytes(), err)
			}
			if i%7 == 0 && !writeFaults(smp.Bytes()) {
				t.Fatalf("%v %v: writing into a received sample did not fault", b, p)
			}
			if err := smp.Release(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := pub.Send(ctx, []byte("copied")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	for _, s := range subs {
		if n, err := s.ReceiveInto(ctx, buf); err != nil || string(buf[:n]) != "copied" {
			t.Fatalf("ReceiveInto: %q, %v", buf[:n], err)
		}
	}
}

// writeFaults reports whether a write into b faults (the byte is put
// back if it did not).
func writeFaults(b []byte) (faulted bool) {
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			if _, ok := r.(interface{ Addr() uintptr }); !ok {
				panic(r)
			}
			faulted = true
		}
	}()
	v := b[0]
	b[0] = v + 1
	b[0] = v
	return false
}

// BenchmarkChannelOpenClose: Open and Close of a pub/sub channel with the
// default configuration (what the read-only mapping of the logs adds to a
// process's join: docs/benchmarks.md, "Read-only payloads").
func BenchmarkChannelOpenClose(b *testing.B) {
	name := chanName(b)
	ch, err := shmkit.Create(name, shmkit.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer ch.Close()
	for range b.N {
		c, err := shmkit.Open(name)
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestConsumerPayloadReadOnly: a work queue's consumers, on every backend,
// read their samples from the read-only mapping too (a write faults),
// while the producer writes its loans in place.
func TestConsumerPayloadReadOnly(t *testing.T) {
	ctx := ctxT(t)
	eachBackend(t, func(t *testing.T, name string, b shmkit.Backend) {
		ch, err := shmkit.Create(name, shmkit.Config{Backend: b, Pattern: shmkit.WorkQueue, MaxMessage: 64, RingDepth: 8})
		if err != nil {
			t.Fatal(err)
		}
		defer ch.Close()
		pr, err := ch.Producer()
		if err != nil {
			t.Fatal(err)
		}
		co, err := ch.Consumer()
		if err != nil {
			t.Fatal(err)
		}
		for i := range 20 { // more than a lap of the ring
			loan, err := pr.Loan(8)
			if err != nil {
				t.Fatal(err)
			}
			copy(loan.Bytes(), fmt.Sprintf("payload%d", i%10))
			if err := pr.Publish(ctx, loan); err != nil {
				t.Fatal(err)
			}
			smp, err := co.Receive(ctx)
			if err != nil || string(smp.Bytes()) != fmt.Sprintf("payload%d", i%10) {
				t.Fatalf("%v message %d: %q, %v", b, i, smp.Bytes(), err)
			}
			if i%7 == 0 && !writeFaults(smp.Bytes()) {
				t.Fatalf("%v: writing into a received work queue sample did not fault", b)
			}
			if err := smp.Release(); err != nil {
				t.Fatal(err)
			}
		}
	})
}
