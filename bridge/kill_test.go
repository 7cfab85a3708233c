package bridge

import (
	"context"
	"testing"
	"time"
)

func countRecords(t *testing.T, path string) int {
	recs, _, err := readRecords(path)
	if err != nil {
		t.Fatal(err)
	}
	return len(recs)
}

// JetStream: the in bridge (a child process) is SIGKILLed mid-stream and
// restarted; nothing is lost, and with its state file at most the one
// message between the local publish and the state write comes twice.
func TestJetStreamKillInbound(t *testing.T) {
	srv := startServer(t, true, nil)
	perPub := uint64(envInt("SHMKIT_BRIDGE_JS_MSGS", 10_000))
	dir := t.TempDir()
	host1 := newMemChan(16<<10, 256, false)
	// Frames of up to 32 messages: a redelivered frame is partly new.
	cfg := Config{URLs: []string{srv.ClientURL()}, Channel: "kill", Direction: Out, Stream: "SHMKIT", ExitWhenIdle: true, Batch: 32}
	out := newBridge(t, cfg, host1.subscribe(), nil)
	stopOut := runBridge(t, out)

	c1 := startChild(t, dir, srv.ClientURL(), "SHMKIT", 1)
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
	log := dir + "/host2.log"
	waitFor(t, "a third of the messages on host 2", 60*time.Second, func() bool {
		return countRecords(t, log) >= int(perPub*2/3)
	})
	c1.kill(t)
	cutTorn(t, log)
	killedAt := countRecords(t, log)
	close(resume)
	c2 := startChild(t, dir, srv.ClientURL(), "SHMKIT", 2)
	for range 2 {
		if err := <-pubErr; err != nil {
			t.Fatal(err)
		}
	}
	if err := stopOut(); err != nil {
		t.Fatal(err)
	}
	var oc orderCheck
	check := func(recs [][]byte) {
		oc = orderCheck{}
		for _, r := range recs {
			if err := oc.add(r, true); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitFor(t, "every message on host 2", 60*time.Second, func() bool {
		recs, _, err := readRecords(log)
		if err != nil {
			t.Fatal(err)
		}
		check(recs)
		return oc.total() == 2*perPub
	})
	s2 := c2.stop(t)
	check(wholeFile(t, log))
	so := out.Stats()
	t.Logf("killed after %d records; out %+v; restarted in %+v; duplicates on host 2: %d", killedAt, so, s2, oc.dups)
	if so.OutMsgs != 2*perPub || so.OutDrops != 0 {
		t.Errorf("out side: %d sent, %d dropped, want %d, 0", so.OutMsgs, so.OutDrops, 2*perPub)
	}
	if oc.dups > 1 {
		t.Errorf("%d duplicates on host 2; the state file allows at most 1", oc.dups)
	}
	if killedAt >= int(2*perPub) {
		t.Errorf("the kill came after every message")
	}
	if s2.InLost != 0 {
		t.Errorf("restarted in side reports %d lost", s2.InLost)
	}
}

// Core NATS: what is published while the in bridge is down is lost, and
// the restarted bridge reports exactly that (from its state file; one more
// per publisher when the kill fell between the local publish and the state
// write).
func TestCoreRestartReportsLoss(t *testing.T) {
	srv := startServer(t, false, nil)
	dir := t.TempDir()
	log := dir + "/host2.log"
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

	base := srv.NumSubscriptions()
	c1 := startChild(t, dir, srv.ClientURL(), "", 1)
	waitFor(t, "child 1 subscribed", 30*time.Second, func() bool { return srv.NumSubscriptions() > base })
	// Mid-stream: publish in steps while the child delivers, kill it, go on.
	for countRecords(t, log) < 500 {
		publish(50)
	}
	c1.kill(t)
	cutTorn(t, log)
	waitFor(t, "the server to see child 1 gone", 30*time.Second, func() bool { return srv.NumSubscriptions() == base })
	publish(1000) // nobody listens: lost
	waitFor(t, "the out side flushed", 30*time.Second, flushed)

	c2 := startChild(t, dir, srv.ClientURL(), "", 2)
	waitFor(t, "child 2 subscribed", 30*time.Second, func() bool { return srv.NumSubscriptions() > base })
	publish(2000)
	waitFor(t, "the out side flushed", 30*time.Second, flushed)
	waitFor(t, "the last message on host 2", 30*time.Second, func() bool {
		recs, _, err := readRecords(log)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			return false
		}
		_, s, err := checkPayload(recs[len(recs)-1])
		return err == nil && s == seq
	})
	s2 := c2.stop(t)
	if err := stopOut(); err != nil {
		t.Fatal(err)
	}
	recs := wholeFile(t, log)
	var last, missing uint64
	for _, r := range recs {
		_, s, err := checkPayload(r)
		if err != nil {
			t.Fatal(err)
		}
		if s <= last {
			t.Fatalf("seq %d after %d", s, last)
		}
		missing += s - last - 1
		last = s
	}
	t.Logf("published %d, host 2 got %d, missing %d; restarted in side reports %d lost", seq, len(recs), missing, s2.InLost)
	if missing < 1000 {
		t.Errorf("only %d missing; 1000 were published while no in side listened", missing)
	}
	if s2.InLost < missing || s2.InLost > missing+1 {
		t.Errorf("restarted in side reports %d lost, host 2 misses %d", s2.InLost, missing)
	}
}
