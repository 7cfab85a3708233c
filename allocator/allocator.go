package allocator

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"unsafe"

	"github.com/shmkit/shmkit/futex"
	"github.com/shmkit/shmkit/internal/checksum"
)

// Allocator hands out chunks of a slab region. Many handles, in many
// processes, may work on one region at the same time: all shared state is in
// the region and changed only with atomic operations.
//
// An Allocator is a handle: it allocates on behalf of one participant (its
// owner id, 0 by default; see WithOwner), waits as its Waiter says, and may
// keep a magazine of chunks (WithCache). Handle makes more handles on the
// same region. A handle without a cache is safe for concurrent use by
// goroutines; a handle with one belongs to one goroutine at a time.
type Allocator struct {
	mem     []byte
	classes []class // validated geometry, local to this process, shared by its handles, read-only
	opts    options
	owner   uint32     // opts.owner, where the hot paths read it
	mags    []magazine // one per class; nil without a cache
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
	return (*chunkMeta)(unsafe.Add(c.meta, uintptr(i)*chunkMetaSize))
}

func (c *class) payload(i uint32) unsafe.Pointer {
	return unsafe.Add(c.data, uintptr(uint64(i)*c.size))
}

// u64at and u32at return the word at a validated offset inside mem.
func u64at(mem []byte, off uint64) *atomic.Uint64 {
	return (*atomic.Uint64)(unsafe.Pointer(&mem[off]))
}

func u32at(mem []byte, off uint64) *atomic.Uint32 {
	return (*atomic.Uint32)(unsafe.Pointer(&mem[off]))
}

func checkAlign(mem []byte, align uintptr) error {
	if len(mem) == 0 {
		return fmt.Errorf("%w: empty region", ErrTooSmall)
	}
	if p := uintptr(unsafe.Pointer(unsafe.SliceData(mem))); p%align != 0 {
		return fmt.Errorf("%w: region at %#x, want %d-byte alignment", ErrUnaligned, p, align)
	}
	return nil
}

// New lays out a slab region for cfg in mem and returns a handle on it,
// configured by opts. mem must start at a 64-byte aligned address (mmapped
// memory always does) and be at least Size(cfg) bytes long; bytes past
// Size(cfg) are not touched. New overwrites the layout area and must run
// before any other process attaches; every chunk starts free. The handle is
// valid as long as mem stays mapped.
func New(mem []byte, cfg Config, opts ...Option) (*Allocator, error) {
	var o options
	if err := o.apply(opts); err != nil {
		return nil, err
	}
	cs := cfg.classes()
	geom, total, err := layout(cs)
	if err != nil {
		return nil, err
	}
	if err := checkAlign(mem, Align); err != nil {
		return nil, err
	}
	if uint64(len(mem)) < total {
		return nil, fmt.Errorf("%w: region of %d bytes, layout needs %d", ErrTooSmall, len(mem), total)
	}
	clear(mem[:geom[0].dataOff]) // header, class table, chunk headers
	u32at(mem, hdrVersion).Store(layoutVersion)
	u64at(mem, hdrSize).Store(total)
	u32at(mem, hdrClasses).Store(uint32(len(cs)))
	u32at(mem, hdrMetaSize).Store(chunkMetaSize)
	u64at(mem, hdrClassOff).Store(classTableOff)
	u32at(mem, hdrDescSize).Store(classDescSize)
	for i, g := range geom {
		d := uint64(classTableOff + i*classDescSize)
		u64at(mem, d+cdSize).Store(g.size)
		u64at(mem, d+cdCount).Store(g.count)
		u64at(mem, d+cdMetaOff).Store(g.metaOff)
		u64at(mem, d+cdDataOff).Store(g.dataOff)
	}
	u32at(mem, hdrChecksum).Store(geometrySum(total, geom))
	a := build(mem, geom, o)
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

// geometrySum is the header checksum: the CRC-32C of the immutable part of
// the header (bytes 4..36: version, size, class count, chunk header size,
// class table offset, descriptor size) followed by the cold line of every
// class descriptor (bytes 64..96: chunk size, count, metadata and payload
// offsets), all little-endian. It is computed from values, not from the
// shared bytes, so a peer changing them while Attach reads cannot make it
// read a value twice differently.
func geometrySum(total uint64, geom []classGeom) uint32 {
	b := make([]byte, 0, 32+32*len(geom))
	b = binary.LittleEndian.AppendUint32(b, layoutVersion)
	b = binary.LittleEndian.AppendUint64(b, total)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(geom)))
	b = binary.LittleEndian.AppendUint32(b, chunkMetaSize)
	b = binary.LittleEndian.AppendUint64(b, classTableOff)
	b = binary.LittleEndian.AppendUint32(b, classDescSize)
	for _, g := range geom {
		b = binary.LittleEndian.AppendUint64(b, g.size)
		b = binary.LittleEndian.AppendUint64(b, g.count)
		b = binary.LittleEndian.AppendUint64(b, g.metaOff)
		b = binary.LittleEndian.AppendUint64(b, g.dataOff)
	}
	return checksum.CRC32C(b)
}

func build(mem []byte, geom []classGeom, o options) *Allocator {
	cs := make([]class, len(geom))
	for i, g := range geom {
		d := uint64(classTableOff + i*classDescSize)
		ev, _ := futex.EventAt(mem[d+cdEvent:]) // 64-byte aligned: cannot fail
		cs[i] = class{
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
	return newHandle(mem, cs, o)
}

// newHandle returns a handle with options o on the classes cs of mem.
func newHandle(mem []byte, cs []class, o options) *Allocator {
	a := &Allocator{mem: mem, classes: cs, opts: o, owner: o.owner}
	if o.cache > 0 {
		a.mags = make([]magazine, len(cs))
		for i := range a.mags {
			a.mags[i].ent = make([]uint64, 0, min(uint64(o.cache), cs[i].count))
		}
	}
	return a
}

// readLayout validates the header and class table of mem and returns the
// classes it describes. It only loads (atomically where other processes
// write), so it works on a read-only mapping.
func readLayout(mem []byte) ([]classGeom, uint64, error) {
	if len(mem) < headerSize {
		return nil, 0, fmt.Errorf("%w: region of %d bytes", ErrTooSmall, len(mem))
	}
	if m := u32at(mem, hdrMagic).Load(); m != KindSlab {
		return nil, 0, fmt.Errorf("%w: magic %#08x, want %#08x", ErrBadMagic, m, KindSlab)
	}
	if v := u32at(mem, hdrVersion).Load(); v != layoutVersion {
		return nil, 0, fmt.Errorf("%w: version %d, want %d", ErrVersion, v, layoutVersion)
	}
	n := u32at(mem, hdrClasses).Load()
	if n == 0 || n > MaxClasses {
		return nil, 0, fmt.Errorf("%w: %d classes", ErrCorrupt, n)
	}
	if ms, co, ds := u32at(mem, hdrMetaSize).Load(), u64at(mem, hdrClassOff).Load(), u32at(mem, hdrDescSize).Load(); ms != chunkMetaSize || co != classTableOff || ds != classDescSize {
		return nil, 0, fmt.Errorf("%w: chunk header size %d, class table at %d, descriptor size %d", ErrCorrupt, ms, co, ds)
	}
	if end := uint64(classTableOff) + uint64(n)*classDescSize; uint64(len(mem)) < end {
		return nil, 0, fmt.Errorf("%w: class table ends at %d, region is %d bytes", ErrTooSmall, end, len(mem))
	}
	cs := make([]Class, n)
	stored := make([]classGeom, n)
	for i := range cs {
		d := uint64(classTableOff + i*classDescSize)
		stored[i] = classGeom{size: u64at(mem, d+cdSize).Load(), count: u64at(mem, d+cdCount).Load(),
			metaOff: u64at(mem, d+cdMetaOff).Load(), dataOff: u64at(mem, d+cdDataOff).Load()}
		if stored[i].size > MaxChunkSize || stored[i].count > MaxChunks {
			return nil, 0, fmt.Errorf("%w: class %d: size %d count %d", ErrCorrupt, i, stored[i].size, stored[i].count)
		}
		cs[i] = Class{Size: int(stored[i].size), Count: int(stored[i].count)}
	}
	size := u64at(mem, hdrSize).Load()
	if sum, want := u32at(mem, hdrChecksum).Load(), geometrySum(size, stored); sum != want {
		return nil, 0, fmt.Errorf("%w: header checksum %#08x, computed %#08x", ErrCorrupt, sum, want)
	}
	geom, total, err := layout(cs)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: class table: %v", ErrCorrupt, err)
	}
	for i := range geom {
		if stored[i].metaOff != geom[i].metaOff || stored[i].dataOff != geom[i].dataOff {
			return nil, 0, fmt.Errorf("%w: class %d: offsets %d/%d, layout says %d/%d", ErrCorrupt, i,
				stored[i].metaOff, stored[i].dataOff, geom[i].metaOff, geom[i].dataOff)
		}
	}
	if size != total {
		return nil, 0, fmt.Errorf("%w: header size %d, layout says %d", ErrCorrupt, size, total)
	}
	if uint64(len(mem)) < total {
		return nil, 0, fmt.Errorf("%w: region of %d bytes, layout needs %d", ErrTooSmall, len(mem), total)
	}
	return geom, total, nil
}

// Attach returns a handle, configured by opts, on a region that New laid
// out (in this or another process). It validates the header and the class
// table — magic, version, checksum, class count, sizes, counts and every
// offset against the layout they imply and the length of mem — and copies
// the geometry, so later changes to the header by a faulty peer cannot steer
// this process outside the region. Chunk headers are validated as they are
// used. The handle is valid as long as mem stays mapped.
func Attach(mem []byte, opts ...Option) (*Allocator, error) {
	var o options
	if err := o.apply(opts); err != nil {
		return nil, err
	}
	if err := checkAlign(mem, Align); err != nil {
		return nil, err
	}
	geom, _, err := readLayout(mem)
	if err != nil {
		return nil, err
	}
	return build(mem, geom, o), nil
}

// Handle returns another handle on the same region, with a's options
// changed by opts and a cache of its own (empty): for example one handle
// per goroutine, or one per participant a process acts for. It costs no
// shared-memory access: the handles of one process share the validated
// geometry.
func (a *Allocator) Handle(opts ...Option) (*Allocator, error) {
	o := a.opts
	if err := o.apply(opts); err != nil {
		return nil, err
	}
	return newHandle(a.mem, a.classes, o), nil
}

// OwnerID returns the participant id this handle allocates for.
func (a *Allocator) OwnerID() uint32 { return a.owner }

// CacheSize returns the capacity of the handle's magazine per class (0: no
// cache).
func (a *Allocator) CacheSize() int { return a.opts.cache }

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
