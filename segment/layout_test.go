package segment

import (
	"testing"

	"github.com/shmkit/shmkit/internal/layoutdoc"
)

type field = layoutdoc.Field

// The code's layout, field by field; sizes come from the next offset.
var headerFields = []field{
	{Name: "magic", Offset: hdrMagic, Size: hdrVersion - hdrMagic},
	{Name: "version", Offset: hdrVersion, Size: hdrHeaderSize - hdrVersion},
	{Name: "header_size", Offset: hdrHeaderSize, Size: hdrTotalSize - hdrHeaderSize},
	{Name: "total_size", Offset: hdrTotalSize, Size: hdrBackend - hdrTotalSize},
	{Name: "backend", Offset: hdrBackend, Size: hdrTOCCap - hdrBackend},
	{Name: "toc_capacity", Offset: hdrTOCCap, Size: hdrCreatorPID - hdrTOCCap},
	{Name: "creator_pid", Offset: hdrCreatorPID, Size: hdrSysVKey - hdrCreatorPID},
	{Name: "sysv_key", Offset: hdrSysVKey, Size: hdrCreatorStart - hdrSysVKey},
	{Name: "creator_start", Offset: hdrCreatorStart, Size: hdrCreated - hdrCreatorStart},
	{Name: "created", Offset: hdrCreated, Size: hdrName - hdrCreated},
	{Name: "name", Offset: hdrName, Size: hdrImmutableEnd - hdrName},
	{Name: "checksum", Offset: hdrChecksum, Size: hdrTOCCount - hdrChecksum},
	{Name: "toc_count", Offset: hdrTOCCount, Size: hdrReserved - hdrTOCCount},
	{Name: "reserved", Offset: hdrReserved, Size: hdrFixedSize - hdrReserved},
	{Name: "toc", Offset: hdrFixedSize, Size: -1}, // 64 × toc_capacity
}

var entryFields = []field{
	{Name: "name", Offset: tocName, Size: tocKind - tocName},
	{Name: "kind", Offset: tocKind, Size: tocAlign - tocKind},
	{Name: "align", Offset: tocAlign, Size: tocOffset - tocAlign},
	{Name: "offset", Offset: tocOffset, Size: tocLength - tocOffset},
	{Name: "length", Offset: tocLength, Size: tocChecksum - tocLength},
	{Name: "checksum", Offset: tocChecksum, Size: tocReserved - tocChecksum},
	{Name: "reserved", Offset: tocReserved, Size: tocEntrySize - tocReserved},
}

func TestLayoutMatchesDoc(t *testing.T) {
	layoutdoc.Check(t, "../docs/segment-layout.md", "header", headerFields)
	layoutdoc.Check(t, "../docs/segment-layout.md", "toc_entry", entryFields)
}

func TestLayoutAlignment(t *testing.T) {
	// Every word accessed atomically, and every 8-byte field, is naturally
	// aligned; the TOC and entries sit on cache-line boundaries.
	for _, c := range []struct{ off, align int }{
		{hdrMagic, 8}, {hdrTotalSize, 8}, {hdrCreatorStart, 8}, {hdrCreated, 8},
		{hdrTOCCount, 4}, {hdrFixedSize, 64}, {tocEntrySize, 64}, {tocOffset, 8}, {tocLength, 8},
	} {
		if c.off%c.align != 0 {
			t.Errorf("offset %d not %d-aligned", c.off, c.align)
		}
	}
	if hdrName+MaxNameLen != hdrImmutableEnd || tocName+MaxRegionNameLen != tocKind {
		t.Error("name fields do not fit their lengths")
	}
	if len(Magic) != hdrVersion || len(encodeHeader(&header{name: "x"})) != hdrFixedSize {
		t.Error("magic or encoded header size wrong")
	}
	if len(encodeEntry(Region{Name: "x"})) != tocEntrySize {
		t.Error("encoded entry size wrong")
	}
}
