package allocator

import (
	"fmt"
	"math"
)

// KindSlab is the region kind of a slab allocator region: the little-endian
// FourCC of "SLAB". It is also the magic word at offset 0 of the region.
const KindSlab uint32 = 'S' | 'L'<<8 | 'A'<<16 | 'B'<<24

// layoutVersion is the layout version this code writes and reads. Version 2
// added the header checksum and the cached chunk state.
const layoutVersion = 2

// Limits of a Config, and the alignment New and Attach require.
const (
	// Align is the alignment New and Attach require of the region's start
	// address; every class descriptor, metadata array and payload in it is
	// aligned to it too.
	Align = 64
	// MaxClasses is the largest number of size classes.
	MaxClasses = 64
	// MaxChunkSize is the largest chunk payload (the length field is 32-bit).
	MaxChunkSize = 1 << 30
	// MaxChunks is the largest number of chunks in one class (free-list
	// links store index+1 in 32 bits).
	MaxChunks = math.MaxInt32
	// MaxRegion is the largest region a Ref can address (34 bits of
	// 64-byte units).
	MaxRegion = 1 << (refOffsetBits + 6)
)

// Layout constants. docs/allocator.md describes every byte; layout_test.go
// checks the document against these constants.
const (
	// headerSize is the size of the region header at offset 0.
	headerSize = 64
	// classDescSize is the size of one class descriptor: a hot cache line
	// (free-list head, counters, futex event) and a read-only one (geometry).
	classDescSize = 128
	// chunkMetaSize is the size of one chunk header in a class's metadata
	// array.
	chunkMetaSize = 32
)

// Header field offsets (from the start of the region). Everything but the
// magic is written once by New before the magic, and never changes.
const (
	hdrMagic      = 0  // uint32 KindSlab, stored last by New
	hdrVersion    = 4  // uint32 layoutVersion
	hdrSize       = 8  // uint64 bytes used by the layout
	hdrClasses    = 16 // uint32 number of classes
	hdrMetaSize   = 20 // uint32 chunkMetaSize
	hdrClassOff   = 24 // uint64 offset of the class table
	hdrDescSize   = 32 // uint32 classDescSize
	hdrChecksum   = 36 // uint32 CRC-32C of the immutable header and class geometry (see geometrySum)
	hdrReserved   = 40 // 24 bytes, zero
	classTableOff = headerSize
)

// Class descriptor field offsets (from the start of the descriptor).
const (
	// Hot line: written by the free-list operations of the class.
	cdHead   = 0  // uint64 free-list head: tag<<33 | popping<<32 | (index+1 of the top), top 0 = empty
	cdInUse  = 8  // uint64 chunks off the free list (int64 arithmetic), updated per pop/push batch
	cdHigh   = 16 // uint64 high-water mark of cdInUse
	cdFailed = 24 // uint64 allocations that failed for want of a chunk
	cdEvent  = 32 // futex.Event (8 bytes): AllocContext sleeps here
	// Cold line: written once by New, read-only afterwards (covered by the
	// header checksum).
	cdSize    = 64 // uint64 chunk payload size
	cdCount   = 72 // uint64 number of chunks
	cdMetaOff = 80 // uint64 offset of the metadata array
	cdDataOff = 88 // uint64 offset of the first payload
)

// Chunk header field offsets (from the start of one chunkMetaSize entry).
const (
	cmState  = 0  // uint64 generation<<32 | low, low = what the chunk is doing (state.go)
	cmNext   = 8  // uint32 free-list link: index+1 of the chunk below, 0 = bottom
	cmOwner  = 12 // uint32 participant that holds the allocated chunk
	cmLength = 16 // uint32 payload length
	cmClass  = 20 // uint32 class index (written by New, never changes)
	cmSpare  = 24 // 8 bytes, zero
)

// Class describes one size class.
type Class struct {
	// Size is the payload capacity of each chunk in bytes: a positive
	// multiple of 64, at most MaxChunkSize.
	Size int
	// Count is the number of chunks of this size, 1..MaxChunks.
	Count int
}

// DefaultChunksPerClass is the number of chunks per class when
// Config.ChunksPerClass is zero.
const DefaultChunksPerClass = 16

// Config fixes the size classes of a region when it is created.
type Config struct {
	// Classes lists the size classes in strictly ascending Size order.
	// When nil, the classes are the powers of two from 64 B to 1 MiB
	// (15 classes), each with ChunksPerClass chunks.
	Classes []Class
	// ChunksPerClass is the chunk count of each default class; zero means
	// DefaultChunksPerClass. It is ignored when Classes is set.
	ChunksPerClass int
}

// DefaultClasses returns the default classes: powers of two from 64 B to
// 1 MiB with n chunks each.
func DefaultClasses(n int) []Class {
	var cs []Class
	for s := 64; s <= 1<<20; s <<= 1 {
		cs = append(cs, Class{Size: s, Count: n})
	}
	return cs
}

func (c Config) classes() []Class {
	if c.Classes != nil {
		return c.Classes
	}
	n := c.ChunksPerClass
	if n == 0 {
		n = DefaultChunksPerClass
	}
	return DefaultClasses(n)
}

// classGeom is where one class lives in the region. It is computed from the
// class list alone, so a region's layout is a pure function of its classes.
type classGeom struct {
	size, count      uint64
	metaOff, dataOff uint64
	shift            uint8 // log2(size) when size is a power of two, else 0
}

// layout computes the geometry of every class and the total size.
func layout(cs []Class) ([]classGeom, uint64, error) {
	if len(cs) == 0 || len(cs) > MaxClasses {
		return nil, 0, fmt.Errorf("%w: %d classes (want 1..%d)", ErrConfig, len(cs), MaxClasses)
	}
	g := make([]classGeom, len(cs))
	off := uint64(classTableOff + len(cs)*classDescSize)
	for i, c := range cs {
		if c.Size <= 0 || c.Size%Align != 0 || c.Size > MaxChunkSize {
			return nil, 0, fmt.Errorf("%w: class %d: size %d (want a positive multiple of %d up to %d)", ErrConfig, i, c.Size, Align, MaxChunkSize)
		}
		if i > 0 && c.Size <= cs[i-1].Size {
			return nil, 0, fmt.Errorf("%w: class %d: size %d not above %d", ErrConfig, i, c.Size, cs[i-1].Size)
		}
		if c.Count <= 0 || c.Count > MaxChunks {
			return nil, 0, fmt.Errorf("%w: class %d: count %d (want 1..%d)", ErrConfig, i, c.Count, MaxChunks)
		}
		g[i].size, g[i].count = uint64(c.Size), uint64(c.Count)
		if c.Size&(c.Size-1) == 0 {
			for s := c.Size; s > 1; s >>= 1 {
				g[i].shift++
			}
		}
		g[i].metaOff = off
		off = roundUp(off + uint64(c.Count)*chunkMetaSize)
		if off > MaxRegion {
			return nil, 0, fmt.Errorf("%w: layout exceeds %d bytes", ErrConfig, uint64(MaxRegion))
		}
	}
	for i := range g {
		g[i].dataOff = off
		// size <= 2^30 and count < 2^31, so the product fits in 62 bits.
		off += g[i].size * g[i].count
		if off > MaxRegion {
			return nil, 0, fmt.Errorf("%w: layout exceeds %d bytes", ErrConfig, uint64(MaxRegion))
		}
	}
	return g, off, nil
}

func roundUp(n uint64) uint64 { return (n + Align - 1) &^ (Align - 1) }

// Size returns the number of bytes a region for cfg needs. New accepts any
// region at least this long.
func Size(cfg Config) (int, error) {
	_, n, err := layout(cfg.classes())
	if err != nil {
		return 0, err
	}
	if uint64(int(n)) != n {
		return 0, fmt.Errorf("%w: layout of %d bytes does not fit an int", ErrConfig, n)
	}
	return int(n), nil
}

// Overhead returns the fraction of a region for cfg that is not chunk
// payload: the header, the class table, the chunk headers and padding.
func Overhead(cfg Config) (float64, error) {
	cs := cfg.classes()
	total, err := Size(cfg)
	if err != nil {
		return 0, err
	}
	var payload uint64
	for _, c := range cs {
		payload += uint64(c.Size) * uint64(c.Count)
	}
	return float64(uint64(total)-payload) / float64(total), nil
}
