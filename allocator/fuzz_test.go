package allocator

import (
	"encoding/binary"
	"errors"
	"testing"
)

var fuzzConfig = Config{Classes: []Class{{64, 4}, {192, 2}, {256, 2}}}

// FuzzRef feeds arbitrary references to every operation that takes one, on
// a region with live, freed, reallocated and cached chunks, through a handle
// without a magazine (op bit 3 clear) or with one (set). Each call must
// succeed or fail with ErrBadRef or ErrDoubleFree (never panic or touch
// memory outside the region), and the pool must stay consistent.
func FuzzRef(f *testing.F) {
	a := newTest(f, fuzzConfig)
	var refs []Ref
	for _, n := range []int{1, 64, 100, 192, 200} {
		r, _ := a.Alloc(n)
		refs = append(refs, r)
	}
	for _, r := range refs {
		f.Add(uint64(r), uint8(0))
		f.Add(uint64(r)+1, uint8(1))
		f.Add(uint64(r)+1<<refGenBits, uint8(2))
		f.Add(uint64(r)-1<<refGenBits, uint8(3))
	}
	f.Add(uint64(0), uint8(4))
	f.Add(^uint64(0), uint8(5))
	f.Fuzz(func(t *testing.T, raw uint64, op uint8) {
		base := newTest(t, fuzzConfig)
		c := withOwner(t, base, 4, WithCache(2))
		for i, n := range []int{1, 64, 100, 192, 200} {
			r, err := c.Alloc(n)
			if err != nil {
				t.Fatal(err)
			}
			if i%2 == 0 {
				_ = c.Free(r) // leave stale generations and cached chunks behind
			}
		}
		a := base
		if op&8 != 0 {
			a = c
		}
		r := Ref(raw)
		var err error
		switch op % 8 {
		case 0:
			err = a.Free(r)
		case 1:
			err = a.Release(r)
		case 2:
			err = a.Retain(r)
			if err == nil {
				err = a.Release(r)
			}
		case 3:
			var b []byte
			b, err = a.Bytes(r)
			if err == nil {
				b = b[:cap(b)]
				b[0], b[len(b)-1] = 1, 1
			}
		case 4:
			err = a.SetLen(r, int(op))
		case 5:
			_, err = a.Len(r)
		case 6:
			err = a.SetOwner(r, 9)
		case 7:
			_, err = a.RefCount(r)
		}
		if err != nil && !errors.Is(err, ErrBadRef) && !errors.Is(err, ErrDoubleFree) && !errors.Is(err, ErrTooLarge) {
			t.Fatalf("%v op %d: unexpected error %v", r, op%8, err)
		}
		if _, err := a.Check(); err != nil {
			t.Fatalf("%v op %d: %v", r, op%8, err)
		}
		if err := c.Flush(); err != nil {
			t.Fatalf("%v op %d: flush: %v", r, op%8, err)
		}
		if _, err := a.Check(); err != nil {
			t.Fatalf("%v op %d: after flush: %v", r, op%8, err)
		}
	})
}

// FuzzAttach corrupts a valid region (header, class table, chunk headers)
// with the patches in data — pairs of a 16-bit offset and a byte — and then
// attaches and uses it. Attach must fail with a sentinel or return an
// Allocator whose operations fail with errors (never panic, hang or access
// memory outside the region); ReadStats likewise.
func FuzzAttach(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 0, 'X'})
	f.Add([]byte{16, 0, 200})                                        // class count
	f.Add([]byte{byte(classTableOff + cdSize), 0, 0x80})             // class 0 size
	f.Add([]byte{byte(classTableOff + cdHead), 0, 3})                // free-list head
	f.Add([]byte{byte(classTableOff + cdHead), 0, 0xff})             // head out of range
	f.Add([]byte{byte(classTableOff + cdInUse), 0, 0xff})            // in-use counter
	f.Add([]byte{0x68, 0x01, 0x07, 0x48, 0x01, 0x01})                // chunk links
	f.Add([]byte{0x60, 0x01, 0x01, 0x70, 0x01, 0xff})                // chunk state, length
	f.Add([]byte{byte(classTableOff + cdDataOff), 0, 0x40, 8, 0, 1}) // data offset, size
	base := newTest(f, fuzzConfig)
	// A few chunks in use, one freed: the region a peer would see.
	r1, _ := withOwner(f, base, 3).Alloc(10)
	r2, _ := base.Alloc(150)
	_, _ = base.Alloc(250)
	_ = base.Free(r1)
	f.Fuzz(func(t *testing.T, data []byte) {
		mem := alignedMem(len(base.mem))
		copy(mem, base.mem)
		for i := 0; i+2 < len(data); i += 3 {
			off := int(binary.LittleEndian.Uint16(data[i:])) % len(mem)
			mem[off] = data[i+2]
		}
		if _, err := ReadStats(mem); err != nil && !isSentinel(err) {
			t.Fatalf("read stats: %v", err)
		}
		a, err := Attach(mem)
		if err != nil {
			if !isSentinel(err) {
				t.Fatalf("attach: %v", err)
			}
			return
		}
		_, _ = a.Check()
		_, _ = a.Bytes(r2)
		_ = a.Release(r2)
		// Half the allocations through a handle with a magazine.
		p, err := a.Handle(WithOwner(3), WithCache(2))
		if err != nil {
			t.Fatal(err)
		}
		var refs []Ref
		for _, c := range a.Classes() {
			for k := range c.Count + 1 { // one more than the class holds
				h := a
				if k%2 == 1 {
					h = p
				}
				r, err := h.Alloc(c.Size)
				if err != nil {
					if !isSentinel(err) {
						t.Fatalf("alloc: %v", err)
					}
					break
				}
				refs = append(refs, r)
				if b, err := a.Bytes(r); err == nil {
					b = b[:cap(b)]
					b[0], b[len(b)-1] = 1, 1
				}
			}
		}
		for i, r := range refs {
			if i%2 == 0 {
				_ = p.Free(r)
			} else {
				_ = a.Free(r)
			}
		}
		if err := p.Flush(); err != nil && !isSentinel(err) {
			t.Fatalf("flush: %v", err)
		}
		_, _ = a.ReclaimOwner(3)
		_, _ = a.Check()
		a.Recover()
		if _, err := a.Check(); err != nil {
			t.Fatalf("after Recover: %v", err)
		}
		_ = a.Stats()
	})
}

func isSentinel(err error) bool {
	for _, s := range []error{ErrTooSmall, ErrUnaligned, ErrBadMagic, ErrVersion, ErrCorrupt, ErrBadRef,
		ErrDoubleFree, ErrNoMemory, ErrTooLarge, ErrInFlight, ErrRefCount, ErrConfig} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}
