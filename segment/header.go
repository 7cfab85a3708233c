package segment

import (
	"bytes"
	"encoding/binary"
	"fmt"
	crcsum "github.com/shmkit/shmkit/internal/checksum"
	"math/bits"
	"time"
)

// Backend says which kind of kernel object holds a segment.
type Backend uint32

// The backends. The numbers are stored in headers; never renumber them.
const (
	// POSIX is a named POSIX shared memory object: a file
	// /dev/shm/shmkit.NAME on tmpfs.
	POSIX Backend = 1
	// SysV is a System V shared memory segment; its key is derived from the
	// name (SysVKey) or given in Options.SysVKey.
	SysV Backend = 2
	// File is a file at any path, mapped with github.com/edsrzf/mmap-go.
	File Backend = 3
	// Memfd is an anonymous memfd, sealed against shrink and grow, shared by
	// passing its file descriptor.
	Memfd Backend = 4
)

var backendNames = map[Backend]string{POSIX: "posix", SysV: "sysv", File: "file", Memfd: "memfd"}

// String returns the backend's lower-case name ("posix", "sysv", "file",
// "memfd"), or "backend(N)" for an unknown value.
func (b Backend) String() string {
	if s, ok := backendNames[b]; ok {
		return s
	}
	return fmt.Sprintf("backend(%d)", uint32(b))
}

// ParseBackend turns "posix", "sysv", "file" or "memfd" into a Backend.
func ParseBackend(s string) (Backend, error) {
	for b, n := range backendNames {
		if n == s {
			return b, nil
		}
	}
	return 0, fmt.Errorf("%w: backend %q (want posix, sysv, file or memfd)", ErrInvalidOption, s)
}

func (b Backend) valid() bool { _, ok := backendNames[b]; return ok }

// Region is one entry of a segment's table of contents: a named, aligned
// range of bytes [Offset, Offset+Length) inside the segment.
type Region struct {
	Name   string `json:"name"`
	Kind   uint32 `json:"kind"` // opaque to segment; FourCC by convention
	Offset int64  `json:"offset"`
	Length int64  `json:"length"`
	Align  int64  `json:"align"`
}

// header is the parsed, validated immutable part of a segment header.
type header struct {
	version      uint32
	headerSize   int64
	totalSize    int64
	backend      Backend
	tocCap       int
	creatorPID   int
	sysvKey      int32
	creatorStart uint64
	created      time.Time
	name         string
}

var le = binary.LittleEndian

func checksum(b []byte) uint32 { return crcsum.CRC32C(b) }

// encodeHeader returns the first hdrFixedSize bytes of a new segment's
// header, checksum included and TOC count zero. The caller publishes the
// magic (bytes [0,8)) last.
func encodeHeader(h *header) []byte {
	b := make([]byte, hdrFixedSize)
	copy(b[hdrMagic:], Magic)
	le.PutUint32(b[hdrVersion:], h.version)
	le.PutUint32(b[hdrHeaderSize:], uint32(h.headerSize))
	le.PutUint64(b[hdrTotalSize:], uint64(h.totalSize))
	le.PutUint32(b[hdrBackend:], uint32(h.backend))
	le.PutUint32(b[hdrTOCCap:], uint32(h.tocCap))
	le.PutUint32(b[hdrCreatorPID:], uint32(h.creatorPID))
	le.PutUint32(b[hdrSysVKey:], uint32(h.sysvKey))
	le.PutUint64(b[hdrCreatorStart:], h.creatorStart)
	le.PutUint64(b[hdrCreated:], uint64(h.created.UnixNano()))
	copy(b[hdrName:hdrName+MaxNameLen], h.name)
	le.PutUint32(b[hdrChecksum:], checksum(b[:hdrImmutableEnd]))
	return b
}

// parseHeader validates the fixed part of a header. b is a private copy of
// the segment's first bytes (at least what the object holds, up to
// hdrFixedSize); objSize is the size of the object as the kernel reports it.
// It never reads outside b and never panics.
func parseHeader(b []byte, objSize int64) (header, error) {
	var h header
	if len(b) < len(Magic) {
		if allZero(b) {
			return h, fmt.Errorf("%w (object is %d bytes)", ErrNotReady, len(b))
		}
		return h, fmt.Errorf("%w: object is only %d bytes", ErrBadMagic, len(b))
	}
	if !bytes.Equal(b[:len(Magic)], []byte(Magic)) {
		if allZero(b[:len(Magic)]) {
			return h, ErrNotReady
		}
		return h, fmt.Errorf("%w: bad magic %q", ErrBadMagic, b[:len(Magic)])
	}
	if len(b) < hdrFixedSize {
		return h, fmt.Errorf("%w: object is %d bytes, shorter than the %d-byte header", ErrCorrupt, len(b), hdrFixedSize)
	}
	h.version = le.Uint32(b[hdrVersion:])
	if h.version != Version {
		return h, fmt.Errorf("%w: layout version %d (this code reads %d)", ErrVersion, h.version, Version)
	}
	if got, want := checksum(b[:hdrImmutableEnd]), le.Uint32(b[hdrChecksum:]); got != want {
		return h, fmt.Errorf("%w: header checksum %#08x, stored %#08x", ErrCorrupt, got, want)
	}
	h.tocCap = int(le.Uint32(b[hdrTOCCap:]))
	if h.tocCap > MaxTOCCapacity {
		return h, fmt.Errorf("%w: TOC capacity %d > %d", ErrCorrupt, h.tocCap, MaxTOCCapacity)
	}
	h.headerSize = int64(le.Uint32(b[hdrHeaderSize:]))
	if h.headerSize != headerSize(h.tocCap) {
		return h, fmt.Errorf("%w: header size %d, want %d for %d TOC entries", ErrCorrupt, h.headerSize, headerSize(h.tocCap), h.tocCap)
	}
	total := le.Uint64(b[hdrTotalSize:])
	if total > MaxSize || int64(total) <= h.headerSize {
		return h, fmt.Errorf("%w: total size %d outside (%d, %d]", ErrCorrupt, total, h.headerSize, int64(MaxSize))
	}
	h.totalSize = int64(total)
	if h.totalSize != objSize {
		return h, fmt.Errorf("%w: header says %d bytes, object has %d", ErrCorrupt, h.totalSize, objSize)
	}
	h.backend = Backend(le.Uint32(b[hdrBackend:]))
	if !h.backend.valid() {
		return h, fmt.Errorf("%w: unknown backend %d", ErrCorrupt, uint32(h.backend))
	}
	h.creatorPID = int(le.Uint32(b[hdrCreatorPID:]))
	if h.creatorPID <= 0 || h.creatorPID > 1<<22 {
		return h, fmt.Errorf("%w: creator pid %d", ErrCorrupt, h.creatorPID)
	}
	h.sysvKey = int32(le.Uint32(b[hdrSysVKey:]))
	if h.backend != SysV && h.sysvKey != 0 {
		return h, fmt.Errorf("%w: SysV key %#x on a %v segment", ErrCorrupt, h.sysvKey, h.backend)
	}
	h.creatorStart = le.Uint64(b[hdrCreatorStart:])
	h.created = time.Unix(0, int64(le.Uint64(b[hdrCreated:])))
	nameField := b[hdrName : hdrName+MaxNameLen]
	n := bytes.IndexByte(nameField, 0)
	if n < 0 {
		n = MaxNameLen
	}
	h.name = string(nameField[:n])
	if !ValidName(h.name) || !allZero(nameField[n:]) {
		return h, fmt.Errorf("%w: bad name field %q", ErrCorrupt, nameField[:n])
	}
	if !allZero(b[hdrReserved:hdrFixedSize]) {
		return h, fmt.Errorf("%w: reserved header bytes not zero", ErrCorrupt)
	}
	return h, nil
}

func encodeEntry(r Region) []byte {
	e := make([]byte, tocEntrySize)
	copy(e[tocName:tocName+MaxRegionNameLen], r.Name)
	le.PutUint32(e[tocKind:], r.Kind)
	le.PutUint32(e[tocAlign:], uint32(r.Align))
	le.PutUint64(e[tocOffset:], uint64(r.Offset))
	le.PutUint64(e[tocLength:], uint64(r.Length))
	le.PutUint32(e[tocChecksum:], checksum(e[:tocChecksum]))
	return e
}

// parseEntry validates one TOC entry (a private copy of its bytes) against
// the header and the end of the previous entry: entries are stored in
// increasing offset order and must not overlap each other or the header.
func parseEntry(e []byte, h *header, prevEnd int64) (Region, error) {
	var r Region
	if len(e) != tocEntrySize {
		return r, fmt.Errorf("%w: TOC entry is %d bytes", ErrCorrupt, len(e))
	}
	if got, want := checksum(e[:tocChecksum]), le.Uint32(e[tocChecksum:]); got != want {
		return r, fmt.Errorf("%w: TOC entry checksum %#08x, stored %#08x", ErrCorrupt, got, want)
	}
	nameField := e[tocName : tocName+MaxRegionNameLen]
	n := bytes.IndexByte(nameField, 0)
	if n < 0 {
		n = MaxRegionNameLen
	}
	r.Name = string(nameField[:n])
	if !validChars(r.Name, MaxRegionNameLen) || !allZero(nameField[n:]) || le.Uint32(e[tocReserved:]) != 0 {
		return r, fmt.Errorf("%w: TOC entry with bad name %q", ErrCorrupt, nameField[:n])
	}
	r.Kind = le.Uint32(e[tocKind:])
	align := le.Uint32(e[tocAlign:])
	if align == 0 || align > MaxAlign || bits.OnesCount32(align) != 1 {
		return r, fmt.Errorf("%w: region %q alignment %d", ErrCorrupt, r.Name, align)
	}
	r.Align = int64(align)
	off, length := le.Uint64(e[tocOffset:]), le.Uint64(e[tocLength:])
	total := uint64(h.totalSize)
	if off < uint64(h.headerSize) || off >= total || length == 0 || length > total-off {
		return r, fmt.Errorf("%w: region %q [%d, +%d) outside the data area [%d, %d)",
			ErrCorrupt, r.Name, off, length, h.headerSize, h.totalSize)
	}
	if off%uint64(align) != 0 {
		return r, fmt.Errorf("%w: region %q offset %d not aligned to %d", ErrCorrupt, r.Name, off, align)
	}
	if int64(off) < prevEnd {
		return r, fmt.Errorf("%w: region %q at %d overlaps the previous region (ends at %d)", ErrCorrupt, r.Name, off, prevEnd)
	}
	r.Offset, r.Length = int64(off), int64(length)
	return r, nil
}

// parseTOC validates count entries read from toc, a private copy of the TOC
// array (at least count entries long).
func parseTOC(toc []byte, count int, h *header) ([]Region, error) {
	if count < 0 || count > h.tocCap {
		return nil, fmt.Errorf("%w: TOC count %d > capacity %d", ErrCorrupt, count, h.tocCap)
	}
	if len(toc) < count*tocEntrySize {
		return nil, fmt.Errorf("%w: TOC truncated", ErrCorrupt)
	}
	regions := make([]Region, 0, count)
	seen := make(map[string]bool, count)
	prevEnd := h.headerSize
	for i := 0; i < count; i++ {
		r, err := parseEntry(toc[i*tocEntrySize:(i+1)*tocEntrySize], h, prevEnd)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
		if seen[r.Name] {
			return nil, fmt.Errorf("%w: region %q appears twice", ErrCorrupt, r.Name)
		}
		seen[r.Name] = true
		prevEnd = r.Offset + r.Length
		regions = append(regions, r)
	}
	return regions, nil
}

// validate checks a complete image of a segment (header, TOC and data) as
// Open does: b is the whole object. It is what FuzzValidate exercises.
func validate(b []byte) (header, []Region, error) {
	fixed := b
	if len(fixed) > hdrFixedSize {
		fixed = fixed[:hdrFixedSize]
	}
	h, err := parseHeader(fixed, int64(len(b)))
	if err != nil {
		return h, nil, err
	}
	count := int(le.Uint32(b[hdrTOCCount:]))
	regions, err := parseTOC(b[hdrFixedSize:h.headerSize], count, &h)
	return h, regions, err
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
