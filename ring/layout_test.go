package ring

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"github.com/shmkit/shmkit/futex"
)

// field is one row of a layout table: offset and size in bytes (size 0 for
// a variable-length tail such as a payload).
type field struct{ off, size int }

// codeLayouts is the byte layout as the code has it.
func codeLayouts() map[string]map[string]field {
	var c control
	var e futex.Event
	base := uintptr(unsafe.Pointer(&c))
	at := func(p unsafe.Pointer) int { return int(uintptr(p) - base) }
	evSeq := int(uintptr(unsafe.Pointer(&e)) - uintptr(unsafe.Pointer(&e))) // seq is the first word
	return map[string]map[string]field{
		"control": {
			"magic":              {at(unsafe.Pointer(&c.hdr.magic)), 4},
			"kind":               {at(unsafe.Pointer(&c.hdr.kind)), 4},
			"version":            {at(unsafe.Pointer(&c.hdr.version)), 4},
			"slot_size":          {at(unsafe.Pointer(&c.hdr.slotSize)), 4},
			"capacity":           {at(unsafe.Pointer(&c.hdr.capacity)), 8},
			"size":               {at(unsafe.Pointer(&c.hdr.size)), 8},
			"closed":             {at(unsafe.Pointer(&c.hdr.closed)), 4},
			"check":              {at(unsafe.Pointer(&c.hdr.check)), 4},
			"tail":               {at(unsafe.Pointer(&c.tail)), 8},
			"head":               {at(unsafe.Pointer(&c.head)), 8},
			"not_empty.seq":      {at(unsafe.Pointer(&c.notEmpty)) + evSeq, 4},
			"not_empty.sleepers": {at(unsafe.Pointer(&c.notEmpty)) + 4, 4},
			"not_full.seq":       {at(unsafe.Pointer(&c.notFull)) + evSeq, 4},
			"not_full.sleepers":  {at(unsafe.Pointer(&c.notFull)) + 4, 4},
			"data":               {int(unsafe.Sizeof(c)), 0},
		},
		"spsc_slot": {
			"seq":      {0, 8},
			"len":      {slotLenOff, 4},
			"reserved": {12, 4},
			"payload":  {slotHeader, 0},
		},
		"byte_record": {
			"len":     {0, 4},
			"tag":     {4, 4},
			"payload": {recHeader, 0},
		},
	}
}

// TestLayout checks the code's layout constants against unsafe.Offsetof,
// and docs/ring.md's layout tables against the code.
func TestLayout(t *testing.T) {
	var c control
	for name, got := range map[string]uintptr{
		"offMagic": unsafe.Offsetof(c.hdr.magic) - offMagic, "offKind": unsafe.Offsetof(c.hdr.kind) - offKind,
		"offVersion": unsafe.Offsetof(c.hdr.version) - offVersion, "offSlotSize": unsafe.Offsetof(c.hdr.slotSize) - offSlotSize,
		"offCapacity": unsafe.Offsetof(c.hdr.capacity) - offCapacity, "offSize": unsafe.Offsetof(c.hdr.size) - offSize,
		"offClosed": unsafe.Offsetof(c.hdr.closed) - offClosed, "offCheck": unsafe.Offsetof(c.hdr.check) - offCheck,
		"offTail": unsafe.Offsetof(c.tail) - offTail, "offHead": unsafe.Offsetof(c.head) - offHead,
		"offNotEmpty": unsafe.Offsetof(c.notEmpty) - offNotEmpty, "offNotFull": unsafe.Offsetof(c.notFull) - offNotFull,
		"dataOffset": unsafe.Sizeof(c) - dataOffset, "header": unsafe.Sizeof(c.hdr) - cacheLine,
	} {
		if got != 0 {
			t.Errorf("%s differs from the struct by %d", name, int(got))
		}
	}
	for _, off := range []int{offTail, offHead, offNotEmpty, offNotFull, dataOffset} {
		if off%cacheLine != 0 {
			t.Errorf("offset %d is not on its own cache line", off)
		}
	}
	if s := futex.EventSize; s != 8 {
		t.Errorf("futex.EventSize %d", s)
	}
	for name, want := range map[string]uint32{"SPSC": KindSPSC, "BYTE": KindByte, "MPMC": KindMPMC, "RING": magic} {
		if got := kindName(want); got != name {
			t.Errorf("FourCC %q encodes as %q", name, got)
		}
	}

	doc := docLayouts(t, "../docs/ring.md")
	for table, fields := range codeLayouts() {
		got, ok := doc[table]
		if !ok {
			t.Errorf("docs/ring.md has no layout table %q", table)
			continue
		}
		for name, f := range fields {
			if d, ok := got[name]; !ok {
				t.Errorf("docs/ring.md table %s lacks %s", table, name)
			} else if d != f {
				t.Errorf("docs/ring.md table %s: %s at %d (%d bytes), code has %d (%d bytes)", table, name, d.off, d.size, f.off, f.size)
			}
		}
		for name := range got {
			if _, ok := fields[name]; !ok {
				t.Errorf("docs/ring.md table %s has %s, the code does not", table, name)
			}
		}
	}
}

// docLayouts parses the tables between "<!-- layout:NAME -->" and
// "<!-- /layout -->" in the doc: rows "| offset | size | field | ... |",
// size "-" for a variable-length tail.
func docLayouts(t *testing.T, path string) map[string]map[string]field {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]map[string]field{}
	var cur map[string]field
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "<!-- layout:"):
			cur = map[string]field{}
			out[strings.TrimSuffix(strings.TrimPrefix(line, "<!-- layout:"), " -->")] = cur
		case line == "<!-- /layout -->":
			cur = nil
		case cur != nil && strings.HasPrefix(line, "|"):
			cols := strings.Split(strings.Trim(line, "|"), "|")
			if len(cols) < 3 {
				continue
			}
			off, err := strconv.Atoi(strings.TrimSpace(cols[0]))
			if err != nil {
				continue // header or separator row
			}
			size := 0
			if s := strings.TrimSpace(cols[1]); s != "-" {
				if size, err = strconv.Atoi(s); err != nil {
					t.Fatalf("%s: bad size in %q", path, line)
				}
			}
			cur[strings.Trim(strings.TrimSpace(cols[2]), "`")] = field{off, size}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
