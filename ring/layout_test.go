package ring

import (
	"encoding/binary"
	"testing"
	"unsafe"

	"github.com/shmkit/shmkit/futex"
	"github.com/shmkit/shmkit/internal/layoutdoc"
)

// eventWords finds where futex.Event keeps its two words, from its
// behaviour rather than a literal: the word that Sleepers reads is the
// sleeper count, the other one the futex word.
func eventWords(t *testing.T) (seq, sleepers int) {
	var b [futex.EventSize + 4]byte
	mem := b[:]
	if uintptr(unsafe.Pointer(&b[0]))%4 != 0 {
		t.Fatal("unaligned test buffer")
	}
	for off := 0; off < futex.EventSize; off += 4 {
		clear(mem)
		binary.LittleEndian.PutUint32(mem[off:], 7)
		e, err := futex.EventAt(mem)
		if err != nil {
			t.Fatal(err)
		}
		if e.Sleepers() == 7 {
			return futex.EventSize - 4 - off, off
		}
	}
	t.Fatal("futex.Event: no word reads as the sleeper count")
	return 0, 0
}

// codeLayouts is the byte layout as the code has it, from unsafe.Offsetof
// and the code's constants.
func codeLayouts(t *testing.T) map[string][]layoutdoc.Field {
	var c control
	var s spscSlot
	evSeq, evSleepers := eventWords(t)
	f := func(name string, off uintptr, size int) layoutdoc.Field {
		return layoutdoc.Field{Name: name, Offset: int(off), Size: size}
	}
	return map[string][]layoutdoc.Field{
		"control": {
			f("magic", unsafe.Offsetof(c.hdr)+unsafe.Offsetof(c.hdr.magic), 4),
			f("kind", unsafe.Offsetof(c.hdr.kind), 4),
			f("version", unsafe.Offsetof(c.hdr.version), 4),
			f("slot_size", unsafe.Offsetof(c.hdr.slotSize), 4),
			f("capacity", unsafe.Offsetof(c.hdr.capacity), 8),
			f("size", unsafe.Offsetof(c.hdr.size), 8),
			f("closed", unsafe.Offsetof(c.hdr.closed), 4),
			f("check", unsafe.Offsetof(c.hdr.check), 4),
			f("fence", unsafe.Offsetof(c.hdr.fence), 4),
			f("tail", unsafe.Offsetof(c.tail), 8),
			f("head", unsafe.Offsetof(c.head), 8),
			f("not_empty.seq", unsafe.Offsetof(c.notEmpty)+uintptr(evSeq), 4),
			f("not_empty.sleepers", unsafe.Offsetof(c.notEmpty)+uintptr(evSleepers), 4),
			f("not_full.seq", unsafe.Offsetof(c.notFull)+uintptr(evSeq), 4),
			f("not_full.sleepers", unsafe.Offsetof(c.notFull)+uintptr(evSleepers), 4),
			f("data", unsafe.Sizeof(c), -1),
		},
		"spsc_slot": {
			f("seq", unsafe.Offsetof(s.seq), 8),
			f("len", unsafe.Offsetof(s.len), 4),
			f("reserved", unsafe.Offsetof(s.reserved), 4),
			f("payload", unsafe.Sizeof(s), -1),
		},
		"byte_record": {
			f("len", 0, 4),
			f("tag", 4, 4),
			f("payload", recHeader, -1),
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
		"offFence": unsafe.Offsetof(c.hdr.fence) - offFence,
		"offTail":  unsafe.Offsetof(c.tail) - offTail, "offHead": unsafe.Offsetof(c.head) - offHead,
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

	for table, fields := range codeLayouts(t) {
		layoutdoc.Check(t, "../docs/ring.md", table, fields)
	}
	var s spscSlot
	if unsafe.Offsetof(s.len) != slotLenOff || unsafe.Sizeof(s) != slotHeader {
		t.Errorf("spscSlot: len at %d, size %d; constants %d, %d", unsafe.Offsetof(s.len), unsafe.Sizeof(s), slotLenOff, slotHeader)
	}
}
