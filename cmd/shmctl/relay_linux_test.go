package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/shmkit/shmkit"
	"github.com/shmkit/shmkit/bridge"
)

// relayWant maps a bridge's Stats to the relay block each side writes
// (the mapping docs/bridge.md, "Metrics", states).
func relayWant(s bridge.Stats) map[string]chanRelay {
	return map[string]chanRelay{
		bridge.RelayKindOut: {Kind: bridge.RelayKindOut, Messages: s.OutMsgs, Bytes: s.OutBytes, Drops: s.OutDrops,
			Reconnects: s.Reconnects, Lag: s.OutUnflushed},
		bridge.RelayKindIn: {Kind: bridge.RelayKindIn, Messages: s.InMsgs, Bytes: s.InBytes, Drops: s.InDrops + s.InSlow,
			Reconnects: s.Reconnects, Lag: s.InPending},
	}
}

// relaysIn returns the relay blocks of ch's participants by kind, read
// in-process through Stats.
func relaysIn(t *testing.T, ch *shmkit.Channel) map[string]chanRelay {
	t.Helper()
	st, err := ch.Stats()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]chanRelay{}
	for _, p := range st.Participants {
		if r := p.Relay; r.Kind != "" {
			out[r.Kind] = chanRelay{Kind: r.Kind, Messages: r.Messages, Bytes: r.Bytes, Drops: r.Drops, Reconnects: r.Reconnects, Lag: r.Lag}
		}
	}
	return out
}

// scrapeRelays fetches /metrics, parses it with the Prometheus text parser
// and returns the shmkit_relay_* series of channel by kind.
func scrapeRelays(t *testing.T, addr, channel string) map[string]chanRelay {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]chanRelay{}
	for fname, f := range fams {
		if !strings.HasPrefix(fname, "shmkit_relay_") {
			continue
		}
		if f.GetHelp() == "" {
			t.Errorf("%s has no HELP", fname)
		}
		for _, m := range f.GetMetric() {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			if l["channel"] != channel {
				continue
			}
			if l["slot"] == "" || l["pid"] != fmt.Sprint(os.Getpid()) || l["role"] == "" {
				t.Errorf("%s: labels %v", fname, l)
			}
			r := out[l["kind"]]
			r.Kind = l["kind"]
			v := uint64(m.GetCounter().GetValue() + m.GetGauge().GetValue())
			switch fname {
			case "shmkit_relay_messages_total":
				r.Messages = v
			case "shmkit_relay_bytes_total":
				r.Bytes = v
			case "shmkit_relay_drops_total":
				r.Drops = v
			case "shmkit_relay_reconnects_total":
				r.Reconnects = v
			case "shmkit_relay_lag":
				if f.GetType().String() != "GAUGE" {
					t.Errorf("%s is a %v, want a gauge", fname, f.GetType())
				}
				r.Lag = v
			default:
				t.Errorf("unexpected family %s", fname)
			}
			out[r.Kind] = r
		}
	}
	return out
}

// TestRelayCounters: a real bridge (both directions, core NATS through an
// embedded server) on a channel with traffic each way; shmctl stat -o json
// shows its two participants' relay blocks between what the channel held
// before stat ran and what the bridge's Stats say after, with rates no
// larger than what moved meanwhile; once the traffic stops, stat, watch,
// inspect and a /metrics scrape show exactly the bridge's Stats.
func TestRelayCounters(t *testing.T) {
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(20 * time.Second) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })

	name := fmt.Sprintf("cli.%d.chanrelay", os.Getpid())
	ch, err := shmkit.Create(name, shmkit.Config{MaxMessage: 256, RingDepth: 64, ChunksPerClass: 128, Keep: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ch.Close(); shmkit.Remove(name) })
	src, sink, leave, err := bridge.JoinShmkit(ch, bridge.Both)
	if err != nil {
		t.Fatal(err)
	}
	b, err := bridge.New(bridge.Config{URLs: []string{srv.ClientURL()}, Channel: name, Direction: bridge.Both}, src, sink)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- b.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-runErr; b.Close(); leave() })

	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !cond(); {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s: bridge %+v, channel %+v", what, b.Stats(), relaysIn(t, ch))
			}
			time.Sleep(5 * time.Millisecond) // polling an observable fact
		}
	}
	// Core NATS drops what is published before the in side's subscription
	// reaches the server: wait for it (by interest in the subject:
	// NumSubscriptions counts the server's own ~60 system subscriptions).
	waitFor("the in side's subscription", func() bool { return srv.GlobalAccount().Interest("shmkit."+name) > 0 })

	// Far side: a plain NATS publisher sends into the subject (the in side
	// publishes it into the channel).
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	const fromNATS = 3000
	for i := range fromNATS {
		if err := nc.Publish("shmkit."+name, make([]byte, 50+i%100)); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	// Near side: a local publisher sends until stopped (the out side hands
	// it to NATS), paced at about 5000 a second.
	pub, err := ch.Publisher()
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		msg := make([]byte, 100)
		for {
			select {
			case <-stop:
				return
			default:
			}
			for range 5 {
				if err := pub.Send(context.Background(), msg); err != nil {
					t.Error(err)
					return
				}
			}
			time.Sleep(time.Millisecond) // pacing, not synchronisation
		}
	}()
	stopPub := sync.OnceFunc(func() { close(stop); wg.Wait(); pub.Close() })
	defer stopPub()
	waitFor("both relay blocks to move", func() bool {
		r := relaysIn(t, ch)
		return r[bridge.RelayKindIn].Messages == fromNATS && r[bridge.RelayKindOut].Messages > 0
	})

	// While traffic flows: between before and after.
	before := relaysIn(t, ch)
	var s statOut
	if err := json.Unmarshal([]byte(mustShmctl(t, "stat", name, "--interval", "500ms", "-o", "json")), &s); err != nil {
		t.Fatal(err)
	}
	after := relayWant(b.Stats())
	seen := 0
	for _, p := range s.Parts {
		if p.Relay == nil {
			continue
		}
		seen++
		lo, hi := before[p.Relay.Kind], after[p.Relay.Kind]
		for _, f := range []struct {
			what      string
			v, lo, hi uint64
		}{
			{"messages", p.Relay.Messages, lo.Messages, hi.Messages},
			{"bytes", p.Relay.Bytes, lo.Bytes, hi.Bytes},
			{"drops", p.Relay.Drops, lo.Drops, hi.Drops},
			{"reconnects", p.Relay.Reconnects, lo.Reconnects, hi.Reconnects},
		} {
			if f.v < f.lo || f.v > f.hi {
				t.Errorf("%s %s: stat says %d, not between %d (channel before) and %d (bridge after)", p.Relay.Kind, f.what, f.v, f.lo, f.hi)
			}
		}
		if p.RelayRates == nil {
			t.Errorf("%s: no relay rates: %+v", p.Relay.Kind, p)
			continue
		}
		if moved := float64(hi.Messages - lo.Messages); p.RelayRates.MsgsPerSec*s.IntervalSec > moved+0.5 {
			t.Errorf("%s: %.1f msg/s over %.3fs, but only %.0f moved meanwhile", p.Relay.Kind, p.RelayRates.MsgsPerSec, s.IntervalSec, moved)
		}
		t.Logf("%s (slot %d, %s): %+v, %.0f msg/s", p.Relay.Kind, p.Slot, p.Role, *p.Relay, p.RelayRates.MsgsPerSec)
	}
	if seen != 2 {
		t.Errorf("stat shows %d relays, want 2 (out and in)", seen)
	}
	text := mustShmctl(t, "stat", name, "--interval", "100ms")
	t.Logf("shmctl stat %s --interval 100ms:\n%s", name, text)
	for _, want := range []string{"RELAY", bridge.RelayKindOut, bridge.RelayKindIn, "RECONNECTS"} {
		if !strings.Contains(text, want) {
			t.Errorf("stat text lacks %q:\n%s", want, text)
		}
	}

	// Quiet: the blocks equal the bridge's Stats, everywhere.
	stopPub()
	var want map[string]chanRelay
	waitFor("the relay blocks to settle", func() bool {
		want = relayWant(b.Stats())
		got := relaysIn(t, ch)
		return want[bridge.RelayKindOut].Lag == 0 && want[bridge.RelayKindIn].Lag == 0 &&
			got[bridge.RelayKindOut] == want[bridge.RelayKindOut] && got[bridge.RelayKindIn] == want[bridge.RelayKindIn]
	})
	s = statOut{}
	if err := json.Unmarshal([]byte(mustShmctl(t, "stat", name, "--interval", "10ms", "-o", "json")), &s); err != nil {
		t.Fatal(err)
	}
	got := map[string]chanRelay{}
	for _, p := range s.Parts {
		if p.Relay != nil {
			got[p.Relay.Kind] = *p.Relay
		}
	}
	var w statOut
	if err := json.Unmarshal([]byte(mustShmctl(t, "watch", name, "--interval", "50ms", "--count", "1", "-o", "json")), &w); err != nil {
		t.Fatal(err)
	}
	watched := map[string]chanRelay{}
	for _, p := range w.Parts {
		if p.Relay != nil {
			watched[p.Relay.Kind] = *p.Relay
			if p.RelayRates == nil || p.RelayRates.MsgsPerSec != 0 {
				t.Errorf("watch: %s relay rates %+v on a quiet channel", p.Relay.Kind, p.RelayRates)
			}
		}
	}
	var in struct {
		Channel *chanSnapshot `json:"channel"`
	}
	if err := json.Unmarshal([]byte(mustShmctl(t, "inspect", name, "-o", "json")), &in); err != nil {
		t.Fatal(err)
	}
	inspected := map[string]chanRelay{}
	for _, p := range in.Channel.Participants {
		if p.Relay != nil {
			inspected[p.Relay.Kind] = *p.Relay
		}
	}
	if text := mustShmctl(t, "inspect", name); !strings.Contains(text, "relays:") || !strings.Contains(text, bridge.RelayKindOut) {
		t.Errorf("inspect text lacks the relays:\n%s", text)
	}

	addr := startMetrics(t)
	scraped := scrapeRelays(t, addr, name)
	for how, m := range map[string]map[string]chanRelay{"stat": got, "watch": watched, "inspect": inspected, "metrics": scraped} {
		for _, k := range []string{bridge.RelayKindOut, bridge.RelayKindIn} {
			if m[k] != want[k] {
				t.Errorf("%s: %s relay %+v, the bridge's Stats say %+v", how, k, m[k], want[k])
			}
		}
		if len(m) != 2 {
			t.Errorf("%s: relays %v, want out and in only", how, m)
		}
	}
	if want[bridge.RelayKindIn].Messages != fromNATS || want[bridge.RelayKindOut].Messages == 0 {
		t.Errorf("bridge moved %+v", want)
	}
}
