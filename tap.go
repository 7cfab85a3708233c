package shmkit

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/shmkit/shmkit/internal/atomicx"
	"github.com/shmkit/shmkit/internal/fourcc"
	"github.com/shmkit/shmkit/segment"
)

// Taps. A tap watches a channel's messages as they pass without taking
// part in the channel: it holds no participant slot, no ring and no chunk,
// so it can neither slow a subscriber down nor hold a publisher back. A
// reader line of its own in each log would hold publishers back (or, under
// DropOldest, lose what it cannot keep up with, as a tap may), and a work
// queue gives each message to one consumer; so the publisher copies, and
// only while a tap is attached.
//
// Region "tap" (layout:tap in docs/channels.md) holds the tap ring's
// geometry (fixed by Create), the active word (bit k: tap slot k is
// attached), MaxTaps tap entries, the ring's tail and the ring's slots
// (layout:tap_slot). Publish loads the active word: while it is 0 that
// load is all a tap costs. Otherwise it claims a position p with a
// fetch-add on the tail and writes slot p%N as a seqlock:
//
//  1. load the slot's seq word; give up (the tap counts a miss) if another
//     writer is writing it or a later position has been written there
//     already; else CAS it to (p, this publisher, WRITING). The CAS, not a
//     plain store, makes one writer at a time the slot's owner: two
//     publishers a whole lap apart (one preempted between its fetch-add and
//     its copy) could otherwise interleave their words under a seq word
//     that one of them then marks whole.
//  2. store the words {len|publisher, publisher seq, captured bytes =
//     min(len, snap) padded with zeros to 8 bytes} with
//     atomicx.StoreRelease64 and StoreRelease64s, word by word;
//  3. store seq (p, this publisher, WRITTEN) with a release store.
//
// Ordering (writer): the CAS of step 1 is a full barrier, and every store
// of step 2 is a release store, ordered after every earlier store of the
// thread, the CAS included; that is what keeps a tap from seeing a word of
// step 2 while still seeing the old seq, on weakly ordered CPUs too,
// without a store-store fence (on amd64 a release store is a plain MOV and
// x86-TSO keeps stores in order; on arm64 it is STLR). Step 3's release
// store is ordered after step 2.
//
// Ordering (tap): load seq (acquire); unless it is (p, WRITTEN) for the
// position p the tap wants next, the slot is not ready (wait) or lapped
// (a miss); load the words with acquire loads, so the re-load of seq that
// follows is not performed before any of them; seq unchanged means no
// writer touched the slot meanwhile (a writer's CAS precedes its word
// stores), and the copy is whole. A changed seq is a miss.
//
// No futex wake-up: a syscall per message would cost the publisher more
// than the copy. A tap polls: it spins a little, then sleeps with a
// back-off up to tapMaxSleep. A tap that falls more than N positions
// behind loses the oldest and counts them (TapStats.Missed).
//
// Liveness: a tap claims a tap entry (CAS of its state word to its pid,
// then its start time, then ACTIVE), then sets its bit in the active word;
// Close clears the bit, then frees the entry. The liveness scan of every
// participant (liveness.go) checks the tap entries too: a dead tap's entry
// is taken by CAS (to CLEANING with the scanner's pid, so two scanners
// agree and a scanner that dies is itself taken over), its bit cleared and
// the entry freed, so a SIGKILLed tap does not leave publishers copying.
// A publisher that dies between its CAS and its final store leaves a slot
// WRITING; its cleaner (Channel.clean) marks such slots ABANDONED.

// Region "tap".
const (
	regionTap = "tap"

	tpSlots    = 0   // uint32 slots N of the tap ring (a power of two; 0: taps disabled)
	tpSnap     = 4   // uint32 bytes captured per message (a multiple of 8)
	tpSlotSize = 8   // uint32 bytes per tap slot
	tpMaxTaps  = 12  // uint32 tap entries (MaxTaps)
	tpActive   = 64  // uint64 bit k: tap entry k is attached (read by every Publish)
	tpEntries  = 128 // MaxTaps × tap entry
	tpTail     = 256 // uint64 next position of the tap ring
	tpRing     = 320 // N × slot

	teState    = 0  // uint64 pid<<32 | generation<<16 | state (participant states)
	teStart    = 8  // uint64 the tap's process start time
	teReceived = 16 // uint64 messages the tap received whole (owner only)
	teMissed   = 24 // uint64 messages the tap missed (owner only)
	teSize     = 32

	tsSeq    = 0  // uint64 (position+1)<<10 | publisher slot<<2 | slot state
	tsLenPub = 8  // uint64 payload length | publisher id<<32
	tsPubSeq = 16 // uint64 the publisher's sequence number
	tsData   = 24 // the captured bytes, padded to 8
)

// Tap slot states (low 2 bits of a slot's seq word).
const (
	tsEmpty     = 0 // never written, or abandoned by a writer that died
	tsWriting   = 1
	tsWritten   = 2
	tsPosShift  = 10
	tsSlotShift = 2
)

// MaxTaps is the most taps attached to one channel at once.
const MaxTaps = 4

// Defaults and limits of the tap ring (Config.TapSlots, Config.TapSnap).
const (
	DefaultTapSlots = 256
	DefaultTapSnap  = 256
	MaxTapSlots     = 1 << 16
	MaxTapSnap      = 1 << 16
)

var kindTap = fourcc.Make("TAPR")

func tapSeq(pos uint64, slot int, st uint64) uint64 {
	return (pos+1)<<tsPosShift | uint64(uint8(slot))<<tsSlotShift | st
}

func tapSlotSize(snap int) int { return (tsData + snap + 63) &^ 63 }

// tapRegionSize is the size of region "tap" for n slots of snap bytes.
func tapRegionSize(n, snap int) int { return tpRing + n*tapSlotSize(snap) }

// tapGeom is a validated tap ring geometry.
type tapGeom struct {
	slots, snap, slotSize int
}

// decodeTapRegion validates the geometry words at the start of a tap
// region of length bytes (b: the region, or a copy of its first tpRing
// bytes or more). Anything impossible is ErrCorrupt; slots 0 is a channel
// created with taps disabled.
func decodeTapRegion(b []byte, length int) (tapGeom, error) {
	if len(b) < tpRing || length < len(b) {
		return tapGeom{}, fmt.Errorf("%w: tap region of %d bytes", ErrCorrupt, len(b))
	}
	le := binary.LittleEndian
	g := tapGeom{slots: int(le.Uint32(b[tpSlots:])), snap: int(le.Uint32(b[tpSnap:])), slotSize: int(le.Uint32(b[tpSlotSize:]))}
	switch {
	case g.slots < 0 || g.slots > MaxTapSlots || g.slots&(g.slots-1) != 0:
		return tapGeom{}, fmt.Errorf("%w: tap ring of %d slots", ErrCorrupt, g.slots)
	case g.snap < 8 || g.snap > MaxTapSnap || g.snap%8 != 0:
		return tapGeom{}, fmt.Errorf("%w: tap snap length %d", ErrCorrupt, g.snap)
	case g.slotSize != tapSlotSize(g.snap):
		return tapGeom{}, fmt.Errorf("%w: tap slot of %d bytes, snap %d needs %d", ErrCorrupt, g.slotSize, g.snap, tapSlotSize(g.snap))
	case le.Uint32(b[tpMaxTaps:]) != MaxTaps:
		return tapGeom{}, fmt.Errorf("%w: %d tap entries, this code has %d", ErrCorrupt, le.Uint32(b[tpMaxTaps:]), MaxTaps)
	case length < tapRegionSize(g.slots, g.snap):
		return tapGeom{}, fmt.Errorf("%w: tap region of %d bytes holds no %d slots of %d", ErrCorrupt, length, g.slots, g.slotSize)
	}
	return g, nil
}

// tapRing is a channel's tap region as its publishers write it.
type tapRing struct {
	mem    []byte
	geo    tapGeom
	mask   uint64
	active *atomic.Uint64
	tail   *atomic.Uint64
}

func newTapRing(mem []byte, g tapGeom) *tapRing {
	return &tapRing{mem: mem, geo: g, mask: uint64(g.slots) - 1, active: u64(mem, tpActive), tail: u64(mem, tpTail)}
}

// initTapRegion writes the geometry of a fresh region (Create).
func initTapRegion(mem []byte, slots, snap int) {
	le := binary.LittleEndian
	le.PutUint32(mem[tpSlots:], uint32(slots))
	le.PutUint32(mem[tpSnap:], uint32(snap))
	le.PutUint32(mem[tpSlotSize:], uint32(tapSlotSize(snap)))
	le.PutUint32(mem[tpMaxTaps:], MaxTaps)
}

// copyOut is the publisher's side: it copies message (len n, payload p,
// publisher slot and id, publisher seq) into the next tap slot. The caller
// has seen the active word non-zero (a channel has a tapRing only when it
// has tap slots).
func (t *tapRing) copyOut(slot, id int, seq uint64, p []byte) {
	pos := t.tail.Add(1) - 1
	off := int(pos&t.mask) * t.geo.slotSize
	s := t.mem[tpRing+off : tpRing+off+t.geo.slotSize]
	sw := u64(s, tsSeq)
	w := sw.Load()
	if w&3 == tsWriting || w>>tsPosShift > pos {
		return // another writer has it, or a later one wrote it: the tap misses pos
	}
	mine := tapSeq(pos, slot, tsWriting)
	if !sw.CompareAndSwap(w, mine) {
		return
	}
	at("tap.copy")
	atomicx.StoreRelease64(u64(s, tsLenPub), uint64(uint32(len(p)))|uint64(uint32(id))<<32)
	atomicx.StoreRelease64(u64(s, tsPubSeq), seq)
	c := min(len(p), t.geo.snap)
	words := unsafe.Slice((*atomic.Uint64)(unsafe.Pointer(&s[tsData])), (c+7)/8)
	full := c / 8
	if full > 0 {
		atomicx.StoreRelease64s(words[:full], unsafe.Slice((*uint64)(unsafe.Pointer(unsafe.SliceData(p))), full))
	}
	if r := c % 8; r != 0 {
		var last [8]byte
		copy(last[:], p[full*8:c])
		atomicx.StoreRelease64(&words[full], *(*uint64)(unsafe.Pointer(&last)))
	}
	atomicx.StoreRelease64(sw, tapSeq(pos, slot, tsWritten))
}

// abandon marks the slots that dead publisher slot left WRITING as empty
// (its cleaner calls it).
func (t *tapRing) abandon(slot int) {
	for i := range t.geo.slots {
		sw := u64(t.mem, tpRing+i*t.geo.slotSize+tsSeq)
		w := sw.Load()
		if w&3 == tsWriting && int(uint8(w>>tsSlotShift)) == slot {
			sw.CompareAndSwap(w, w&^3|tsEmpty)
		}
	}
}

// scanTaps clears the entries of dead taps. It returns how many it cleared.
func (t *tapRing) scanTaps() int {
	me := os.Getpid()
	n := 0
	for k := range MaxTaps {
		e := t.mem[tpEntries+k*teSize:]
		st := u64(e, teState)
		w := st.Load()
		var dead bool
		switch psState(w) {
		case psClaimed:
			dead = !processAlive(psPID(w), 0)
		case psActive:
			dead = !processAlive(psPID(w), u64(e, teStart).Load())
		case psCleaning:
			dead = psPID(w) != me && !processAlive(psPID(w), 0)
		}
		if !dead {
			continue
		}
		nw := psWord(me, psGen(w), 0, psCleaning)
		if !st.CompareAndSwap(w, nw) {
			continue
		}
		t.active.And(^bit(k))
		st.CompareAndSwap(nw, nw&^0xff|psFree)
		n++
	}
	return n
}

// TapRecord is one message as a tap saw it.
type TapRecord struct {
	// Publisher is the publisher's identity, as Sample.Publisher gives it
	// (participant slot | generation<<8).
	Publisher int
	// Seq is the publisher's sequence number of the message.
	Seq uint64
	// Len is the message's length; Data holds its first min(Len, snap)
	// bytes.
	Len int
	// Data is the captured bytes. It is the tap's own memory (a copy), valid
	// until the next Receive or TryReceive on the tap.
	Data []byte
	// Time is when the tap read the copy: the publisher reads no clock for
	// a tap (a clock read cost more than the rest of the copy, see
	// docs/channels.md), so it is later than the publish by up to the
	// tap's polling interval (about 1 ms when the channel was idle); the
	// records of one burst share one clock read (at most 64 records).
	Time time.Time
	// Missed is how many messages the tap missed just before this one
	// (it fell more than the ring's slots behind, or a copy was overwritten
	// while it read it).
	Missed uint64
}

// TapStats are a tap's own counters.
type TapStats struct {
	Slots    int    // slots of the channel's tap ring
	Snap     int    // bytes captured per message
	Received uint64 // messages received whole
	Missed   uint64 // messages lost (the tap fell behind, or a copy was overwritten)
}

// Tap watches the messages published on a channel (see OpenTap). Its
// methods are safe for concurrent use.
type Tap struct {
	seg  *segment.Segment
	t    *tapRing
	cfg  Config
	k    int    // tap entry
	w    uint64 // its state word
	e    []byte
	mu   sync.Mutex
	next uint64
	buf  []uint64
	miss uint64 // missed since the last record returned
	recv uint64
	lost uint64
	done bool
	// stuck is when the tap first found position next not yet written.
	stuck time.Time
	// clock is the time given to records, read again after a wait or
	// every 64 records (clockN counts them).
	clock  time.Time
	clockN int
}

// tapStuck is how long a tap waits for a position that the tail has
// passed but whose slot is not written yet before it counts the message as
// missed (a publisher preempted between its fetch-add and its copy, or one
// that gave the slot up, or died).
const tapStuck = 20 * time.Millisecond

// tapMaxSleep is the longest sleep of a polling tap.
const tapMaxSleep = time.Millisecond

// OpenTap attaches a tap to the named channel: from now on every
// publisher copies the first Config.TapSnap bytes of each message it
// publishes into the channel's tap ring, where the tap reads them. The tap
// takes no participant slot and holds nothing up: a tap that falls behind
// loses the oldest copies (counted). It fails with ErrNoTap on a channel
// created by a shmkit without taps or with taps disabled, ErrFull when
// MaxTaps taps are attached, and as Open does on a segment that is no
// channel. Close it to stop the publishers copying. A tap finds a channel
// by name (WithBackend for SysV and File); a memfd channel has none and
// cannot be tapped.
func OpenTap(name string, opts ...Option) (*Tap, error) {
	o := buildOptions(opts)
	so, err := o.trust.segmentOptions(nil) // WithOwner, WithGroup: whose channel the tap trusts
	if err != nil {
		return nil, err
	}
	seg, err := segment.Open(o.backend, name, so)
	if err != nil {
		return nil, fmt.Errorf("open tap on %q: %w", name, err)
	}
	tp, err := newTap(seg, o.backend)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("open tap on %q: %w", name, err), seg.Close())
	}
	return tp, nil
}

func newTap(seg *segment.Segment, b Backend) (*Tap, error) {
	hdr, err := seg.RegionBytes(regionHeader)
	if err != nil {
		if errors.Is(err, segment.ErrNoRegion) {
			return nil, fmt.Errorf("%w: %w", ErrBadMagic, err)
		}
		return nil, err
	}
	if len(hdr) < hdrSize {
		return nil, fmt.Errorf("%w: header region of %d bytes", ErrCorrupt, len(hdr))
	}
	snap := make([]byte, hdrImmutable+4)
	copy(snap, hdr)
	h, err := decodeHeader(snap)
	if err != nil {
		return nil, err
	}
	t, err := attachTapRegion(seg)
	if err != nil {
		return nil, err
	}
	if t == nil || t.geo.slots == 0 {
		return nil, ErrNoTap
	}
	tp := &Tap{seg: seg, t: t, cfg: h.cfg, buf: make([]uint64, t.geo.snap/8)}
	tp.cfg.Backend = b
	tp.cfg.TapSlots, tp.cfg.TapSnap = t.geo.slots, t.geo.snap
	if err := tp.register(); err != nil {
		return nil, err
	}
	return tp, nil
}

// attachTapRegion returns the channel's tap ring, nil when the segment has
// no tap region (created by an older shmkit).
func attachTapRegion(seg *segment.Segment) (*tapRing, error) {
	mem, err := seg.RegionBytes(regionTap)
	if errors.Is(err, segment.ErrNoRegion) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	g, err := decodeTapRegion(mem, len(mem))
	if err != nil {
		return nil, err
	}
	return newTapRing(mem, g), nil
}

// register claims a free tap entry and sets its bit in the active word.
func (tp *Tap) register() error {
	me := os.Getpid()
	start := myStart
	for k := range MaxTaps {
		e := tp.t.mem[tpEntries+k*teSize : tpEntries+(k+1)*teSize]
		st := u64(e, teState)
		w := st.Load()
		if psState(w) != psFree {
			continue
		}
		cw := psWord(me, psGen(w)+1, 0, psClaimed)
		if !st.CompareAndSwap(w, cw) {
			continue
		}
		u64(e, teStart).Store(start)
		u64(e, teReceived).Store(0)
		u64(e, teMissed).Store(0)
		aw := cw&^0xff | psActive
		if !st.CompareAndSwap(cw, aw) {
			continue // a scanner judged it dead meanwhile (it is not): try another
		}
		tp.k, tp.w, tp.e = k, aw, e
		// The bit before the tail: a publisher that copies at a position
		// at or after the one read here saw the bit.
		tp.t.active.Or(bit(k))
		tp.next = tp.t.tail.Load()
		return nil
	}
	return fmt.Errorf("%w: %d taps are attached", ErrFull, MaxTaps)
}

// Config returns the channel's configuration, TapSlots and TapSnap
// included.
func (tp *Tap) Config() Config { return tp.cfg }

// Stats returns the tap's counters.
func (tp *Tap) Stats() TapStats {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return TapStats{Slots: tp.t.geo.slots, Snap: tp.t.geo.snap, Received: tp.recv, Missed: tp.lost}
}

// Receive returns the next message published on the channel, waiting
// (polling: spin, then sleep up to 1 ms) until there is one, ctx ends, or
// the tap is closed (ErrClosed).
// The record's Data is valid until the next Receive or TryReceive. A copy
// found corrupt (a length beyond MaxMessage, a publisher that cannot be)
// is an error wrapping ErrCorrupt; the tap moves past it.
func (tp *Tap) Receive(ctx context.Context) (TapRecord, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := ctx.Err(); err != nil {
		return TapRecord{}, err
	}
	sleep := time.Duration(0)
	for spins := 0; ; spins++ {
		r, err := tp.TryReceive()
		if !errors.Is(err, ErrWouldBlock) {
			return r, err
		}
		if err := ctx.Err(); err != nil {
			return TapRecord{}, err
		}
		if spins < 64 {
			continue
		}
		sleep = min(max(2*sleep, 10*time.Microsecond), tapMaxSleep)
		tm := time.NewTimer(sleep)
		select {
		case <-ctx.Done():
			tm.Stop()
			return TapRecord{}, ctx.Err()
		case <-tm.C:
		}
	}
}

// TryReceive is Receive without waiting: ErrWouldBlock when no new message
// is ready.
func (tp *Tap) TryReceive() (TapRecord, error) {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	if tp.done {
		return TapRecord{}, ErrClosed
	}
	for {
		// The slot first: while copies are ready the tail is not read, so
		// the tap does not pull the line every publisher fetch-adds on.
		rec, res := readTapSlot(tp.t.mem, tp.t.geo, tp.next, tp.buf)
		if res != tapOK {
			tail := tp.t.tail.Load()
			switch n := uint64(tp.t.geo.slots); {
			case tail < tp.next:
				// The tail went back: forged. Start over from it.
				tp.next = tail
				return TapRecord{}, ErrWouldBlock
			case tail == tp.next:
				tp.clockN = 0
				return TapRecord{}, ErrWouldBlock
			case tail-tp.next > n:
				tp.addMiss(tail - n - tp.next)
				tp.next = tail - n
				tp.stuck = time.Time{}
				continue
			case res == tapNotYet:
				// Claimed by a publisher, not yet written: wait for it a
				// while, then count it missed.
				if tp.stuck.IsZero() {
					tp.stuck = time.Now()
					return TapRecord{}, ErrWouldBlock
				}
				if time.Since(tp.stuck) < tapStuck {
					return TapRecord{}, ErrWouldBlock
				}
			}
			tp.stuck = time.Time{}
			tp.addMiss(1)
			tp.next++
			continue
		}
		tp.stuck = time.Time{}
		tp.next++
		if err := tp.check(rec); err != nil {
			tp.addMiss(1)
			return TapRecord{}, err
		}
		rec.Missed, tp.miss = tp.miss, 0
		// One clock read per burst (and per 64 records): a clock read
		// costs more than the rest of a record.
		if tp.clockN == 0 || tp.clockN >= 64 {
			tp.clock, tp.clockN = time.Now(), 0
		}
		tp.clockN++
		rec.Time = tp.clock
		tp.recv++
		add64(u64(tp.e, teReceived), 1)
		return rec, nil
	}
}

func (tp *Tap) addMiss(n uint64) {
	tp.miss += n
	tp.lost += n
	add64(u64(tp.e, teMissed), n)
}

// check validates a whole copy against the channel's configuration.
func (tp *Tap) check(r TapRecord) error {
	slot := r.Publisher & 0xff // the publisher's index (Sample.Publisher)
	if r.Len > tp.cfg.MaxMessage || slot >= tp.cfg.MaxPublishers || r.Publisher>>24 != 0 {
		return fmt.Errorf("%w: tap copy of %d bytes from publisher %#x", ErrCorrupt, r.Len, r.Publisher)
	}
	return nil
}

// Results of readTapSlot.
const (
	tapOK     = iota
	tapNotYet // the slot holds an earlier position, or is being written for this one
	tapLost   // the slot holds a later position, or changed while read
)

// readTapSlot reads position pos of the tap ring mem (geometry g,
// validated) into buf (g.snap/8 words). It trusts nothing it reads: the
// length captured is bounded by the snap length, and the caller checks the
// rest. The record's Data aliases buf.
func readTapSlot(mem []byte, g tapGeom, pos uint64, buf []uint64) (TapRecord, int) {
	if g.slots == 0 || len(buf) < g.snap/8 {
		return TapRecord{}, tapLost
	}
	off := tpRing + int(pos&(uint64(g.slots)-1))*g.slotSize
	if off+g.slotSize > len(mem) {
		return TapRecord{}, tapLost
	}
	s := mem[off : off+g.slotSize]
	sw := u64(s, tsSeq)
	w := atomicx.LoadAcquire64(sw)
	switch p := w >> tsPosShift; {
	case p > pos+1:
		return TapRecord{}, tapLost
	case p < pos+1 || w&3 != tsWritten:
		return TapRecord{}, tapNotYet
	}
	lp := atomicx.LoadAcquire64(u64(s, tsLenPub))
	seq := atomicx.LoadAcquire64(u64(s, tsPubSeq))
	// Bounded so that it is a non-negative int on 32-bit platforms too;
	// the caller rejects anything above MaxMessage.
	n := int(min(uint64(uint32(lp)), maxMessageLimit+1))
	c := min(n, g.snap)
	words := unsafe.Slice((*atomic.Uint64)(unsafe.Pointer(&s[tsData])), (c+7)/8)
	for i := range words {
		buf[i] = atomicx.LoadAcquire64(&words[i])
	}
	if atomicx.LoadAcquire64(sw) != w {
		return TapRecord{}, tapLost
	}
	data := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(buf))), len(buf)*8)[:c]
	return TapRecord{Publisher: int(uint32(lp >> 32)), Seq: seq, Len: n, Data: data}, tapOK
}

// Close detaches the tap: it clears its bit in the active word (when no
// tap is left, publishers stop copying), frees its entry and unmaps.
// Records returned before are invalid afterwards. Close is idempotent.
func (tp *Tap) Close() error {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	if tp.done {
		return nil
	}
	tp.done = true
	st := u64(tp.e, teState)
	if st.Load() == tp.w {
		tp.t.active.And(^bit(tp.k))
		st.CompareAndSwap(tp.w, tp.w&^0xff|psFree)
	}
	tp.e, tp.t.mem, tp.buf = nil, nil, nil
	return tp.seg.Close()
}

// TapInfo is one attached tap as Inspect reads it.
type TapInfo struct {
	Slot     int
	State    string // "joining", "active" or "cleaning"
	PID      int
	Start    uint64 // the process's start time in clock ticks after boot
	Active   bool   // its bit is set in the active word (publishers copy for it)
	Received uint64
	Missed   uint64
}

// readTaps decodes the tap entries of a tap region (a copy or the live
// one) for Inspect and Stats.
func readTaps(mem []byte) ([]TapInfo, error) {
	if len(mem) < tpRing {
		return nil, fmt.Errorf("%w: tap region of %d bytes", ErrCorrupt, len(mem))
	}
	act := u64(mem, tpActive).Load()
	if act>>MaxTaps != 0 {
		return nil, fmt.Errorf("%w: tap active word %#x", ErrCorrupt, act)
	}
	var out []TapInfo
	for k := range MaxTaps {
		e := mem[tpEntries+k*teSize:]
		w := u64(e, teState).Load()
		st := psState(w)
		if st > psCleaning || psRole(w) != 0 {
			return out, fmt.Errorf("%w: tap entry %d: state word %#x", ErrCorrupt, k, w)
		}
		if st == psFree {
			continue
		}
		out = append(out, TapInfo{Slot: k, State: stateNames[st], PID: psPID(w), Start: u64(e, teStart).Load(),
			Active: act&bit(k) != 0, Received: u64(e, teReceived).Load(), Missed: u64(e, teMissed).Load()})
	}
	return out, nil
}

// bit returns bit k of a 64-bit mask.
func bit(k int) uint64 { return 1 << uint(k) }
