package allocator

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"github.com/shmkit/shmkit/futex"
)

// Allocator hands out chunks of a slab region. Many Allocators, in many
// processes, may work on one region at the same time: all shared state is in
// the region and changed only with atomic operations.
//
// An Allocator allocates on behalf of one participant (its owner id, 0 by
// default; see WithOwner). It is safe for concurrent use by goroutines.
type Allocator struct {
	mem     []byte
	classes []class // validated geometry, local to this process
	owner   uint32
	waiter  futex.Waiter
}

// class is this process's view of one size class: geometry copied and
// checked at New/Attach, plus pointers to the class's shared words.
type class struct {
	idx              int
	size, count      uint64
	shift            uint8
	dataOff, dataEnd uint64
	meta             unsafe.Pointer // first chunk header
	data             unsafe.Pointer // first payload
	head             *atomic.Uint64
	inUse            *atomic.Uint64
	high             *atomic.Uint64
	failed           *atomic.Uint64
	event            *futex.Event
}

// chunkMeta is one chunk header. Its layout is fixed by the cm* constants
// (layout_test.go checks Offsetof against them).
type chunkMeta struct {
	state  atomic.Uint64 // generation<<32 | reference count
	next   atomic.Uint32 // free-list link (index+1), 0 = end
	owner  atomic.Uint32
	length atomic.Uint32
	class  atomic.Uint32
	_      [8]byte
}

func (c *class) chunk(i uint32) *chunkMeta {
	return (*chunkMeta)(unsafe.Add(c.meta, uintptr(i)*ChunkMetaSize))
}

func (c *class) payload(i uint32) unsafe.Pointer {
	return unsafe.Add(c.data, uintptr(uint64(i)*c.size))
}

func u64at(mem []byte, off uint64) *atomic.Uint64 {
	return (*atomic.Uint64)(unsafe.Pointer(&mem[off]))
}

func u32at(mem []byte, off uint64) *atomic.Uint32 {
	return (*atomic.Uint32)(unsafe.Pointer(&mem[off]))
}

func checkAlign(mem []byte, align uintptr) error {
	if len(mem) == 0 {
		return fmt.Errorf("empty region: %w", ErrTooSmall)
	}
	if p := uintptr(unsafe.Pointer(unsafe.SliceData(mem))); p%align != 0 {
		return fmt.Errorf("region at %#x, want %d-byte alignment: %w", p, align, ErrUnaligned)
	}
	return nil
}

// New lays out a slab region for cfg in mem and returns an Allocator on it.
// mem must start at a 64-byte aligned address (mmapped memory always does)
// and be at least Size(cfg) bytes long; bytes past Size(cfg) are not touched.
// New overwrites the layout area and must run before any other process
// attaches; every chunk starts free. The Allocator is valid as long as mem
// stays mapped.
func New(mem []byte, cfg Config) (*Allocator, error) {
	cs := cfg.classes()
	geom, total, err := layout(cs)
	if err != nil {
		return nil, err
	}
	if err := checkAlign(mem, Align); err != nil {
		return nil, err
	}
	if uint64(len(mem)) < total {
		return nil, fmt.Errorf("region of %d bytes, layout needs %d: %w", len(mem), total, ErrTooSmall)
	}
	clear(mem[:geom[0].dataOff]) // header, class table, chunk headers
	u32at(mem, hdrVersion).Store(Version)
	u64at(mem, hdrSize).Store(total)
	u32at(mem, hdrClasses).Store(uint32(len(cs)))
	u32at(mem, hdrMetaSize).Store(ChunkMetaSize)
	u64at(mem, hdrClassOff).Store(classTableOff)
	u32at(mem, hdrDescSize).Store(ClassDescSize)
	for i, g := range geom {
		d := uint64(classTableOff + i*ClassDescSize)
		u64at(mem, d+cdSize).Store(g.size)
		u64at(mem, d+cdCount).Store(g.count)
		u64at(mem, d+cdMetaOff).Store(g.metaOff)
		u64at(mem, d+cdDataOff).Store(g.dataOff)
	}
	a := build(mem, geom)
	for ci := range a.classes {
		c := &a.classes[ci]
		for i := uint32(0); uint64(i) < c.count; i++ {
			m := c.chunk(i)
			m.class.Store(uint32(ci))
			if uint64(i)+1 < c.count {
				m.next.Store(i + 2) // ascending order: chunk 0 is popped first
			}
		}
		c.head.Store(1) // tag 0, chunk 0
	}
	// Publish the magic last: a reader that sees it sees the whole layout.
	u32at(mem, hdrMagic).Store(KindSlab)
	return a, nil
}

func build(mem []byte, geom []classGeom) *Allocator {
	a := &Allocator{mem: mem, classes: make([]class, len(geom))}
	for i, g := range geom {
		d := uint64(classTableOff + i*ClassDescSize)
		ev, _ := futex.EventAt(mem[d+cdEvent:]) // 64-byte aligned: cannot fail
		a.classes[i] = class{
			idx: i, size: g.size, count: g.count, shift: g.shift,
			dataOff: g.dataOff, dataEnd: g.dataOff + g.size*g.count,
			meta:   unsafe.Pointer(&mem[g.metaOff]),
			data:   unsafe.Pointer(&mem[g.dataOff]),
			head:   u64at(mem, d+cdHead),
			inUse:  u64at(mem, d+cdInUse),
			high:   u64at(mem, d+cdHigh),
			failed: u64at(mem, d+cdFailed),
			event:  ev,
		}
	}
	return a
}

// readLayout validates the header and class table of mem and returns the
// classes it describes. It only loads (atomically where other processes
// write), so it works on a read-only mapping.
func readLayout(mem []byte) ([]classGeom, uint64, error) {
	if len(mem) < HeaderSize {
		return nil, 0, fmt.Errorf("region of %d bytes: %w", len(mem), ErrTooSmall)
	}
	if m := u32at(mem, hdrMagic).Load(); m != KindSlab {
		return nil, 0, fmt.Errorf("magic %#08x, want %#08x: %w", m, KindSlab, ErrBadMagic)
	}
	if v := u32at(mem, hdrVersion).Load(); v != Version {
		return nil, 0, fmt.Errorf("version %d, want %d: %w", v, Version, ErrVersion)
	}
	n := u32at(mem, hdrClasses).Load()
	if n == 0 || n > MaxClasses {
		return nil, 0, fmt.Errorf("%d classes: %w", n, ErrCorrupt)
	}
	if ms, co, ds := u32at(mem, hdrMetaSize).Load(), u64at(mem, hdrClassOff).Load(), u32at(mem, hdrDescSize).Load(); ms != ChunkMetaSize || co != classTableOff || ds != ClassDescSize {
		return nil, 0, fmt.Errorf("chunk header size %d, class table at %d, descriptor size %d: %w", ms, co, ds, ErrCorrupt)
	}
	if end := uint64(classTableOff) + uint64(n)*ClassDescSize; uint64(len(mem)) < end {
		return nil, 0, fmt.Errorf("class table ends at %d, region is %d bytes: %w", end, len(mem), ErrTooSmall)
	}
	cs := make([]Class, n)
	stored := make([]classGeom, n)
	for i := range cs {
		d := uint64(classTableOff + i*ClassDescSize)
		stored[i] = classGeom{size: u64at(mem, d+cdSize).Load(), count: u64at(mem, d+cdCount).Load(),
			metaOff: u64at(mem, d+cdMetaOff).Load(), dataOff: u64at(mem, d+cdDataOff).Load()}
		if stored[i].size > MaxChunkSize || stored[i].count > MaxChunks {
			return nil, 0, fmt.Errorf("class %d: size %d count %d: %w", i, stored[i].size, stored[i].count, ErrCorrupt)
		}
		cs[i] = Class{Size: int(stored[i].size), Count: int(stored[i].count)}
	}
	geom, total, err := layout(cs)
	if err != nil {
		return nil, 0, fmt.Errorf("class table: %v: %w", err, ErrCorrupt)
	}
	for i := range geom {
		if stored[i].metaOff != geom[i].metaOff || stored[i].dataOff != geom[i].dataOff {
			return nil, 0, fmt.Errorf("class %d: offsets %d/%d, layout says %d/%d: %w", i,
				stored[i].metaOff, stored[i].dataOff, geom[i].metaOff, geom[i].dataOff, ErrCorrupt)
		}
	}
	if sz := u64at(mem, hdrSize).Load(); sz != total {
		return nil, 0, fmt.Errorf("header size %d, layout says %d: %w", sz, total, ErrCorrupt)
	}
	if uint64(len(mem)) < total {
		return nil, 0, fmt.Errorf("region of %d bytes, layout needs %d: %w", len(mem), total, ErrTooSmall)
	}
	return geom, total, nil
}

// Attach returns an Allocator on a region that New laid out (in this or
// another process). It validates the header and the class table — magic,
// version, class count, sizes, counts and every offset against the layout
// they imply and the length of mem — and copies the geometry, so later
// changes to the header by a faulty peer cannot steer this process outside
// the region. Chunk headers are validated as they are used.
func Attach(mem []byte) (*Allocator, error) {
	if err := checkAlign(mem, Align); err != nil {
		return nil, err
	}
	geom, _, err := readLayout(mem)
	if err != nil {
		return nil, err
	}
	return build(mem, geom), nil
}

// WithOwner returns an Allocator on the same region that acts on behalf of
// participant id (0..MaxOwner, else ErrOwner): chunks it allocates record id
// as their owner, and chunks it is in the middle of allocating or freeing
// carry id too, so ReclaimOwner(id) can return all of them if the
// participant dies. Give each live participant its own id.
func (a *Allocator) WithOwner(id uint32) (*Allocator, error) {
	if id > MaxOwner {
		return nil, fmt.Errorf("owner %d > %d: %w", id, MaxOwner, ErrOwner)
	}
	b := *a
	b.owner = id
	return &b, nil
}

// WithWaiter returns an Allocator on the same region whose AllocContext
// waits with w (the zero Waiter spins briefly, then parks on a futex).
func (a *Allocator) WithWaiter(w futex.Waiter) *Allocator {
	b := *a
	b.waiter = w
	return &b
}

// OwnerID returns the participant id this Allocator allocates for.
func (a *Allocator) OwnerID() uint32 { return a.owner }

// Classes returns the size classes of the region.
func (a *Allocator) Classes() []Class {
	cs := make([]Class, len(a.classes))
	for i, c := range a.classes {
		cs[i] = Class{Size: int(c.size), Count: int(c.count)}
	}
	return cs
}

// Size returns the number of bytes the region's layout uses (Size of its config).
func (a *Allocator) Size() int { return int(a.classes[len(a.classes)-1].dataEnd) }
