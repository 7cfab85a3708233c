package shmkit

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/shmkit/shmkit/internal/atomicx"
	"github.com/shmkit/shmkit/internal/checksum"
	"github.com/shmkit/shmkit/internal/fourcc"
	"github.com/shmkit/shmkit/ring"
)

// The byte layout of every shared structure of a channel. docs/channels.md
// carries the same tables; layout_test.go checks that they agree.

// Regions of a channel's segment (segment table of contents).
const (
	regionHeader = "chan"
	regionParts  = "parts"
	regionRings  = "rings"
	regionPool   = "pool"
)

var (
	// chanMagic is the first word of the channel header region.
	chanMagic = fourcc.Make("SHCH")
	kindChan  = fourcc.Make("CHAN")
	kindParts = fourcc.Make("PART")
	kindPool  = fourcc.Make("SLAB")
)

// layoutVersion is the channel layout version this code writes and reads.
const layoutVersion = 3

// Channel header (region "chan"). The immutable part [0, hdrImmutable) is
// written once by Create and covered by the CRC-32C at hdrCRC; the mutable
// words after it change while the channel lives.
const (
	hdrMagic       = 0  // uint32 chanMagic, stored last by Create
	hdrVersion     = 4  // uint32 layoutVersion
	hdrPattern     = 8  // uint32 Pattern
	hdrPolicy      = 12 // uint32 Policy
	hdrMaxMessage  = 16 // uint32
	hdrRingDepth   = 20 // uint32
	hdrMaxPubs     = 24 // uint32
	hdrMaxSubs     = 28 // uint32
	hdrMaxProcs    = 32 // uint32
	hdrChunks      = 36 // uint32 chunks per size class
	hdrPoolSize    = 40 // uint64 bytes of the pool region
	hdrLiveness    = 48 // uint64 liveness interval in ns
	hdrEntrySize   = 56 // uint32 participant entry size
	hdrRingSize    = 60 // uint32 bytes per ring
	hdrFlags       = 64 // uint32 bit 0: Keep
	hdrMaxLoans    = 68 // uint32 samples one publisher may hold loaned (0 in channels made before it: DefaultMaxLoans)
	hdrMaxHeld     = 72 // uint32 samples a subscriber may hold
	hdrCRC         = 124
	hdrImmutable   = 124 // bytes covered by the CRC
	hdrRemoving    = 128 // uint32: pid of the last participant while it removes the name, else 0
	hdrTypeFP      = 136 // uint64 fingerprint of the typed message, 0 = untyped
	hdrPubJoins    = 144 // uint64 publishers (producers) that ever joined
	hdrFreed       = 160 // futex.Event: unused since layout 3 (no message lives in the pool)
	hdrFrees       = 168 // uint32 unused
	hdrLoanWaiters = 172 // uint32 unused
	hdrJoinedEv    = 176 // futex.Event: WaitFor sleeps here; every participant that becomes active notifies
	hdrSize        = 192
)

// Participant entry (region "parts", one entry per participant slot).
// Slots [0, MaxSubscribers) are subscribers (consumers), slot k owning
// reader line k of every publisher's log (pub/sub); then publishers
// (producers), slot MaxSubscribers+j writing log j; then Channel handles
// (one per attached process handle).
const (
	peState   = 0   // uint64 state word (see state.go)
	pePID     = 8   // uint32 process id
	peStart   = 16  // uint64 process start time (clock ticks, /proc/PID/stat field 22)
	peJoined  = 24  // uint64 join time, unix ns
	peMsgs    = 64  // uint64 messages published / received (owner only)
	peBytes   = 72  // uint64 bytes published / received (owner only)
	peDrops   = 80  // uint64 publisher: messages it dropped for some subscriber (owner only)
	peBlocked = 88  // uint64 ns spent blocked (owner only)
	peActive  = 96  // uint64 last activity, unix ns (owner only)
	peLoans   = 104 // uint64 publisher: samples loaned and not yet published or discarded (owner only)
	peMissed  = 128 // uint64 subscriber: its messages dropped by publishers (atomic add by them)
	pePubRef  = 136 // uint64 unused since layout 3, zero
	// The relay block (relay.go): written by the owner only, zero when the
	// participant is no relay.
	peRelayKind       = 144 // 8 bytes ASCII [a-z0-9._-], zero padded; 0 = not a relay
	peRelayMsgs       = 152 // uint64 messages handed to / taken from the far side
	peRelayBytes      = 160 // uint64 payload bytes handed to / taken from the far side
	peRelayDrops      = 168 // uint64 messages dropped on the far side
	peRelayReconnects = 176 // uint64 reconnects to the far side
	peRelayLag        = 184 // uint64 messages not yet confirmed (gauge)
	peHeld            = 192 // heldSlots × uint64: refs a subscriber holds unreleased
	heldSlots         = 40
	entrySize         = peHeld + 8*heldSlots // 512
)

// Pool chunk: the pool region keeps one chunk per size class (see
// Config.WorstCaseChunks); its chunks start with a message header of
// msgHeaderSize bytes.
const msgHeaderSize = 64

// u32 and u64 are word.U32 and word.U64 with the checks inline: the hot
// path takes some twenty words per message, and word's out-of-line checks
// were a fifth of its instructions. An offset out of range panics (the
// slice expression), a misaligned word panics too: both are programmer
// errors (offsets from shared memory are validated before they get here).
const errMisaligned = "shmkit: misaligned shared word"

func u32(mem []byte, off int) *atomic.Uint32 {
	p := unsafe.Pointer(unsafe.SliceData(mem[off : off+4]))
	if uintptr(p)&3 != 0 {
		panic(errMisaligned)
	}
	return (*atomic.Uint32)(p)
}

func u64(mem []byte, off int) *atomic.Uint64 {
	p := unsafe.Pointer(unsafe.SliceData(mem[off : off+8]))
	if uintptr(p)&7 != 0 {
		panic(errMisaligned)
	}
	return (*atomic.Uint64)(p)
}

// add64 adds d to a counter only its owner writes: a load and a release
// store, no locked instruction.
func add64(p *atomic.Uint64, d uint64) { atomicx.StoreRelease64(p, p.Load()+d) }

func crc32c(b []byte) uint32 { return checksum.CRC32C(b) }

// header is the decoded immutable part of a channel header.
type header struct {
	version   uint32
	cfg       Config
	poolSize  uint64
	entrySize uint32
	ringSize  uint32
}

// encodeHeader returns the immutable part with its CRC, magic included.
func encodeHeader(c Config, poolSize uint64) []byte {
	b := make([]byte, hdrImmutable+4)
	le := binary.LittleEndian
	le.PutUint32(b[hdrMagic:], chanMagic)
	le.PutUint32(b[hdrVersion:], layoutVersion)
	le.PutUint32(b[hdrPattern:], uint32(c.Pattern))
	le.PutUint32(b[hdrPolicy:], uint32(c.Policy))
	le.PutUint32(b[hdrMaxMessage:], uint32(c.MaxMessage))
	le.PutUint32(b[hdrRingDepth:], uint32(c.RingDepth))
	le.PutUint32(b[hdrMaxPubs:], uint32(c.MaxPublishers))
	le.PutUint32(b[hdrMaxSubs:], uint32(c.MaxSubscribers))
	le.PutUint32(b[hdrMaxProcs:], uint32(c.MaxProcesses))
	le.PutUint32(b[hdrChunks:], uint32(c.ChunksPerClass))
	le.PutUint64(b[hdrPoolSize:], poolSize)
	le.PutUint64(b[hdrLiveness:], uint64(c.LivenessInterval))
	le.PutUint32(b[hdrEntrySize:], entrySize)
	le.PutUint32(b[hdrRingSize:], uint32(ringUnit(c)))
	le.PutUint32(b[hdrMaxHeld:], uint32(c.MaxHeld))
	if c.Keep {
		le.PutUint32(b[hdrFlags:], 1)
	}
	le.PutUint32(b[hdrMaxLoans:], uint32(c.MaxLoans))
	le.PutUint32(b[hdrCRC:], crc32c(b[:hdrImmutable]))
	return b
}

// decodeHeader validates a copy of the immutable part of a channel header
// (at least hdrImmutable+4 bytes). It never trusts a field before checking
// it: wrong magic is ErrBadMagic, another version ErrVersion, anything else
// that does not hold ErrCorrupt.
func decodeHeader(b []byte) (header, error) {
	le := binary.LittleEndian
	if len(b) < hdrImmutable+4 {
		return header{}, fmt.Errorf("%w: header of %d bytes", ErrCorrupt, len(b))
	}
	if m := le.Uint32(b[hdrMagic:]); m != chanMagic {
		return header{}, fmt.Errorf("%w: magic %#08x", ErrBadMagic, m)
	}
	if v := le.Uint32(b[hdrVersion:]); v != layoutVersion {
		return header{}, fmt.Errorf("%w: layout version %d, this code reads %d", ErrVersion, v, layoutVersion)
	}
	if sum, want := le.Uint32(b[hdrCRC:]), crc32c(b[:hdrImmutable]); sum != want {
		return header{}, fmt.Errorf("%w: header checksum %#08x, contents give %#08x", ErrCorrupt, sum, want)
	}
	h := header{version: layoutVersion}
	u := func(off int) int { return int(le.Uint32(b[off:])) }
	h.cfg = Config{
		Pattern:        Pattern(le.Uint32(b[hdrPattern:])),
		Policy:         Policy(le.Uint32(b[hdrPolicy:])),
		MaxMessage:     u(hdrMaxMessage),
		RingDepth:      u(hdrRingDepth),
		MaxPublishers:  u(hdrMaxPubs),
		MaxSubscribers: u(hdrMaxSubs),
		MaxProcesses:   u(hdrMaxProcs),
		ChunksPerClass: u(hdrChunks),
		MaxLoans:       u(hdrMaxLoans),
		MaxHeld:        u(hdrMaxHeld),
	}
	if h.cfg.MaxLoans == 0 {
		h.cfg.MaxLoans = DefaultMaxLoans // a channel made before the field
	}
	switch le.Uint32(b[hdrFlags:]) {
	case 0:
	case 1:
		h.cfg.Keep = true
	default:
		return header{}, fmt.Errorf("%w: flags %#x", ErrCorrupt, le.Uint32(b[hdrFlags:]))
	}
	lv := le.Uint64(b[hdrLiveness:])
	if lv > uint64(1<<62) {
		return header{}, fmt.Errorf("%w: liveness interval %d ns", ErrCorrupt, lv)
	}
	h.cfg.LivenessInterval = time.Duration(lv)
	if err := h.cfg.validate(); err != nil {
		return header{}, fmt.Errorf("%w: header holds an impossible configuration: %v", ErrCorrupt, err)
	}
	h.poolSize = le.Uint64(b[hdrPoolSize:])
	h.entrySize = le.Uint32(b[hdrEntrySize:])
	h.ringSize = le.Uint32(b[hdrRingSize:])
	if h.entrySize != entrySize || int(h.ringSize) != ringUnit(h.cfg) {
		return header{}, fmt.Errorf("%w: entry size %d, ring size %d, layout says %d and %d",
			ErrCorrupt, h.entrySize, h.ringSize, entrySize, ringUnit(h.cfg))
	}
	want, err := poolSize(h.cfg)
	if err != nil || uint64(want) != h.poolSize {
		return header{}, fmt.Errorf("%w: pool size %d, configuration needs %d (%v)", ErrCorrupt, h.poolSize, want, err)
	}
	return h, nil
}

// participants returns the number of entries of the participant table.
func (c Config) participants() int { return c.MaxSubscribers + c.MaxPublishers + c.MaxProcesses }

// ringUnit is the header's ring_size: bytes per publisher log (pub/sub)
// or of the queue's ring (work queue).
func ringUnit(c Config) int {
	if c.Pattern == PubSub {
		return logSize(c)
	}
	n, _ := wqSize(c)
	return n
}

// ringsRegionSize is the size of the "rings" region: the publishers' logs
// (pub/sub) or the work queue's ring.
func ringsRegionSize(c Config) int {
	if c.Pattern == PubSub {
		return c.MaxPublishers * logSize(c)
	}
	n, _ := wqSize(c) // validate refuses a geometry with an error
	return n
}

func ringsRegionKind(c Config) uint32 {
	if c.Pattern == PubSub {
		return kindLogs
	}
	return ring.KindMPMC
}
