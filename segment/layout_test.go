package segment

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
)

type field struct {
	name      string
	off, size int
}

// The code's layout, field by field; sizes come from the next offset.
var headerFields = []field{
	{"magic", hdrMagic, hdrVersion - hdrMagic},
	{"version", hdrVersion, hdrHeaderSize - hdrVersion},
	{"header_size", hdrHeaderSize, hdrTotalSize - hdrHeaderSize},
	{"total_size", hdrTotalSize, hdrBackend - hdrTotalSize},
	{"backend", hdrBackend, hdrTOCCap - hdrBackend},
	{"toc_capacity", hdrTOCCap, hdrCreatorPID - hdrTOCCap},
	{"creator_pid", hdrCreatorPID, hdrSysVKey - hdrCreatorPID},
	{"sysv_key", hdrSysVKey, hdrCreatorStart - hdrSysVKey},
	{"creator_start", hdrCreatorStart, hdrCreated - hdrCreatorStart},
	{"created", hdrCreated, hdrName - hdrCreated},
	{"name", hdrName, hdrImmutableEnd - hdrName},
	{"checksum", hdrChecksum, hdrTOCCount - hdrChecksum},
	{"toc_count", hdrTOCCount, hdrReserved - hdrTOCCount},
	{"reserved", hdrReserved, hdrFixedSize - hdrReserved},
	{"toc", hdrFixedSize, -1}, // 64 × toc_capacity
}

var entryFields = []field{
	{"name", tocName, tocKind - tocName},
	{"kind", tocKind, tocAlign - tocKind},
	{"align", tocAlign, tocOffset - tocAlign},
	{"offset", tocOffset, tocLength - tocOffset},
	{"length", tocLength, tocChecksum - tocLength},
	{"checksum", tocChecksum, tocReserved - tocChecksum},
	{"reserved", tocReserved, tocEntrySize - tocReserved},
}

// docTable returns the rows of the table under the heading "## title".
func docTable(t *testing.T, title string) []field {
	t.Helper()
	f, err := os.Open("../docs/segment-layout.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows []field
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "## ") {
			in = line == "## "+title
			continue
		}
		if !in || !strings.HasPrefix(line, "| ") {
			continue
		}
		cells := strings.Split(line, "|")
		if len(cells) < 5 {
			continue
		}
		off, err := strconv.Atoi(strings.TrimSpace(cells[1]))
		if err != nil {
			continue // the title row and the separator
		}
		size, err := strconv.Atoi(strings.TrimSpace(cells[2]))
		if err != nil {
			size = -1 // "64 × toc_capacity"
		}
		rows = append(rows, field{strings.TrimSpace(cells[3]), off, size})
	}
	return rows
}

func TestLayoutMatchesDoc(t *testing.T) {
	for _, tc := range []struct {
		title string
		code  []field
	}{{"Header", headerFields}, {"TOC entry", entryFields}} {
		doc := docTable(t, tc.title)
		if len(doc) != len(tc.code) {
			t.Fatalf("%s: doc has %d rows %v, code %d", tc.title, len(doc), doc, len(tc.code))
		}
		for i := range doc {
			if doc[i] != tc.code[i] {
				t.Errorf("%s row %d: doc %+v, code %+v", tc.title, i, doc[i], tc.code[i])
			}
		}
	}
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
