package bridge

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/shmkit/shmkit"
)

// jsKillMsgs is the number of messages TestJetStreamKillInbound sends: 100 k
// (the figure) by default, SHMKIT_BRIDGE_JS_MSGS to change it.
func jsKillMsgs() uint64 { return uint64(envInt("SHMKIT_BRIDGE_JS_MSGS", 100_000)) / 2 * 2 }

// hostB is the second host of the kill tests: a named shmkit channel with
// one publisher slot (the in bridge child's), and the test's subscriber,
// joined before any child starts, checking every message as it arrives.
type hostB struct {
	ch   *shmkit.Channel
	done chan struct{}

	mu      sync.Mutex
	last    map[uint32]uint64 // per test publisher: the highest sequence received
	recvd   uint64            // messages received, duplicates included
	missing uint64            // sequences skipped (gaps)
	dups    uint64            // messages at or below their publisher's last sequence
	err     error             // a corrupt message, or the subscription failed
}

// newHostB creates the channel and starts receiving; the test's end stops
// it.
func newHostB(t *testing.T, tag string) *hostB {
	t.Helper()
	h := &hostB{ch: newChannel(t, tag, shmkit.Config{MaxMessage: 16 << 10, RingDepth: 256, MaxPublishers: 1}),
		done: make(chan struct{}), last: map[uint32]uint64{}}
	sub, err := h.ch.Subscriber()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); <-h.done; _ = sub.Close() })
	go h.receive(ctx, sub)
	return h
}

func (h *hostB) receive(ctx context.Context, sub *shmkit.Subscriber) {
	defer close(h.done)
	fail := func(err error) {
		h.mu.Lock()
		h.err = err
		h.mu.Unlock()
	}
	for {
		m, err := sub.Receive(ctx)
		if errors.Is(err, shmkit.ErrPeerGone) {
			// The child died (and the channel cleaned its slot): wait for
			// the next one to join.
			if err := waitUntil(ctx, func() bool { st, _ := h.ch.Stats(); return st.Count("publisher") > 0 }); err != nil {
				return
			}
			continue
		}
		if err != nil {
			if ctx.Err() == nil {
				fail(err)
			}
			return
		}
		pub, seq, err := checkPayload(m.Bytes())
		_ = m.Release()
		if err != nil {
			fail(err)
			return
		}
		h.mu.Lock()
		h.recvd++
		if last := h.last[pub]; seq <= last {
			h.dups++
		} else {
			h.missing += seq - last - 1
			h.last[pub] = seq
		}
		h.mu.Unlock()
	}
}

// hostBState is what host B's subscriber has seen so far.
type hostBState struct {
	last                 map[uint32]uint64
	recvd, missing, dups uint64
	err                  error
}

func (h *hostB) state() hostBState {
	h.mu.Lock()
	defer h.mu.Unlock()
	return hostBState{last: maps.Clone(h.last), recvd: h.recvd, missing: h.missing, dups: h.dups, err: h.err}
}

// upTo is the number of distinct sequences up to the highest received,
// summed over the publishers (what arrived plus the gaps).
func (s hostBState) upTo() (n uint64) {
	for _, v := range s.last {
		n += v
	}
	return n
}

// waitFor waits until cond holds for host B's state; a corrupt message
// fails the test at once.
func (h *hostB) waitFor(t *testing.T, what string, d time.Duration, cond func(hostBState) bool) hostBState {
	t.Helper()
	var s hostBState
	waitFor(t, what, d, func() bool {
		s = h.state()
		if s.err != nil {
			t.Fatalf("host B: %v", s.err)
		}
		return cond(s)
	})
	return s
}

// publisherIs checks that host B's only publisher is the child c, a relay:
// the channel's liveness freed the slot of the child killed before it.
func (h *hostB) publisherIs(t *testing.T, c *childRun) {
	t.Helper()
	st, err := h.ch.Stats()
	if err != nil {
		t.Fatal(err)
	}
	var pubs []shmkit.ParticipantStats
	for _, p := range st.Participants {
		if p.Role == "publisher" {
			pubs = append(pubs, p)
		}
	}
	if len(pubs) != 1 || pubs[0].PID != c.cmd.Process.Pid || pubs[0].Relay.Kind != RelayKindIn {
		t.Errorf("host B's publishers %+v; want the restarted child %d alone, a %s relay", pubs, c.cmd.Process.Pid, RelayKindIn)
	}
}

// JetStream on a real channel: host B is a named shmkit channel with one
// publisher slot; the test subscribes to it before the in bridge (a child
// process that joins it with JoinShmkit) starts. Two publishers on host A
// send mixed-size messages (12 B to 12 KiB) through the out bridge; at a
// random point the child is SIGKILLed, the publishers send the rest while
// it is down, and a new child takes over the durable. The new child gets
// the only publisher slot, so the channel's liveness cleaned the dead
// one's; every message arrives, in order per publisher, and with the state
// file at most the one message between the local publish and the state
// write comes twice. Without the state file (the in side's PublishBatch
// path: a frame goes into the channel with one SendBatch) every message
// arrives, in order per publisher, with duplicates: at least once.
func TestJetStreamKillInbound(t *testing.T) {
	for _, noState := range []bool{false, true} {
		name := "state"
		if noState {
			name = "no-state"
		}
		t.Run(name, func(t *testing.T) { testJetStreamKillInbound(t, noState) })
	}
}

func testJetStreamKillInbound(t *testing.T, noState bool) {
	srv := startServer(t, true, nil)
	total := jsKillMsgs()
	perPub := total / 2
	dir := t.TempDir()
	hb := newHostB(t, "jskill")

	host1 := newMemChan(16<<10, 256, false)
	// Frames of up to 32 messages: a redelivered frame is partly new.
	cfg := Config{URLs: []string{srv.ClientURL()}, Channel: "kill", Direction: Out, Stream: "SHMKIT", ExitWhenIdle: true, Batch: 32}
	out := newBridge(t, cfg, host1.subscribe(), nil)
	stopOut := runBridge(t, out)

	c1 := startChannelChild(t, dir, srv.ClientURL(), "SHMKIT", 1, hb.ch.Name(), noState)
	// Two publishers send the first half of their messages, then wait
	// until the in side is killed, and send the rest while it is down and
	// after it restarted.
	resume := make(chan struct{})
	pubErr := make(chan error, 2)
	for p := range 2 {
		pub := host1.publisher()
		go func() {
			defer pub.close()
			buf := make([]byte, 16<<10)
			for seq := uint64(1); seq <= perPub; seq++ {
				if seq == perPub/2+1 {
					<-resume
				}
				if err := pub.Publish(context.Background(), payload(buf, uint32(p+1), seq)); err != nil {
					pubErr <- err
					return
				}
			}
			pubErr <- nil
		}()
	}
	// A random point in the first half (which the publishers send before
	// they wait): 2 % to 48 % of all messages received on host B.
	killAt := total/50 + rand.N(total*46/100)
	hb.waitFor(t, fmt.Sprintf("%d messages on host B", killAt), 120*time.Second, func(s hostBState) bool { return s.recvd >= killAt })
	c1.kill(t)
	killedAt := hb.state().recvd
	close(resume)
	c2 := startChannelChild(t, dir, srv.ClientURL(), "SHMKIT", 2, hb.ch.Name(), noState)
	for range 2 {
		if err := <-pubErr; err != nil {
			t.Fatal(err)
		}
	}
	if err := stopOut(); err != nil {
		t.Fatal(err)
	}
	s := hb.waitFor(t, "every message on host B", 120*time.Second, func(s hostBState) bool { return s.upTo() == total })
	hb.publisherIs(t, c2)
	s2 := c2.stop(t)
	so := out.Stats()
	t.Logf("%d messages; child 1 killed after %d arrived (target %d); out %+v; restarted in %+v; host B: %d received, %d duplicates, %d missing",
		total, killedAt, killAt, so, s2, s.recvd, s.dups, s.missing)
	if so.OutMsgs != total || so.OutDrops != 0 {
		t.Errorf("out side: %d sent, %d dropped, want %d, 0", so.OutMsgs, so.OutDrops, total)
	}
	if s.missing != 0 {
		t.Errorf("host B misses %d messages", s.missing)
	}
	if s.dups > 1 && !noState {
		t.Errorf("%d duplicates on host B; the state file allows at most 1", s.dups)
	}
	if killedAt >= total {
		t.Errorf("the kill came after every message")
	}
	if s2.InLost != 0 {
		t.Errorf("restarted in side reports %d lost", s2.InLost)
	}
}

// waitUntil polls an observable fact until it holds or ctx ends.
func waitUntil(ctx context.Context, cond func() bool) error {
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
	return nil
}

// Core NATS on a real channel: what is published while the in bridge is
// down is lost, and the restarted bridge reports exactly that (from its
// state file; one more per publisher when the kill fell between the local
// publish and the state write), checked against what host B's subscriber
// misses.
func TestCoreRestartReportsLoss(t *testing.T) {
	srv := startServer(t, false, nil)
	dir := t.TempDir()
	hb := newHostB(t, "corekill")
	host1 := newMemChan(16<<10, 256, false)
	cfg := Config{URLs: []string{srv.ClientURL()}, Channel: "kill", Direction: Out}
	out := newBridge(t, cfg, host1.subscribe(), nil)
	stopOut := runBridge(t, out)
	pub := host1.publisher()
	defer pub.close()
	buf := make([]byte, 16<<10)
	var seq uint64
	publish := func(k int) {
		for range k {
			seq++
			if err := pub.Publish(context.Background(), payload(buf, 1, seq)); err != nil {
				t.Fatal(err)
			}
		}
	}
	flushed := func() bool { s := out.Stats(); return s.OutMsgs == seq && s.OutUnflushed == 0 }

	// The out side subscribes to its in sides' flow reports as it starts.
	waitFor(t, "the out side's flow subscription", 30*time.Second, func() bool { return interest(srv, FlowSubjectPrefix+out.Origin()) })
	base := srv.NumSubscriptions()
	c1 := startChannelChild(t, dir, srv.ClientURL(), "", 1, hb.ch.Name())
	waitFor(t, "child 1 subscribed", 30*time.Second, func() bool { return srv.NumSubscriptions() > base })
	// Mid-stream: publish in steps while the child delivers, kill it, go on.
	for hb.state().recvd < 500 {
		publish(50)
	}
	c1.kill(t)
	waitFor(t, "the server to see child 1 gone", 30*time.Second, func() bool { return srv.NumSubscriptions() == base })
	publish(1000) // nobody listens: lost
	waitFor(t, "the out side flushed", 30*time.Second, flushed)

	c2 := startChannelChild(t, dir, srv.ClientURL(), "", 2, hb.ch.Name())
	waitFor(t, "child 2 subscribed", 30*time.Second, func() bool { return srv.NumSubscriptions() > base })
	publish(2000)
	waitFor(t, "the out side flushed", 30*time.Second, flushed)
	s := hb.waitFor(t, "the last message on host B", 30*time.Second, func(s hostBState) bool { return s.last[1] == seq })
	hb.publisherIs(t, c2)
	s2 := c2.stop(t)
	if err := stopOut(); err != nil {
		t.Fatal(err)
	}
	t.Logf("published %d, host B got %d, missing %d; restarted in side reports %d lost", seq, s.recvd, s.missing, s2.InLost)
	if s.dups != 0 || s.recvd+s.missing != seq {
		t.Errorf("host B: %d received, %d missing, %d duplicates; %d published", s.recvd, s.missing, s.dups, seq)
	}
	if s.missing < 1000 {
		t.Errorf("only %d missing; 1000 were published while no in side listened", s.missing)
	}
	if s2.InLost < s.missing || s2.InLost > s.missing+1 {
		t.Errorf("restarted in side reports %d lost, host B misses %d", s2.InLost, s.missing)
	}
}
