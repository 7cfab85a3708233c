package bridge

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestUnreachableServer(t *testing.T) {
	start := time.Now()
	_, err := New(Config{URLs: []string{"nats://127.0.0.1:1"}, Channel: "x", Direction: Out}, newMemChan(8, 2, false).subscribe(), nil)
	if !errors.Is(err, ErrConnect) {
		t.Fatalf("got %v, want ErrConnect", err)
	}
	t.Logf("%v after %v", err, time.Since(start))
}

func TestBadConfig(t *testing.T) {
	src := newMemChan(8, 2, false).subscribe()
	sink := newMemChan(8, 2, false).publisher()
	cases := map[string]struct {
		cfg       Config
		src       Source
		sink      Sink
		wantError error
	}{
		"no direction":       {Config{Channel: "a"}, src, sink, ErrConfig},
		"no subject":         {Config{Direction: Out}, src, nil, ErrConfig},
		"empty token":        {Config{Subject: "a..b", Direction: Out}, src, nil, ErrConfig},
		"trailing dot":       {Config{Subject: "a.", Direction: In}, nil, sink, ErrConfig},
		"wildcard out":       {Config{Subject: "a.*", Direction: Out}, src, nil, ErrConfig},
		"space":              {Config{Subject: "a b", Direction: In}, nil, sink, ErrConfig},
		"out without source": {Config{Channel: "a", Direction: Out}, nil, nil, ErrConfig},
		"in without sink":    {Config{Channel: "a", Direction: Both}, src, nil, ErrConfig},
		"cert without key":   {Config{Channel: "a", Direction: In, TLSCert: "c.pem"}, nil, sink, ErrConfig},
		"missing creds":      {Config{URLs: []string{"nats://127.0.0.1:1"}, Channel: "a", Direction: In, Creds: "/nonexistent.creds"}, nil, sink, ErrConnect},
		"missing CA":         {Config{URLs: []string{"nats://127.0.0.1:1"}, Channel: "a", Direction: In, TLSCA: "/nonexistent.pem"}, nil, sink, ErrConnect},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := New(c.cfg, c.src, c.sink)
			if !errors.Is(err, c.wantError) {
				t.Fatalf("got %v, want %v", err, c.wantError)
			}
		})
	}
}

func TestParseDirection(t *testing.T) {
	for _, d := range []Direction{Out, In, Both} {
		got, err := ParseDirection(d.String())
		if err != nil || got != d {
			t.Errorf("%v: got %v, %v", d, got, err)
		}
	}
	if _, err := ParseDirection("sideways"); !errors.Is(err, ErrConfig) {
		t.Errorf("sideways: %v", err)
	}
}

func TestStateFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state")
	s, err := openState(path)
	if err != nil {
		t.Fatal(err)
	}
	for k := uint64(1); k <= stateSlots+10; k++ {
		if err := s.put(k, k*10); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.put(stateSlots+10, 7); err != nil {
		t.Fatal(err)
	}
	_ = s.close()
	s, err = openState(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	if v, ok := s.get(stateSlots + 10); !ok || v != 7 {
		t.Errorf("last key: %d, %v", v, ok)
	}
	if _, ok := s.get(1); ok {
		t.Errorf("key 1 should have been overwritten round robin")
	}
	if v, ok := s.get(100); !ok || v != 1000 {
		t.Errorf("key 100: %d, %v", v, ok)
	}
	if err := os.WriteFile(path, []byte("not a state file"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := openState(path); !errors.Is(err, ErrState) {
		t.Errorf("garbage: %v", err)
	}
}

// The in side counts gaps per origin publisher, skips duplicates and its
// own echo, and treats a new epoch as a new publisher.
func TestSeqTracker(t *testing.T) {
	b := &Bridge{origin: "me"}
	b.cfg = b.cfg.withDefaults()
	tr := &seqTracker{b: b, last: map[uint64]uint64{}}
	h := func(origin, pub, seq string) (Meta, bool) {
		if origin == "" {
			return Meta{}, false // a plain NATS message
		}
		m, err := ParseMeta("ch " + origin + " " + pub + " " + seq)
		if err != nil {
			t.Fatal(err)
		}
		return m, true
	}
	steps := []struct {
		origin, pub, seq string
		want             verdict
		lost             uint64
	}{
		{"a", "1.0", "1", deliver, 0},
		{"a", "1.0", "2", deliver, 0},
		{"a", "1.0", "5", deliver, 2},
		{"a", "1.0", "5", skipDup, 2},
		{"a", "1.0", "3", skipDup, 2},
		{"a", "1.1", "1", deliver, 2},
		{"b", "1.0", "10", deliver, 2}, // first sight: no gap known
		{"b", "1.0", "12", deliver, 3},
		{"me", "1.0", "1", skipEcho, 3},
		{"", "", "", deliver, 3}, // a plain NATS message: delivered, untracked
	}
	for i, s := range steps {
		v, key, seq := tr.check(h(s.origin, s.pub, s.seq))
		if v == deliver {
			_ = tr.done(key, seq)
		}
		if v != s.want || b.c.inLost.Load() != s.lost {
			t.Fatalf("step %d %+v: verdict %v lost %d", i, s, v, b.c.inLost.Load())
		}
	}
}

// A batch frame comes from the network: whatever its bytes, the in side
// delivers the whole messages it holds, counts the rest as a drop, and
// never reads past the frame.
func FuzzFrame(f *testing.F) {
	f.Add([]byte{})
	f.Add(make([]byte, frameHeader))
	f.Add(append([]byte{3, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0}, 'a', 'b', 'c'))
	f.Add([]byte{255, 255, 255, 255, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0})
	// No subscriber: publishing only counts. The same frame once through
	// PublishBatch, once one message at a time.
	sink := newMemChan(1<<20, 1, true).publisher()
	f.Fuzz(func(t *testing.T, frame []byte) {
		var got [2]Stats
		for i, s := range []Sink{sink, singleSink{sink}} {
			b := &Bridge{origin: "me", sink: s}
			b.cfg = b.cfg.withDefaults()
			tr := newSeqTracker(b)
			if (tr.batch != nil) != (i == 0) {
				t.Fatalf("sink %d: batch path %v", i, tr.batch != nil)
			}
			if err := tr.handleFrame(context.Background(), "peer", frame); err != nil {
				t.Fatal(err)
			}
			got[i] = b.Stats()
		}
		if got[0].InMsgs != got[1].InMsgs || got[0].InDuplicates != got[1].InDuplicates || got[0].InDrops != got[1].InDrops || got[0].InLost != got[1].InLost {
			t.Fatalf("batch and single paths differ: %+v, %+v", got[0], got[1])
		}
		b := got[0]
		var n uint64
		for rest := frame; len(rest) >= frameHeader; {
			l := uint64(binary.LittleEndian.Uint32(rest))
			if l > uint64(len(rest)-frameHeader) {
				break
			}
			n++
			rest = rest[frameHeader+l:]
		}
		if got := b.InMsgs + b.InDuplicates; got != n {
			t.Fatalf("%d messages delivered or skipped, the frame holds %d whole ones", got, n)
		}
	})
}

// The Shmkit header round-trips, and a malformed value is ErrCorrupt.
func TestMeta(t *testing.T) {
	for _, m := range []Meta{
		{Channel: "orders", Origin: "abc", Publisher: 3, Epoch: 2, Seq: 1},
		{Channel: "a.b-c", Origin: "x", Publisher: 0, Epoch: 0, Seq: 1 << 63},
		{Channel: "orders", Origin: "abc", Batch: 64},
	} {
		got, err := ParseMeta(m.String())
		if err != nil || got != m {
			t.Errorf("%q: %+v, %v; want %+v", m.String(), got, err, m)
		}
	}
	for _, v := range []string{"", "a b c", "a b c d e", "a  1.0 1", " b 1.0 1", "a b 1.0 0",
		"a b 1 1", "a b x.0 1", "a b 1.x 1", "a b 1.0 -1", "a b batch 0", "a b batch x", "a b 99999999999.0 1"} {
		if _, err := ParseMeta(v); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%q: %v, want ErrCorrupt", v, err)
		}
	}
}

// FuzzMeta: whatever a header says, ParseMeta returns a Meta that prints
// back to the same value, or ErrCorrupt.
func FuzzMeta(f *testing.F) {
	f.Add("orders abc 3.2 17")
	f.Add("orders abc batch 64")
	f.Fuzz(func(t *testing.T, v string) {
		m, err := ParseMeta(v)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%q: %v", v, err)
			}
			return
		}
		if _, err := ParseMeta(m.String()); err != nil {
			t.Fatalf("%q -> %+v -> %q: %v", v, m, m.String(), err)
		}
	})
}

// pickySink drops messages that start with 'd' (ErrDropped) and refuses
// those over 8 bytes (ErrTooLarge); it records what it published.
type pickySink struct{ got []string }

func (s *pickySink) Publish(_ context.Context, p []byte) error {
	switch {
	case len(p) > s.MaxMessage():
		return fmt.Errorf("%w: %d bytes", ErrTooLarge, len(p))
	case len(p) > 0 && p[0] == 'd':
		return fmt.Errorf("%w: picky", ErrDropped)
	}
	s.got = append(s.got, string(p))
	return nil
}

func (s *pickySink) PublishBatch(ctx context.Context, msgs [][]byte) (int, error) {
	for i, m := range msgs {
		if err := s.Publish(ctx, m); err != nil {
			return i, err
		}
	}
	return len(msgs), nil
}

func (s *pickySink) MaxMessage() int          { return 8 }
func (s *pickySink) PublisherID() (int, bool) { return 0, false }

// A frame delivered through PublishBatch counts a dropped or too large
// message as the single path does and goes on with the rest, in order.
func TestFrameBatchDrops(t *testing.T) {
	var frame []byte
	add := func(seq uint64, p string) {
		frame = binary.LittleEndian.AppendUint32(frame, uint32(len(p)))
		frame = binary.LittleEndian.AppendUint32(frame, 1)
		frame = binary.LittleEndian.AppendUint32(frame, 0)
		frame = binary.LittleEndian.AppendUint64(frame, seq)
		frame = append(frame, p...)
	}
	for i, p := range []string{"a", "d1", "b", "far too large", "d2", "c", "d3"} {
		add(uint64(i+1), p)
	}
	add(5, "dup") // already seen: skipped
	add(9, "e")   // after a gap of one
	want := []string{"a", "b", "c", "e"}
	for _, batch := range []bool{true, false} {
		ps := &pickySink{}
		var s Sink = ps
		if !batch {
			s = singleSink{ps}
		}
		b := &Bridge{origin: "me", sink: s}
		b.cfg = b.cfg.withDefaults()
		tr := newSeqTracker(b)
		if (tr.batch != nil) != batch {
			t.Fatalf("batch %v: tracker batch path %v", batch, tr.batch != nil)
		}
		if err := tr.handleFrame(context.Background(), "peer", frame); err != nil {
			t.Fatal(err)
		}
		st := b.Stats()
		if !slices.Equal(ps.got, want) || st.InMsgs != 4 || st.InDrops != 4 || st.InDuplicates != 1 || st.InLost != 1 {
			t.Errorf("batch %v: published %q; stats msgs %d drops %d dups %d lost %d (want %q, 4, 4, 1, 1)",
				batch, ps.got, st.InMsgs, st.InDrops, st.InDuplicates, st.InLost, want)
		}
	}
}
