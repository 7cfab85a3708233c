package allocator

import (
	"bufio"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"github.com/shmkit/shmkit/futex"
)

type field struct {
	name      string
	off, size int
}

// The layout as the code defines it. docs/allocator.md must list exactly
// these rows in its three layout tables.
var layoutTables = map[string][]field{
	"Region header": {
		{"magic", hdrMagic, 4}, {"version", hdrVersion, 4}, {"size", hdrSize, 8},
		{"classes", hdrClasses, 4}, {"chunk_header_size", hdrMetaSize, 4},
		{"class_table", hdrClassOff, 8}, {"class_desc_size", hdrDescSize, 4},
		{"checksum", hdrChecksum, 4}, {"reserved", hdrReserved, headerSize - hdrReserved},
	},
	"Class descriptor": {
		{"head", cdHead, 8}, {"in_use", cdInUse, 8}, {"high_water", cdHigh, 8},
		{"failed", cdFailed, 8}, {"event.seq", cdEvent, 4}, {"event.sleepers", cdEvent + 4, 4},
		{"reserved", cdEvent + futex.EventSize, cdSize - cdEvent - futex.EventSize},
		{"chunk_size", cdSize, 8}, {"count", cdCount, 8},
		{"meta_offset", cdMetaOff, 8}, {"data_offset", cdDataOff, 8},
		{"reserved", cdDataOff + 8, classDescSize - cdDataOff - 8},
	},
	"Chunk header": {
		{"state", cmState, 8}, {"next", cmNext, 4}, {"owner", cmOwner, 4},
		{"length", cmLength, 4}, {"class", cmClass, 4}, {"reserved", cmSpare, chunkMetaSize - cmSpare},
	},
}

func TestLayoutConstants(t *testing.T) {
	var m chunkMeta
	if unsafe.Sizeof(m) != chunkMetaSize {
		t.Fatalf("chunkMeta is %d bytes, want %d", unsafe.Sizeof(m), chunkMetaSize)
	}
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
	sizes := map[string]int{"Region header": headerSize, "Class descriptor": classDescSize, "Chunk header": chunkMetaSize}
	for name, fs := range layoutTables {
		off := 0
		for _, f := range fs {
			if f.off != off {
				t.Errorf("%s: %s at %d, want %d", name, f.name, f.off, off)
			}
			if f.size == 8 && f.off%8 != 0 || f.size == 4 && f.off%4 != 0 {
				t.Errorf("%s: %s misaligned", name, f.name)
			}
			off += f.size
		}
		if off != sizes[name] {
			t.Errorf("%s: fields cover %d bytes, want %d", name, off, sizes[name])
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
// uses: the three tables list the same fields at the same offsets.
func TestLayoutDoc(t *testing.T) {
	f, err := os.Open("../docs/allocator.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	row := regexp.MustCompile("^\\| *(\\d+) *\\| *(\\d+) *\\| *`([a-z_.]+)`")
	doc := map[string][]field{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			section = ""
			for name := range layoutTables {
				if strings.Contains(line, name) {
					section = name
				}
			}
			continue
		}
		if m := row.FindStringSubmatch(line); m != nil && section != "" {
			off, _ := strconv.Atoi(m[1])
			size, _ := strconv.Atoi(m[2])
			doc[section] = append(doc[section], field{m[3], off, size})
		}
	}
	for name, want := range layoutTables {
		got := doc[name]
		if len(got) != len(want) {
			t.Errorf("docs: %s has %d rows, code has %d: %v", name, len(got), len(want), got)
			continue
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("docs: %s row %d is %+v, code says %+v", name, i, got[i], want[i])
			}
		}
	}
}
