package bridge

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/shmkit/shmkit/internal/proctest"
)

func TestMain(m *testing.M) {
	proctest.Register("inbridge", childInBridge)
	proctest.Main(m)
}

// startServer runs an embedded NATS server on a free port (JetStream in a
// temp dir when js), shut down when the test ends.
func startServer(tb testing.TB, js bool, mod func(*server.Options)) *server.Server {
	tb.Helper()
	opts := &server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		JetStream: js, StoreDir: tb.TempDir()}
	if mod != nil {
		mod(opts)
	}
	s, err := server.NewServer(opts)
	if err != nil {
		tb.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(20 * time.Second) {
		tb.Fatal("nats server not ready")
	}
	tb.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

// envInt reads a count knob from the environment.
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// Test payloads carry their test publisher and sequence, then bytes that
// are a function of both, so a receiver checks every byte.
const payloadHead = 12

func payloadSize(seq uint64) int {
	switch {
	case seq%997 == 0:
		return 12 << 10
	case seq%101 == 0:
		return 4 << 10
	}
	return payloadHead + int(seq*7919%1013)
}

func payload(buf []byte, pub uint32, seq uint64) []byte {
	n := payloadSize(seq)
	b := buf[:n]
	binary.LittleEndian.PutUint32(b, pub)
	binary.LittleEndian.PutUint64(b[4:], seq)
	x := byte(pub*31) ^ byte(seq)
	for i := payloadHead; i < n; i++ {
		b[i] = x + byte(i)
	}
	return b
}

func checkPayload(b []byte) (uint32, uint64, error) {
	if len(b) < payloadHead {
		return 0, 0, fmt.Errorf("short message: %d bytes", len(b))
	}
	pub, seq := binary.LittleEndian.Uint32(b), binary.LittleEndian.Uint64(b[4:])
	if len(b) != payloadSize(seq) {
		return pub, seq, fmt.Errorf("pub %d seq %d: %d bytes, want %d", pub, seq, len(b), payloadSize(seq))
	}
	x := byte(pub*31) ^ byte(seq)
	for i := payloadHead; i < len(b); i++ {
		if b[i] != x+byte(i) {
			return pub, seq, fmt.Errorf("pub %d seq %d: byte %d is %#x, want %#x", pub, seq, i, b[i], x+byte(i))
		}
	}
	return pub, seq, nil
}

// orderCheck verifies per-publisher order: each message is the next of its
// publisher, or (dupsOK) one already seen.
type orderCheck struct {
	last map[uint32]uint64
	dups int
}

func (o *orderCheck) add(b []byte, dupsOK bool) error {
	pub, seq, err := checkPayload(b)
	if err != nil {
		return err
	}
	if o.last == nil {
		o.last = map[uint32]uint64{}
	}
	last := o.last[pub]
	switch {
	case seq == last+1:
		o.last[pub] = seq
	case seq <= last && dupsOK:
		o.dups++
	default:
		return fmt.Errorf("pub %d: seq %d after %d", pub, seq, last)
	}
	return nil
}

func (o *orderCheck) total() (n uint64) {
	for _, v := range o.last {
		n += v
	}
	return n
}

// runBridge starts b.Run in a goroutine; the returned stop cancels it and
// returns Run's error.
func runBridge(tb testing.TB, b *Bridge) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	var once sync.Once
	var res error
	stop = func() error {
		once.Do(func() {
			cancel()
			res = <-done
			_ = b.Close()
		})
		return res
	}
	tb.Cleanup(func() { _ = stop() })
	return stop
}

func newBridge(tb testing.TB, cfg Config, src Source, sink Sink) *Bridge {
	tb.Helper()
	b, err := New(cfg, src, sink)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = b.Close() })
	return b
}

// waitFor polls an observable fact (a counter, the server's subscription
// count) until it holds or the deadline passes.
func waitFor(tb testing.TB, what string, d time.Duration, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// publishAll publishes count messages from each of pubs publishers of c,
// concurrently, then closes them. It returns the first error.
func publishAll(c *memChan, pubs int, count uint64) error {
	var wg sync.WaitGroup
	errs := make(chan error, pubs)
	for p := range pubs {
		pub := c.publisher()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer pub.close()
			buf := make([]byte, 16<<10)
			for seq := uint64(1); seq <= count; seq++ {
				if err := pub.Publish(context.Background(), payload(buf, uint32(p+1), seq)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// receiveN receives until want messages passed check, or ctx ends.
func receiveN(ctx context.Context, s Source, want uint64, oc *orderCheck, dupsOK bool) error {
	for oc.total() < want {
		m, err := s.Receive(ctx)
		if err != nil {
			return fmt.Errorf("after %d of %d: %w", oc.total(), want, err)
		}
		err = oc.add(m.Bytes(), dupsOK)
		_ = m.Release()
		if err != nil {
			return err
		}
	}
	return nil
}

var errStop = errors.New("stop")

// interest reports whether a client's subscription on subject has reached
// the server. (srv.NumSubscriptions counts the server's own system
// subscriptions too, about 60 on a fresh server, so "at least one" is
// true before any client subscribed.)
func interest(srv *server.Server, subject string) bool {
	return srv.GlobalAccount().Interest(subject) > 0
}

// startPair runs an in bridge into sink and, once its subscription has
// reached srv (core NATS drops what is published before), an out bridge
// from src, both configured by cfg (Direction set here; ExitWhenIdle
// applies to the out side only).
func startPair(t testing.TB, srv *server.Server, cfg Config, src Source, sink Sink) (in, out *Bridge, stopIn, stopOut func() error) {
	t.Helper()
	cfg.Direction = In
	in = newBridge(t, cfg, nil, sink)
	stopIn = runBridge(t, in)
	subject := in.Config().Subject
	waitFor(t, "the in side's subscription", 10*time.Second, func() bool { return interest(srv, subject) })
	cfg.Direction = Out
	out = newBridge(t, cfg, src, nil)
	stopOut = runBridge(t, out)
	return in, out, stopIn, stopOut
}

// stopClean stops the pair and checks that n messages went out and came in,
// the same bytes both ways, with no loss of any kind counted.
func stopClean(t *testing.T, n uint64, out, in *Bridge, stopOut, stopIn func() error) (so, si Stats) {
	t.Helper()
	if err := stopOut(); err != nil {
		t.Fatal(err)
	}
	if err := stopIn(); err != nil {
		t.Fatal(err)
	}
	so, si = out.Stats(), in.Stats()
	if so.OutMsgs != n || si.InMsgs != n || so.OutBytes != si.InBytes {
		t.Errorf("counts: out %d msgs %d bytes, in %d msgs %d bytes", so.OutMsgs, so.OutBytes, si.InMsgs, si.InBytes)
	}
	if so.OutDrops+so.OutMissed+si.InDrops+si.InSlow+si.InLost+si.InDuplicates != 0 {
		t.Errorf("losses counted in a clean run: out %+v in %+v", so, si)
	}
	return so, si
}
