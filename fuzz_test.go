package shmkit

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"
)

// alignedBuf returns n zero bytes at an 8-byte aligned address.
func alignedBuf(n int) []byte {
	b := make([]uint64, (n+7)/8)
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(b))), n)
}

// testTapRing lays out a tap region of slots slots of snap bytes in
// ordinary memory and returns its ring, memory and geometry.
func testTapRing(tb testing.TB, slots, snap int) (*tapRing, []byte, tapGeom) {
	mem := alignedBuf(tapRegionSize(slots, snap))
	initTapRegion(mem, slots, snap)
	g, err := decodeTapRegion(mem, len(mem))
	if err != nil {
		tb.Fatal(err)
	}
	return newTapRing(mem, g), mem, g
}

func FuzzDecodeHeader(f *testing.F) {
	c := Config{}.withDefaults()
	ps, _ := poolSize(c)
	f.Add(encodeHeader(c, uint64(ps)))
	wq := Config{Pattern: WorkQueue, RingDepth: 4, MaxMessage: 100, Keep: true}.withDefaults()
	ps, _ = poolSize(wq)
	f.Add(encodeHeader(wq, uint64(ps)))
	f.Add([]byte{})
	f.Add(make([]byte, hdrImmutable+4))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := decodeHeader(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrBadMagic) && !errors.Is(err, ErrVersion) {
				t.Fatalf("error %v is none of ErrCorrupt, ErrBadMagic, ErrVersion", err)
			}
			return
		}
		if err := h.cfg.validate(); err != nil {
			t.Fatalf("accepted a header with an invalid configuration: %v", err)
		}
	})
}

func FuzzDecodeEntry(f *testing.F) {
	c := Config{MaxSubscribers: 2, MaxPublishers: 1, MaxProcesses: 1}.withDefaults()
	valid := alignedBuf(entrySize)
	u64(valid, peState).Store(psWord(os.Getpid(), 3, roleSubscriber, psActive))
	f.Add(valid, 0)
	f.Add(make([]byte, entrySize), 3)
	relay := alignedBuf(entrySize)
	copy(relay, valid)
	k, _ := encodeRelayKind("nats-out")
	u64(relay, peRelayKind).Store(k)
	u64(relay, peRelayMsgs).Store(7)
	f.Add(relay, 0)
	bad := alignedBuf(entrySize)
	copy(bad, relay)
	u64(bad, peRelayKind).Store(k &^ 0xff00) // a zero byte inside the kind
	f.Add(bad, 0)
	f.Fuzz(func(t *testing.T, raw []byte, slot int) {
		table := alignedBuf(c.participants() * entrySize)
		copy(table[max(0, min(slot, c.participants()-1))*entrySize:], raw)
		e, err := decodeEntry(table, slot, c)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			return
		}
		if e.State > psCleaning || (e.State != psFree && e.Role != roleFor(slot, c)) {
			t.Fatalf("accepted %+v", e)
		}
		if k := e.Relay.Kind; k != "" {
			if w, err := encodeRelayKind(k); err != nil || w != u64(table[slot*entrySize:], peRelayKind).Load() {
				t.Fatalf("accepted relay kind %q (%v)", k, err)
			}
		} else if e.Relay != (RelayStats{}) {
			t.Fatalf("relay figures without a kind: %+v", e.Relay)
		}
	})
}

// wqSlotForTest returns the slot of the work queue's ring that serves
// position pos (turn, length, reserved, then the payload), and the ring's
// dequeue index word; the offsets are docs/ring.md's.
func wqSlotForTest(ch *Channel, pos uint64) []byte {
	slot := ch.cfg.MaxMessage + wqHeader
	stride := (16 + (slot+7)&^7 + 63) &^ 63
	off := 320 + int(pos%uint64(ch.cfg.RingDepth))*stride
	return ch.wqMem[off : off+stride]
}

func wqHeadForTest(ch *Channel) *atomic.Uint64 { return u64(ch.wqMem, 128) }

// TestCorruptSharedState writes impossible values into the shared words a
// consumer trusts least (a queue slot's length and turn, the dequeue
// index, a participant entry) and checks that calls return ErrCorrupt (or
// find nothing) and neither panic nor hang.
func TestCorruptSharedState(t *testing.T) {
	name := fmt.Sprintf("shmkit-corrupt-%d", os.Getpid())
	ch, err := Create(name, Config{MaxMessage: 64, RingDepth: 4, Pattern: WorkQueue})
	if err != nil {
		t.Fatal(err)
	}
	defer Remove(name)
	defer ch.Close()
	cons, _ := ch.Consumer()
	prod, _ := ch.Producer()
	sub, pub := cons.Subscriber, prod.Publisher
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	slot := func() []byte { return wqSlotForTest(ch, wqHeadForTest(ch).Load()) }
	cases := []struct {
		name    string
		corrupt func()
		restore func()
	}{
		{"length past the slot", func() { u32(slot(), 8).Store(1 << 20) }, nil},
		{"length under the message header", func() { u32(slot(), 8).Store(3) }, nil},
		{"turn of a later lap", func() { u64(slot(), 0).Add(8) }, func() { u64(slot(), 0).Add(^uint64(7)) }},
	}
	for _, c := range cases {
		if err := pub.Send(ctx, []byte("hello")); err != nil {
			t.Fatalf("%s: send: %v", c.name, err)
		}
		c.corrupt()
		if _, err := sub.TryReceive(); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", c.name, err)
		}
		if c.restore != nil {
			c.restore()
			smp, err := sub.TryReceive()
			if err != nil || string(smp.Bytes()) != "hello" {
				t.Fatalf("%s: after the repair: %v", c.name, err)
			}
			smp.Release()
		}
	}
	// A dequeue index far ahead: the queue reads as empty, nothing waits
	// for ever or panics.
	h := wqHeadForTest(ch)
	h.Add(1000)
	if _, err := sub.TryReceive(); err != nil && !errors.Is(err, ErrWouldBlock) && !errors.Is(err, ErrCorrupt) {
		t.Errorf("dequeue index far away: %v", err)
	}
	h.Add(^uint64(999))
	// A participant entry with an impossible state is reported by Stats.
	u64(ch.entry(sub.slot), peState).Store(psWord(os.Getpid(), 1, rolePublisher, psActive))
	if _, err := ch.Stats(); !errors.Is(err, ErrCorrupt) {
		t.Errorf("entry with a publisher in a subscriber slot: %v, want ErrCorrupt", err)
	}
	u64(ch.entry(sub.slot), peState).Store(sub.w)
}

// TestCorruptLog writes impossible values into a publisher's log (a
// record's type, size and length words, a reader line's state byte) and
// checks that the subscriber and publisher get ErrCorrupt, never a panic
// or a hang.
func TestCorruptLog(t *testing.T) {
	name := fmt.Sprintf("shmkit-corruptlog-%d", os.Getpid())
	ch, err := Create(name, Config{MaxMessage: 64, RingDepth: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer Remove(name, WithForce())
	defer ch.Close()
	sub, _ := ch.Subscriber()
	pub, _ := ch.Publisher()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	mem, err := ch.seg.RegionBytes(regionRings)
	if err != nil {
		t.Fatal(err)
	}
	j := ch.cfg.pubIndex(pub.slot)
	lm := mem[j*logSize(ch.cfg):]
	data := lm[320+64*ch.cfg.MaxSubscribers:]
	cases := []struct {
		name        string
		off         int // offset in the record header
		size, value uint64
	}{
		{"record type", 24, 2, 9},
		{"record size", 20, 4, 40},
		{"record length past its size", 16, 4, 1 << 20},
	}
	for _, c := range cases {
		pos := ch.logs[j].Tail()
		if err := pub.Send(ctx, []byte("hello")); err != nil {
			t.Fatalf("%s: send: %v", c.name, err)
		}
		rec := data[int(pos)%ch.logs[j].Cap():]
		switch c.size {
		case 2:
			binary.LittleEndian.PutUint16(rec[c.off:], uint16(c.value))
		case 4:
			binary.LittleEndian.PutUint32(rec[c.off:], uint32(c.value))
		}
		if _, err := sub.TryReceive(); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", c.name, err)
		}
		var buf [64]byte
		if _, err := sub.ReceiveInto(ctx, buf[:]); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: ReceiveInto: %v, want ErrCorrupt", c.name, err)
		}
		// Skip the broken record for the next case.
		sub.readers[j] = nil
		sub.readers[j], _ = ch.logs[j].JoinAt(sub.slot+1, 99)
		sub.readers[j].Close()
		ch.logs[j].RemoveReaders(logOwner(sub.slot, sub.w))
		sub.readers[j], err = ch.logs[j].JoinAt(sub.slot, logOwner(sub.slot, sub.w))
		if err != nil {
			t.Fatal(err)
		}
	}
	// A reader line whose state byte no reader writes stops the publisher
	// (when it next reads the lines) with ErrCorrupt, not a hang.
	binary.LittleEndian.PutUint64(lm[320+64*(ch.cfg.MaxSubscribers-1):], 0x77)
	for i := 0; ; i++ {
		err := pub.Send(ctx, make([]byte, 64))
		if errors.Is(err, ErrCorrupt) {
			break
		}
		if err != nil || i > 1000 {
			t.Fatalf("bad reader line: %v after %d sends", err, i)
		}
		if i%2 == 0 {
			var buf [64]byte
			sub.ReceiveInto(ctx, buf[:])
		}
	}
	binary.LittleEndian.PutUint64(lm[320+64*(ch.cfg.MaxSubscribers-1):], 0)
}

// FuzzQueue overwrites a work queue's ring (indices, events, slots, claim
// records) with arbitrary bytes, as a hostile or broken peer could, and
// runs a consumer's and a producer's calls on it: each returns, none
// panics. The channel is a memfd one: the fuzzing engine kills its
// workers without running deferred calls, and a named segment would stay
// behind in /dev/shm.
func FuzzQueue(f *testing.F) {
	ch, err := Create("fuzzq", Config{Backend: Memfd, Pattern: WorkQueue, MaxMessage: 16, RingDepth: 4, MaxPublishers: 1, MaxSubscribers: 1,
		MaxLoans: 1, MaxHeld: 2, Policy: DropNewest})
	if err != nil {
		f.Fatal(err)
	}
	defer ch.Close()
	cons, _ := ch.Consumer()
	prod, _ := ch.Producer()
	sub, pub := cons.Subscriber, prod.Publisher
	ctx := context.Background()
	_ = pub.Send(ctx, []byte("seed"))
	snap := append([]byte(nil), ch.wqMem...)
	f.Add(uint16(0), []byte{})
	f.Add(uint16(256), []byte("\x05\x00\x00\x00\x00\x00\x00\x00\xff\xff"))
	f.Add(uint16(64), make([]byte, 128))
	f.Fuzz(func(t *testing.T, off uint16, raw []byte) {
		copy(ch.wqMem, snap)
		copy(ch.wqMem[64+int(off)%(len(ch.wqMem)-64):], raw)
		if smp, err := sub.TryReceive(); err == nil {
			_ = smp.Bytes()
			_ = smp.Release()
		}
		var buf [8]byte
		_, _, _ = sub.wqInto(buf[:])
		if s, err := pub.Loan(4); err == nil {
			_ = s.Discard()
		}
		_ = pub.Send(ctx, []byte("x"))
		_, _ = ch.Stats()
	})
}

// TestStaleRemovingFlag: a remover that died before the unlink leaves its
// pid in the header; the next Open clears it and joins. Keep leaves the
// name in place.
func TestStaleRemovingFlag(t *testing.T) {
	name := fmt.Sprintf("shmkit-stale-%d", os.Getpid())
	ch, err := Create(name, Config{MaxMessage: 64, RingDepth: 4, Keep: true})
	if err != nil {
		t.Fatal(err)
	}
	defer Remove(name)
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skip(err)
	}
	u32(ch.hdr, hdrRemoving).Store(uint32(cmd.Process.Pid)) // dead now
	peer, err := Open(name)
	if err != nil {
		t.Fatalf("open with a dead remover's flag: %v", err)
	}
	if got := u32(ch.hdr, hdrRemoving).Load(); got != 0 {
		t.Fatalf("flag %d left", got)
	}
	peer.Close()
	ch.Close()
	again, err := Open(name) // Keep: the name outlives its participants
	if err != nil {
		t.Fatalf("open a kept channel: %v", err)
	}
	again.Close()
}

// FuzzTapSlot feeds arbitrary bytes to the tap region decoders as a tap
// would meet them in shared memory: the geometry, a slot at any position
// and the tap entries. Nothing may panic or read out of range; whatever is
// accepted stays within the snap length.
func FuzzTapSlot(f *testing.F) {
	t, mem, _ := testTapRing(f, 2, 16)
	t.copyOut(9, 9|3<<8, 7, []byte("hello, tap"))
	t.copyOut(9, 9|3<<8, 8, []byte("a message longer than the snap"))
	u64(mem, tpEntries+teState).Store(psWord(1, 1, 0, psActive))
	t.active.Store(1)
	f.Add(append([]byte(nil), mem...), uint64(0))
	f.Add(append([]byte(nil), mem...), uint64(1))
	f.Add(append([]byte(nil), mem...), uint64(2))
	f.Add(mem[:tpRing], uint64(0))
	f.Add([]byte{}, uint64(0))
	cfg := Config{MaxMessage: 100}.withDefaults()
	f.Fuzz(func(t *testing.T, b []byte, pos uint64) {
		mem := alignedBuf(len(b))
		copy(mem, b)
		taps, err := readTaps(mem)
		if err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("readTaps: %v is not ErrCorrupt", err)
		}
		if len(taps) > MaxTaps {
			t.Fatalf("%d taps", len(taps))
		}
		g, err := decodeTapRegion(mem, len(mem))
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("decodeTapRegion: %v is not ErrCorrupt", err)
			}
			return
		}
		if tapRegionSize(g.slots, g.snap) > len(mem) {
			t.Fatalf("accepted geometry %+v for %d bytes", g, len(mem))
		}
		buf := make([]uint64, g.snap/8)
		for _, p := range []uint64{pos, pos + 1, 0} {
			r, res := readTapSlot(mem, g, p, buf)
			if res != tapOK {
				continue
			}
			if len(r.Data) != min(r.Len, g.snap) || r.Len < 0 {
				t.Fatalf("record of len %d with %d bytes, snap %d", r.Len, len(r.Data), g.snap)
			}
			tp := &Tap{cfg: cfg}
			_ = tp.check(r)
		}
	})
}

// TestCorruptStateByte: a delivery-ring slot (a work queue's) whose state
// byte holds none of the four states is ErrCorrupt for TryReceive and for
// a Receive that waits (which spun at 100 % CPU past its context before),
// and Close of the channel returns (it waited for that Receive for ever).
// TestCorruptLogWaiting is the same for a publisher log's record.
func TestCorruptStateByte(t *testing.T) {
	name := fmt.Sprintf("shmkit-corrupt-state-%d", os.Getpid())
	ch, err := Create(name, Config{MaxMessage: 64, RingDepth: 4, Pattern: WorkQueue})
	if err != nil {
		t.Fatal(err)
	}
	defer Remove(name, WithForce())
	cons, _ := ch.Consumer()
	sub := cons.Subscriber
	u64(wqSlotForTest(ch, wqHeadForTest(ch).Load()), 0).Store(7) // no lap's turn of position 0 is 7
	if _, err := sub.TryReceive(); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("TryReceive: %v, want ErrCorrupt", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got := make(chan error, 1)
	go func() { _, err := sub.Receive(ctx); got <- err }()
	corruptEnds(t, ch, got)
}

func TestCorruptLogWaiting(t *testing.T) {
	name := fmt.Sprintf("shmkit-corrupt-logw-%d", os.Getpid())
	ch, err := Create(name, Config{MaxMessage: 64, RingDepth: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer Remove(name, WithForce())
	sub, _ := ch.Subscriber()
	pub, _ := ch.Publisher()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	mem, err := ch.seg.RegionBytes(regionRings)
	if err != nil {
		t.Fatal(err)
	}
	j := ch.cfg.pubIndex(pub.slot)
	data := mem[j*logSize(ch.cfg)+320+64*ch.cfg.MaxSubscribers:]
	got := make(chan error, 1)
	go func() { _, err := sub.Receive(ctx); got <- err }() // waits: nothing yet
	time.Sleep(10 * time.Millisecond)                      // not a synchronisation: let it park (either way the test holds)
	// A record whose type no writer writes, published as the writer would.
	binary.LittleEndian.PutUint32(data[20:], 64)   // size
	binary.LittleEndian.PutUint16(data[24:], 0x77) // type
	u64(data, 0).Store(1)                          // pos+1 of position 0
	ch.logs[j].NotEmpty().Notify()
	corruptEnds(t, ch, got)
}

// corruptEnds checks that the Receive whose result got carries ends with
// ErrCorrupt, and that ch's Close then returns (neither may hang on a word
// no writer produces).
func corruptEnds(t *testing.T, ch *Channel, got <-chan error) {
	t.Helper()
	select {
	case err := <-got:
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Receive: %v, want ErrCorrupt", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Receive did not return")
	}
	closed := make(chan error, 1)
	go func() { closed <- ch.Close() }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
}
