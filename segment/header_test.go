package segment

import (
	"errors"
	"testing"
	"time"
)

// testImage builds a valid in-memory segment image of size bytes.
func testImage(capacity int, size int64, regions ...Region) []byte {
	b := make([]byte, size)
	h := &header{
		version: Version, headerSize: headerSize(capacity), totalSize: size, backend: POSIX,
		tocCap: capacity, creatorPID: 1, creatorStart: 7, created: time.Unix(0, 12345), name: "img",
	}
	copy(b, encodeHeader(h))
	for i, r := range regions {
		copy(b[hdrFixedSize+i*tocEntrySize:], encodeEntry(r))
	}
	le.PutUint32(b[hdrTOCCount:], uint32(len(regions)))
	return b
}

// reseal recomputes the header checksum after a deliberate change.
func reseal(b []byte) { le.PutUint32(b[hdrChecksum:], checksum(b[:hdrImmutableEnd])) }

func TestValidate(t *testing.T) {
	const capacity, size = 4, 8192
	hs := headerSize(capacity)
	r1 := Region{Name: "a", Kind: FourCC("SPSC"), Offset: hs, Length: 100, Align: 64}
	r2 := Region{Name: "b", Kind: FourCC("SLAB"), Offset: 4096, Length: 4096, Align: 4096}
	good := func() []byte { return testImage(capacity, size, r1, r2) }
	h, rs, err := validate(good())
	if err != nil || h.name != "img" || h.creatorStart != 7 || h.created.UnixNano() != 12345 ||
		len(rs) != 2 || rs[0] != r1 || rs[1] != r2 {
		t.Fatalf("valid image: %+v %+v %v", h, rs, err)
	}

	entry := func(i int) int { return hdrFixedSize + i*tocEntrySize }
	putEntry := func(b []byte, i int, r Region) { copy(b[entry(i):], encodeEntry(r)) }
	cases := []struct {
		name   string
		mutate func(b []byte) []byte
		want   error
	}{
		{"empty", func(b []byte) []byte { return nil }, ErrNotReady},
		{"zero magic", func(b []byte) []byte { clear(b[:8]); return b }, ErrNotReady},
		{"bad magic", func(b []byte) []byte { b[0] = 'X'; return b }, ErrBadMagic},
		{"short object", func(b []byte) []byte { return b[:100] }, ErrCorrupt},
		{"version", func(b []byte) []byte { le.PutUint32(b[hdrVersion:], 2); return b }, ErrVersion},
		{"checksum", func(b []byte) []byte { b[hdrName+1] ^= 1; return b }, ErrCorrupt},
		{"header size", func(b []byte) []byte { le.PutUint32(b[hdrHeaderSize:], 320); reseal(b); return b }, ErrCorrupt},
		{"toc capacity", func(b []byte) []byte { le.PutUint32(b[hdrTOCCap:], MaxTOCCapacity+1); reseal(b); return b }, ErrCorrupt},
		{"total size", func(b []byte) []byte { le.PutUint64(b[hdrTotalSize:], size*2); reseal(b); return b }, ErrCorrupt},
		{"truncated object", func(b []byte) []byte { return b[:size-1] }, ErrCorrupt},
		{"absurd size", func(b []byte) []byte { le.PutUint64(b[hdrTotalSize:], 1<<62); reseal(b); return b }, ErrCorrupt},
		{"backend", func(b []byte) []byte { le.PutUint32(b[hdrBackend:], 9); reseal(b); return b }, ErrCorrupt},
		{"pid", func(b []byte) []byte { le.PutUint32(b[hdrCreatorPID:], 0); reseal(b); return b }, ErrCorrupt},
		{"sysv key on posix", func(b []byte) []byte { le.PutUint32(b[hdrSysVKey:], 5); reseal(b); return b }, ErrCorrupt},
		{"name with slash", func(b []byte) []byte { b[hdrName] = '/'; reseal(b); return b }, ErrCorrupt},
		{"name with ..", func(b []byte) []byte { copy(b[hdrName:], "a..b"); reseal(b); return b }, ErrCorrupt},
		{"empty name", func(b []byte) []byte { clear(b[hdrName : hdrName+MaxNameLen]); reseal(b); return b }, ErrCorrupt},
		{"junk after name", func(b []byte) []byte { b[hdrName+100] = 'x'; reseal(b); return b }, ErrCorrupt},
		{"reserved", func(b []byte) []byte { b[hdrReserved+3] = 1; return b }, ErrCorrupt},
		{"count > capacity", func(b []byte) []byte { le.PutUint32(b[hdrTOCCount:], capacity+1); return b }, ErrCorrupt},
		{"count huge", func(b []byte) []byte { le.PutUint32(b[hdrTOCCount:], 0xffffffff); return b }, ErrCorrupt},
		{"count beyond written", func(b []byte) []byte { le.PutUint32(b[hdrTOCCount:], 3); return b }, ErrCorrupt},
		{"entry checksum", func(b []byte) []byte { b[entry(1)+tocLength] ^= 1; return b }, ErrCorrupt},
		{"overlapping header", func(b []byte) []byte {
			putEntry(b, 0, Region{Name: "a", Offset: hs - 64, Length: 100, Align: 64})
			return b
		}, ErrCorrupt},
		{"overlapping each other", func(b []byte) []byte {
			putEntry(b, 1, Region{Name: "b", Offset: hs + 64, Length: 64, Align: 64})
			return b
		}, ErrCorrupt},
		{"out of order", func(b []byte) []byte {
			putEntry(b, 0, r2)
			putEntry(b, 1, r1)
			return b
		}, ErrCorrupt},
		{"past the end", func(b []byte) []byte {
			putEntry(b, 1, Region{Name: "b", Offset: 4096, Length: 4097, Align: 64})
			return b
		}, ErrCorrupt},
		{"length wraps", func(b []byte) []byte {
			putEntry(b, 1, Region{Name: "b", Offset: 4096, Length: -4096, Align: 64})
			return b
		}, ErrCorrupt},
		{"zero length", func(b []byte) []byte {
			putEntry(b, 1, Region{Name: "b", Offset: 4096, Length: 0, Align: 64})
			return b
		}, ErrCorrupt},
		{"unaligned", func(b []byte) []byte {
			putEntry(b, 1, Region{Name: "b", Offset: 4096 + 8, Length: 8, Align: 64})
			return b
		}, ErrCorrupt},
		{"align not power of two", func(b []byte) []byte {
			putEntry(b, 1, Region{Name: "b", Offset: 4096, Length: 8, Align: 96})
			return b
		}, ErrCorrupt},
		{"duplicate name", func(b []byte) []byte {
			putEntry(b, 1, Region{Name: "a", Offset: 4096, Length: 8, Align: 64})
			return b
		}, ErrCorrupt},
		{"bad region name", func(b []byte) []byte {
			putEntry(b, 1, Region{Name: "a b", Offset: 4096, Length: 8, Align: 64})
			return b
		}, ErrCorrupt},
	}
	for _, c := range cases {
		_, _, err := validate(c.mutate(good()))
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}

// FuzzValidate feeds arbitrary images to the validator: it must never
// panic, and whatever it accepts must describe regions inside the image.
// With fix set, the header and entry checksums are recomputed first, so the
// fuzzer also reaches the checks behind them.
func FuzzValidate(f *testing.F) {
	hs := headerSize(2)
	f.Add(testImage(2, 2048, Region{Name: "r", Kind: 1, Offset: hs, Length: 64, Align: 64}), true)
	f.Add(testImage(2, 2048, Region{Name: "r", Kind: 1, Offset: hs, Length: 64, Align: 64},
		Region{Name: "s", Kind: 2, Offset: 1024, Length: 1024, Align: 1024}), false)
	f.Add(testImage(0, 1024), true)
	f.Add(testImage(1, hs+1), false)
	f.Add([]byte(Magic), false)
	f.Add([]byte{}, false)
	f.Fuzz(func(t *testing.T, b []byte, fix bool) {
		if fix && len(b) >= hdrFixedSize {
			reseal(b)
			for off := hdrFixedSize; off+tocEntrySize <= len(b) && off < hdrFixedSize+8*tocEntrySize; off += tocEntrySize {
				le.PutUint32(b[off+tocChecksum:], checksum(b[off:off+tocChecksum]))
			}
		}
		h, rs, err := validate(b)
		if err != nil {
			return
		}
		end := h.headerSize
		for _, r := range rs {
			if r.Offset < end || r.Length <= 0 || r.Offset+r.Length > int64(len(b)) || r.Offset%r.Align != 0 {
				t.Fatalf("accepted region %+v (prev end %d, size %d)", r, end, len(b))
			}
			end = r.Offset + r.Length
		}
	})
}

func TestFourCC(t *testing.T) {
	for _, c := range []string{"SPSC", "BYTE", "MPMC", "SLAB", "ab"} {
		k := FourCC(c)
		if got := FourCCString(k); got != c {
			t.Errorf("FourCCString(FourCC(%q)) = %q", c, got)
		}
	}
	if FourCC("SPSC") != 0x43535053 {
		t.Errorf("FourCC(SPSC) = %#x: first character must be the lowest byte", FourCC("SPSC"))
	}
	for k, want := range map[uint32]string{0: "0x00000000", 7: "0x00000007", 0x20202020: "0x20202020"} {
		if got := FourCCString(k); got != want {
			t.Errorf("FourCCString(%#x) = %q, want %q", k, got, want)
		}
	}
	for _, bad := range []string{"", "TOOLONG", "a\x01"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("FourCC(%q) did not panic", bad)
				}
			}()
			FourCC(bad)
		}()
	}
}

func TestNames(t *testing.T) {
	long := string(make([]byte, 0))
	for i := 0; i < MaxNameLen; i++ {
		long += "a"
	}
	for _, n := range []string{"a", "A-z_0.9", long, ".hidden", "x.y"} {
		if !ValidName(n) {
			t.Errorf("ValidName(%q) = false", n)
		}
	}
	for _, n := range []string{"", long + "a", "a/b", "..", "a..b", "a b", "ü", "a\x00", "*"} {
		if ValidName(n) {
			t.Errorf("ValidName(%q) = true", n)
		}
		for _, b := range []Backend{POSIX, SysV, Memfd} {
			if _, err := Create(b, n, 8192, nil); !errors.Is(err, ErrInvalidName) {
				t.Errorf("Create(%v, %q): %v, want ErrInvalidName", b, n, err)
			}
			if _, err := Open(b, n, nil); !errors.Is(err, ErrInvalidName) {
				t.Errorf("Open(%v, %q): %v, want ErrInvalidName", b, n, err)
			}
			if err := Remove(b, n, nil); !errors.Is(err, ErrInvalidName) {
				t.Errorf("Remove(%v, %q): %v, want ErrInvalidName", b, n, err)
			}
		}
	}
	if _, err := Create(File, t.TempDir()+"/bad name", 8192, nil); !errors.Is(err, ErrInvalidName) {
		t.Errorf("Create(File, bad base name): %v", err)
	}
	if SysVKey("x") == SysVKey("y") || SysVKey("x") != SysVKey("x") || SysVKey("x") == 0 {
		t.Error("SysVKey is not a stable, distinguishing hash")
	}
	// FNV-1a 32 of "shmkit.a", computed by hand from the published algorithm.
	h := uint32(2166136261)
	for _, c := range []byte("shmkit.a") {
		h ^= uint32(c)
		h *= 16777619
	}
	if SysVKey("a") != int32(h) {
		t.Errorf("SysVKey(a) = %#x, want FNV-1a %#x", SysVKey("a"), h)
	}
}

func TestBackendNames(t *testing.T) {
	for _, b := range allBackends {
		got, err := ParseBackend(b.String())
		if err != nil || got != b {
			t.Errorf("ParseBackend(%q) = %v, %v", b.String(), got, err)
		}
	}
	if _, err := ParseBackend("shm"); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("ParseBackend(shm): %v", err)
	}
}
