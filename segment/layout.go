package segment

// The header's byte layout, version 1. docs/segment-layout.md documents the
// same table and TestLayoutMatchesDoc holds the two together. All integers
// are little-endian (the byte order of every platform shmkit targets).
//
// Bytes [0, hdrImmutableEnd) are written once by the creator before the magic
// is published and never change; hdrChecksum holds their CRC-32C. The TOC
// count is the only header word that changes after creation.
const (
	hdrMagic        = 0   // [8]byte  "SHMKITSG"
	hdrVersion      = 8   // uint32   layout version
	hdrHeaderSize   = 12  // uint32   bytes from 0 to the end of the TOC array
	hdrTotalSize    = 16  // uint64   size of the whole segment
	hdrBackend      = 24  // uint32   Backend that created it
	hdrTOCCap       = 28  // uint32   capacity of the TOC array, in entries
	hdrCreatorPID   = 32  // uint32   creator's process id
	hdrSysVKey      = 36  // int32    SysV key (0 for other backends)
	hdrCreatorStart = 40  // uint64   creator's start time, clock ticks since boot
	hdrCreated      = 48  // int64    creation time, Unix nanoseconds
	hdrName         = 56  // [200]byte name, NUL-padded
	hdrImmutableEnd = 256 // end of the checksummed part
	hdrChecksum     = 256 // uint32   CRC-32C (Castagnoli) of bytes [0, 256)
	hdrTOCCount     = 260 // uint32   published TOC entries (atomic, release/acquire)
	hdrReserved     = 264 // [56]byte zero
	hdrFixedSize    = 320 // the TOC array starts here
)

// A TOC entry, tocEntrySize bytes, at hdrFixedSize + i*tocEntrySize.
const (
	tocName      = 0  // [32]byte region name, NUL-padded
	tocKind      = 32 // uint32   kind (opaque; FourCC by convention)
	tocAlign     = 36 // uint32   alignment of Offset, a power of two
	tocOffset    = 40 // uint64   offset of the region from the segment start
	tocLength    = 48 // uint64   length of the region in bytes
	tocChecksum  = 56 // uint32   CRC-32C of bytes [0, 56) of this entry
	tocReserved  = 60 // uint32   zero
	tocEntrySize = 64
)

const (
	// Magic is the 8 bytes every shmkit segment starts with.
	Magic = "SHMKITSG"
	// Version is the header layout version this code writes and reads.
	Version = 1

	// MaxNameLen is the longest segment name.
	MaxNameLen = 200
	// MaxRegionNameLen is the longest region name.
	MaxRegionNameLen = 32
	// DefaultTOCCapacity is the number of TOC entries a segment gets unless
	// Options.TOCCapacity says otherwise.
	DefaultTOCCapacity = 32
	// MaxTOCCapacity bounds Options.TOCCapacity (and what a header may claim).
	MaxTOCCapacity = 4096
	// MaxSize is the largest segment this package creates or attaches: 1 TiB.
	MaxSize = 1 << 40
	// MaxAlign is the largest region alignment: 1 GiB.
	MaxAlign = 1 << 30
)

// headerSize returns the header size for a TOC of capacity entries.
func headerSize(capacity int) int64 {
	return hdrFixedSize + int64(capacity)*tocEntrySize
}
