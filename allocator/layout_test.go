package allocator

import (
	"testing"
	"unsafe"

	"github.com/shmkit/shmkit/futex"
	"github.com/shmkit/shmkit/internal/layoutdoc"
)

type field = layoutdoc.Field

const docPath = "../docs/allocator.md"

// The layout as the code defines it, offsets from the constants the code
// uses (and, for the chunk header, from unsafe.Offsetof of chunkMeta);
// docs/allocator.md must list exactly these rows in its layout tables.
var (
	headerFields = []field{
		{Name: "magic", Offset: hdrMagic, Size: 4}, {Name: "version", Offset: hdrVersion, Size: 4},
		{Name: "size", Offset: hdrSize, Size: 8}, {Name: "classes", Offset: hdrClasses, Size: 4},
		{Name: "chunk_header_size", Offset: hdrMetaSize, Size: 4}, {Name: "class_table", Offset: hdrClassOff, Size: 8},
		{Name: "class_desc_size", Offset: hdrDescSize, Size: 4}, {Name: "checksum", Offset: hdrChecksum, Size: 4},
		{Name: "reserved", Offset: hdrReserved, Size: headerSize - hdrReserved},
	}
	// The futex.Event at cdEvent is its sequence word, then its sleeper
	// count (docs/futex.md).
	classFields = []field{
		{Name: "head", Offset: cdHead, Size: 8}, {Name: "in_use", Offset: cdInUse, Size: 8},
		{Name: "high_water", Offset: cdHigh, Size: 8}, {Name: "failed", Offset: cdFailed, Size: 8},
		{Name: "event.seq", Offset: cdEvent, Size: 4}, {Name: "event.sleepers", Offset: cdEvent + 4, Size: 4},
		{Name: "reserved_hot", Offset: cdEvent + futex.EventSize, Size: cdSize - cdEvent - futex.EventSize},
		{Name: "chunk_size", Offset: cdSize, Size: 8}, {Name: "count", Offset: cdCount, Size: 8},
		{Name: "meta_offset", Offset: cdMetaOff, Size: 8}, {Name: "data_offset", Offset: cdDataOff, Size: 8},
		{Name: "reserved_cold", Offset: cdDataOff + 8, Size: classDescSize - cdDataOff - 8},
	}
	chunkFields = []field{
		{Name: "state", Offset: int(unsafe.Offsetof(chunkMeta{}.state)), Size: 8},
		{Name: "next", Offset: int(unsafe.Offsetof(chunkMeta{}.next)), Size: 4},
		{Name: "owner", Offset: int(unsafe.Offsetof(chunkMeta{}.owner)), Size: 4},
		{Name: "length", Offset: int(unsafe.Offsetof(chunkMeta{}.length)), Size: 4},
		{Name: "class", Offset: int(unsafe.Offsetof(chunkMeta{}.class)), Size: 4},
		{Name: "reserved", Offset: cmSpare, Size: chunkMetaSize - cmSpare},
	}
)

func TestLayoutConstants(t *testing.T) {
	var m chunkMeta
	if unsafe.Sizeof(m) != chunkMetaSize {
		t.Fatalf("chunkMeta is %d bytes, want %d", unsafe.Sizeof(m), chunkMetaSize)
	}
	// The constants the code uses to name chunk header words agree with
	// the struct it accesses them through.
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"state", unsafe.Offsetof(m.state), cmState},
		{"next", unsafe.Offsetof(m.next), cmNext},
		{"owner", unsafe.Offsetof(m.owner), cmOwner},
		{"length", unsafe.Offsetof(m.length), cmLength},
		{"class", unsafe.Offsetof(m.class), cmClass},
	} {
		if c.got != c.want {
			t.Errorf("chunkMeta.%s at %d, want %d", c.name, c.got, c.want)
		}
	}
	if unsafe.Sizeof(futex.Event{}) != futex.EventSize || cdEvent%4 != 0 {
		t.Fatal("futex event does not fit its slot")
	}
	// Every table tiles its structure: no gap, no overlap, 8-byte words
	// 8-aligned, and the hot and cold halves of a class descriptor on
	// separate cache lines.
	for _, tb := range []struct {
		name string
		fs   []field
		size int
	}{{"header", headerFields, headerSize}, {"class_desc", classFields, classDescSize}, {"chunk", chunkFields, chunkMetaSize}} {
		off := 0
		for _, f := range tb.fs {
			if f.Offset != off {
				t.Errorf("%s: %s at %d, want %d", tb.name, f.Name, f.Offset, off)
			}
			if f.Size == 8 && f.Offset%8 != 0 || f.Size == 4 && f.Offset%4 != 0 {
				t.Errorf("%s: %s misaligned", tb.name, f.Name)
			}
			off += f.Size
		}
		if off != tb.size {
			t.Errorf("%s: fields cover %d bytes, want %d", tb.name, off, tb.size)
		}
	}
	if cdSize != 64 || cdHead/64 == cdSize/64 {
		t.Error("class descriptor's hot and cold words share a cache line")
	}
	if KindSlab != 0x42414c53 {
		t.Errorf("KindSlab = %#x", KindSlab)
	}
	if Align%chunkMetaSize != 0 || headerSize%Align != 0 || classDescSize%Align != 0 {
		t.Error("structures do not tile cache lines")
	}
}

// TestLayoutDoc checks that docs/allocator.md describes the layout the code
// uses: its three layout tables list the same fields at the same offsets.
func TestLayoutDoc(t *testing.T) {
	layoutdoc.Check(t, docPath, "allocator_header", headerFields)
	layoutdoc.Check(t, docPath, "allocator_class", classFields)
	layoutdoc.Check(t, docPath, "allocator_chunk", chunkFields)
}
