package shmkit

import (
	"errors"
	"fmt"
	"os"
	"testing"
)

func TestRelayKindCodec(t *testing.T) {
	for _, k := range []string{"a", "nats-out", "nats-in", "x.y_z-09"} {
		w, err := encodeRelayKind(k)
		if err != nil {
			t.Fatalf("%q: %v", k, err)
		}
		if got, ok := decodeRelayKind(w); !ok || got != k {
			t.Errorf("%q: decoded %q, %v", k, got, ok)
		}
	}
	for _, k := range []string{"", "nats-out1", "NATS", "a b", "é", "a\x00b"} {
		if _, err := encodeRelayKind(k); !errors.Is(err, ErrConfig) {
			t.Errorf("%q: %v, want ErrConfig", k, err)
		}
	}
	for _, w := range []uint64{0, 0x0061_0000 /* zero byte first */, 0x41 /* 'A' */, 0x61_00_61 /* a gap */} {
		if k, ok := decodeRelayKind(w); ok {
			t.Errorf("%#x decoded as %q", w, k)
		}
	}
}

// TestRelayBlock: a publisher's and a subscriber's relay figures appear in
// Stats and Inspect; Store needs a kind first; after Close nothing more is
// written; a new participant in the same slot starts as no relay.
func TestRelayBlock(t *testing.T) {
	name := fmt.Sprintf("shmkit-relay-%d", os.Getpid())
	ch, err := Create(name, Config{MaxMessage: 64, RingDepth: 4, MaxPublishers: 1, MaxSubscribers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer Remove(name)
	defer ch.Close()
	pub, err := ch.Publisher()
	if err != nil {
		t.Fatal(err)
	}
	sub, err := ch.Subscriber()
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Relay().Store(RelayStats{Messages: 1}); !errors.Is(err, ErrConfig) {
		t.Errorf("Store before SetKind: %v, want ErrConfig", err)
	}
	if err := pub.Relay().SetKind("Bad Kind"); !errors.Is(err, ErrConfig) {
		t.Errorf("SetKind(bad): %v", err)
	}
	in := RelayStats{Kind: "nats-in", Messages: 10, Bytes: 1000, Drops: 2, Reconnects: 3, Lag: 4}
	out := RelayStats{Kind: "nats-out", Messages: 20, Bytes: 2000, Drops: 5, Reconnects: 6, Lag: 7}
	if err := pub.Relay().SetKind(in.Kind); err != nil {
		t.Fatal(err)
	}
	if err := pub.Relay().Store(in); err != nil {
		t.Fatal(err)
	}
	if err := sub.Relay().SetKind(out.Kind); err != nil {
		t.Fatal(err)
	}
	if err := sub.Relay().Store(out); err != nil {
		t.Fatal(err)
	}
	check := func(how string, st Stats) {
		t.Helper()
		seen := 0
		for _, p := range st.Participants {
			switch p.Role {
			case "publisher":
				seen++
				if p.Relay != in {
					t.Errorf("%s: publisher relay %+v, want %+v", how, p.Relay, in)
				}
			case "subscriber":
				seen++
				if p.Relay != out {
					t.Errorf("%s: subscriber relay %+v, want %+v", how, p.Relay, out)
				}
			case "handle":
				if p.Relay != (RelayStats{}) {
					t.Errorf("%s: handle relay %+v", how, p.Relay)
				}
			}
		}
		if seen != 2 {
			t.Errorf("%s: %d of 2 participants", how, seen)
		}
	}
	st, err := ch.Stats()
	if err != nil {
		t.Fatal(err)
	}
	check("Stats", st)
	_, st, err = Inspect(name)
	if err != nil {
		t.Fatal(err)
	}
	check("Inspect", st)

	if err := pub.Close(); err != nil {
		t.Fatal(err)
	}
	if err := pub.Relay().Store(in); !errors.Is(err, ErrClosed) {
		t.Errorf("Store after Close: %v, want ErrClosed", err)
	}
	pub2, err := ch.Publisher() // the same (only) publisher slot
	if err != nil {
		t.Fatal(err)
	}
	defer pub2.Close()
	st, _ = ch.Stats()
	for _, p := range st.Participants {
		if p.Role == "publisher" && p.Relay != (RelayStats{}) {
			t.Errorf("a new publisher in the slot inherits relay %+v", p.Relay)
		}
	}
}

// TestRelayCorruptKind: garbage in relay_kind makes that entry ErrCorrupt
// in Stats and Inspect, and the other participants are still reported.
func TestRelayCorruptKind(t *testing.T) {
	name := fmt.Sprintf("shmkit-relaybad-%d", os.Getpid())
	ch, err := Create(name, Config{MaxMessage: 64, RingDepth: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer Remove(name)
	defer ch.Close()
	pub, err := ch.Publisher()
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	u64(pub.e, peRelayKind).Store(0xff)
	for how, read := range map[string]func() (Stats, error){
		"Stats":   ch.Stats,
		"Inspect": func() (Stats, error) { _, st, err := Inspect(name); return st, err },
	} {
		st, err := read()
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", how, err)
		}
		if st.Count("handle") != 1 || st.Count("publisher") != 0 {
			t.Errorf("%s: participants %+v", how, st.Participants)
		}
	}
	u64(pub.e, peRelayKind).Store(0)
}
