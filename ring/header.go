package ring

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/bits"
	"sync/atomic"
	"unsafe"

	"github.com/shmkit/shmkit/futex"
	"github.com/shmkit/shmkit/internal/checksum"
)

// Region kinds, as little-endian FourCC codes: the bytes "SPSC", "BYTE" and
// "MPMC" in memory. They are stored in the ring header and can be used as
// the kind of a region in a segment's table of contents.
const (
	KindSPSC uint32 = 'S' | 'P'<<8 | 'S'<<16 | 'C'<<24
	KindByte uint32 = 'B' | 'Y'<<8 | 'T'<<16 | 'E'<<24
	KindMPMC uint32 = 'M' | 'P'<<8 | 'M'<<16 | 'C'<<24
)

// magic is the first word of every ring header: the bytes "RING".
const magic uint32 = 'R' | 'I'<<8 | 'N'<<16 | 'G'<<24

// version is the layout version this package writes and accepts. Version 2
// switched the header checksum to CRC-32C and made the SPSC consumer read
// by slot seq words (see docs/ring.md).
const version uint32 = 2

// Alignment is the alignment every ring region must have (one cache line).
const Alignment = 64

// Layout of the control block at the start of every ring region. The
// offsets are part of the shared-memory format; docs/ring.md lists them and
// TestLayout checks both.
const (
	cacheLine = 64

	offMagic    = 0
	offKind     = 4
	offVersion  = 8
	offSlotSize = 12
	offCapacity = 16
	offSize     = 24
	offClosed   = 32
	offCheck    = 36
	offFence    = 40  // fence mode every participant agrees on (wait.go)
	offTail     = 64  // producer index (MPMC: enqueue position)
	offHead     = 128 // consumer index (MPMC: dequeue position)
	offNotEmpty = 192 // futex.Event consumers wait on
	offNotFull  = 256 // futex.Event producers wait on

	// dataOffset is where slots (or the byte ring's bytes) begin.
	dataOffset = 320

	// checkedBytes is how many header bytes the checksum covers.
	checkedBytes = 32
)

// header is the first cache line of a ring region.
type header struct {
	magic    atomic.Uint32
	kind     atomic.Uint32
	version  atomic.Uint32
	slotSize atomic.Uint32
	capacity atomic.Uint64
	size     atomic.Uint64
	closed   atomic.Uint32
	check    atomic.Uint32
	fence    atomic.Uint32 // fenceFast, fencePending or fenceStrict (wait.go)
	_        [20]byte
}

// control is the fixed part of a ring region: header, the two indices and
// the two wait points, each on its own cache line.
type control struct {
	hdr      header
	tail     atomic.Uint64
	_        [cacheLine - 8]byte
	head     atomic.Uint64
	_        [cacheLine - 8]byte
	notEmpty futex.Event
	_        [cacheLine - futex.EventSize]byte
	notFull  futex.Event
	_        [cacheLine - futex.EventSize]byte
}

// params are the creation parameters recorded in a header.
type params struct {
	kind     uint32
	slotSize uint32
	capacity uint64
	size     uint64
}

func (p params) checksum() uint32 {
	var b [checkedBytes]byte
	binary.LittleEndian.PutUint32(b[offMagic:], magic)
	binary.LittleEndian.PutUint32(b[offKind:], p.kind)
	binary.LittleEndian.PutUint32(b[offVersion:], version)
	binary.LittleEndian.PutUint32(b[offSlotSize:], p.slotSize)
	binary.LittleEndian.PutUint64(b[offCapacity:], p.capacity)
	binary.LittleEndian.PutUint64(b[offSize:], p.size)
	return checksum.CRC32C(b[:])
}

// kindName returns the four characters of a kind code, for messages.
func kindName(k uint32) string {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], k)
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return fmt.Sprintf("%#08x", k)
		}
	}
	return string(b[:])
}

// isPow2 reports whether v is a power of two (1 counts).
func isPow2(v uint64) bool { return v != 0 && v&(v-1) == 0 }

// log2 of a power of two.
func log2(v uint64) uint { return uint(bits.TrailingZeros64(v)) }

// align8 rounds n up to a multiple of 8.
func align8(n uint64) uint64 { return (n + 7) &^ 7 }

// maxRegion bounds every computed size, so that sizes fit an int and
// products cannot overflow.
const maxRegion = 1 << 46

// checkRegion checks that mem can hold size bytes at the ring alignment.
func checkRegion(mem []byte, size uint64) error {
	if uint64(len(mem)) < size {
		return fmt.Errorf("%w: region of %d bytes, ring needs %d", ErrConfig, len(mem), size)
	}
	if p := uintptr(unsafe.Pointer(unsafe.SliceData(mem))); p%Alignment != 0 {
		return fmt.Errorf("%w: region at %#x is not %d-byte aligned", ErrConfig, p, Alignment)
	}
	return nil
}

// initControl zeroes the control block of mem and writes the header; the
// magic is stored last, so an attacher that sees it sees the rest too.
// mem must already have passed checkRegion.
func initControl(mem []byte, p params) *control {
	clear(mem[:dataOffset])
	c := (*control)(unsafe.Pointer(unsafe.SliceData(mem)))
	c.hdr.kind.Store(p.kind)
	c.hdr.version.Store(version)
	c.hdr.slotSize.Store(p.slotSize)
	c.hdr.capacity.Store(p.capacity)
	c.hdr.size.Store(p.size)
	c.hdr.check.Store(p.checksum())
	c.agreeFence()
	c.hdr.magic.Store(magic)
	return c
}

// attachControl validates the header in mem for a ring of the given kind
// and returns its control block and parameters. The caller checks the
// kind-specific rules (capacity, slot size) and that size matches them.
func attachControl(mem []byte, kind uint32) (*control, params, error) {
	if len(mem) < dataOffset {
		return nil, params{}, fmt.Errorf("%w: region of %d bytes is smaller than a ring header", ErrConfig, len(mem))
	}
	if err := checkRegion(mem, dataOffset); err != nil {
		return nil, params{}, err
	}
	c := (*control)(unsafe.Pointer(unsafe.SliceData(mem)))
	if m := c.hdr.magic.Load(); m != magic {
		return nil, params{}, fmt.Errorf("%w: magic %s", ErrBadMagic, kindName(m))
	}
	if k := c.hdr.kind.Load(); k != kind {
		return nil, params{}, fmt.Errorf("%w: ring kind %s, want %s", ErrBadMagic, kindName(k), kindName(kind))
	}
	if v := c.hdr.version.Load(); v != version {
		return nil, params{}, fmt.Errorf("%w: layout version %d, want %d", ErrVersion, v, version)
	}
	p := params{
		kind:     kind,
		slotSize: c.hdr.slotSize.Load(),
		capacity: c.hdr.capacity.Load(),
		size:     c.hdr.size.Load(),
	}
	if sum := c.hdr.check.Load(); sum != p.checksum() {
		return nil, params{}, fmt.Errorf("%w: header checksum %#08x, computed %#08x", ErrCorrupt, sum, p.checksum())
	}
	if p.size > maxRegion || p.capacity > maxRegion {
		return nil, params{}, fmt.Errorf("%w: header size %d, capacity %d", ErrCorrupt, p.size, p.capacity)
	}
	if err := checkRegion(mem, p.size); err != nil {
		return nil, params{}, err
	}
	c.agreeFence()
	return c, p, nil
}

// close marks the ring closed and wakes every waiter on both sides.
func (c *control) close() {
	c.hdr.closed.Store(1)
	c.notEmpty.Notify()
	c.notFull.Notify()
}

func (c *control) isClosed() bool { return c.hdr.closed.Load() != 0 }

// distance returns tail - head at the moment of the call, or 0 when the
// shared indices are impossible (tail behind head, or more than capacity
// apart): the Len of every ring kind.
func (c *control) distance(capacity uint64) int {
	h := c.head.Load()
	t := c.tail.Load()
	if t-h > capacity {
		return 0
	}
	return int(t - h)
}

// enqueueAll enqueues every message of msgs with try (a TryEnqueueBatch),
// waiting on notFull until canPut whenever the ring is full. It returns how
// many were enqueued: len(msgs) unless an error stopped it.
func enqueueAll(ctx context.Context, o *options, c *control, notFull *futex.Event, canPut func() bool,
	try func([][]byte) (int, error), msgs [][]byte) (int, error) {
	done := 0
	for done < len(msgs) {
		n, err := try(msgs[done:])
		done += n
		if err != nil {
			return done, err
		}
		if n == 0 {
			if err := o.wait(ctx, c, notFull, canPut); err != nil {
				return done, err
			}
		}
	}
	return done, nil
}
