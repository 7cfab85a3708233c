package segment

import (
	"errors"
	"io"
	"math"
	"testing"
)

func TestAccessorsChecked(t *testing.T) {
	s := mustCreate(t, Memfd, testName(t), 8192, &Options{TOCCapacity: 2})
	d, end := s.DataOffset(), s.Size()
	if d != headerSize(2) {
		t.Fatalf("DataOffset %d", d)
	}
	if b, err := s.Bytes(d, end-d); err != nil || int64(len(b)) != end-d || int64(cap(b)) != end-d {
		t.Fatalf("whole data area: len %d, %v", len(b), err)
	}
	if b, err := s.Bytes(end, 0); err != nil || len(b) != 0 {
		t.Fatalf("empty slice at the end: %v", err)
	}
	for _, c := range [][2]int64{{0, 8}, {d - 1, 2}, {end - 7, 8}, {end + 1, 0}, {d, -1}, {-8, 8},
		{d, math.MaxInt64}, {math.MaxInt64, 1}, {math.MinInt64, 8}} {
		if _, err := s.Bytes(c[0], c[1]); !errors.Is(err, ErrOutOfRange) {
			t.Errorf("Bytes(%d, %d): %v, want ErrOutOfRange", c[0], c[1], err)
		}
	}
	if _, err := s.Uint32(d + 2); !errors.Is(err, ErrUnaligned) {
		t.Errorf("Uint32 unaligned: %v", err)
	}
	if _, err := s.Uint64(d + 4); !errors.Is(err, ErrUnaligned) {
		t.Errorf("Uint64 unaligned: %v", err)
	}
	if _, err := s.Uint64(end - 4); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("Uint64 past the end: %v", err)
	}
	if _, err := s.Uint32(hdrTOCCount); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("Uint32 in the header: %v", err)
	}
	w, err := s.Uint32(end - 4)
	if err != nil {
		t.Fatal(err)
	}
	w.Store(7)
	if v, err := s.LoadUint32(end - 4); err != nil || v != 7 {
		t.Fatalf("LoadUint32 = %d, %v", v, err)
	}
	// ReadAt covers the header too, as io.ReaderAt.
	magic := make([]byte, 8)
	if n, err := s.ReadAt(magic, 0); n != 8 || err != nil || string(magic) != Magic {
		t.Fatalf("ReadAt(0) = %d %q %v", n, magic, err)
	}
	if n, err := s.ReadAt(make([]byte, 8), end-4); n != 4 || err != io.EOF {
		t.Fatalf("ReadAt at the end = %d, %v", n, err)
	}
	if _, err := s.ReadAt(magic, -1); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("ReadAt(-1): %v", err)
	}
	if _, err := s.RegionBytes("nope"); !errors.Is(err, ErrNoRegion) {
		t.Fatalf("RegionBytes(missing): %v", err)
	}
}

func TestAddRegionErrors(t *testing.T) {
	s := mustCreate(t, Memfd, testName(t), 8192, &Options{TOCCapacity: 2})
	for _, c := range []struct {
		name          string
		length, align int64
		want          error
	}{
		{"bad name", 8, 8, ErrInvalidName},
		{"", 8, 8, ErrInvalidName},
		{"x", 0, 8, ErrInvalidSize},
		{"x", -1, 8, ErrInvalidSize},
		{"x", 8, 3, ErrInvalidOption},
		{"x", 8, -64, ErrInvalidOption},
		{"x", 8, MaxAlign * 2, ErrInvalidOption},
		{"x", 8192, 8, ErrNoRoom},
		{"x", math.MaxInt64, 8, ErrNoRoom},
		{"x", 8, MaxAlign, ErrNoRoom},
	} {
		if _, err := s.AddRegion(c.name, 0, c.length, c.align); !errors.Is(err, c.want) {
			t.Errorf("AddRegion(%q, %d, %d): %v, want %v", c.name, c.length, c.align, err, c.want)
		}
	}
	if _, err := s.AddRegion("a", 0, 100, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddRegion("a", 0, 100, 0); !errors.Is(err, ErrExist) {
		t.Fatalf("duplicate region: %v", err)
	}
	r, err := s.AddRegion("b", 0, s.Size()-s.DataOffset()-128, 64)
	if err != nil {
		t.Fatal(err)
	}
	if r.Offset+r.Length != s.Size() {
		t.Fatalf("last region %+v does not end at %d", r, s.Size())
	}
	if _, err := s.AddRegion("c", 0, 1, 1); !errors.Is(err, ErrTOCFull) {
		t.Fatalf("third region with capacity 2: %v", err)
	}
}

func TestReadOnly(t *testing.T) {
	for _, b := range []Backend{POSIX, SysV, File, Memfd} {
		t.Run(b.String(), func(t *testing.T) {
			name := testTarget(t, b)
			s := mustCreate(t, b, name, 16<<10, nil)
			r, err := s.AddRegion("r", FourCC("BYTE"), 64, 64)
			if err != nil {
				t.Fatal(err)
			}
			w, _ := s.Uint64(r.Offset)
			w.Store(99)
			ro, err := openAgain(t, s, name, &Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer ro.Close()
			if !ro.ReadOnly() {
				t.Fatal("ReadOnly() = false")
			}
			if _, err := ro.Bytes(r.Offset, 8); !errors.Is(err, ErrReadOnly) {
				t.Errorf("Bytes: %v", err)
			}
			if _, err := ro.RegionBytes("r"); !errors.Is(err, ErrReadOnly) {
				t.Errorf("RegionBytes: %v", err)
			}
			if _, err := ro.Uint32(r.Offset); !errors.Is(err, ErrReadOnly) {
				t.Errorf("Uint32: %v", err)
			}
			if _, err := ro.Uint64(r.Offset); !errors.Is(err, ErrReadOnly) {
				t.Errorf("Uint64: %v", err)
			}
			if _, err := ro.AddRegion("x", 0, 8, 8); !errors.Is(err, ErrReadOnly) {
				t.Errorf("AddRegion: %v", err)
			}
			if v, err := ro.LoadUint64(r.Offset); err != nil || v != 99 {
				t.Errorf("LoadUint64 = %d, %v", v, err)
			}
			w.Store(100) // the read-only view follows the writer
			if v, _ := ro.LoadUint64(r.Offset); v != 100 {
				t.Errorf("LoadUint64 after a write = %d", v)
			}
			if rs, err := ro.Regions(); err != nil || len(rs) != 1 {
				t.Errorf("Regions = %v, %v", rs, err)
			}
			// The mapping itself is PROT_READ: mprotect-level proof.
			if writable(ro.mem) {
				t.Error("read-only attachment is mapped writable")
			}
		})
	}
}

func TestTOCCountGoingDownIsCorrupt(t *testing.T) {
	s := mustCreate(t, Memfd, testName(t), 8192, nil)
	if _, err := s.AddRegion("a", 0, 64, 64); err != nil {
		t.Fatal(err)
	}
	peer, err := OpenMemfd(s.File(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	if rs, err := peer.Regions(); err != nil || len(rs) != 1 {
		t.Fatalf("Regions = %v, %v", rs, err)
	}
	s.count.Store(0) // a hostile peer unpublishes the entry
	if _, err := peer.Regions(); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Regions after the count went down: %v, want ErrCorrupt", err)
	}
	if _, err := peer.Region("a"); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Region after the count went down: %v, want ErrCorrupt", err)
	}
}

// TestCloseWhileInUse races accessors against Close: each call either
// succeeds or reports ErrClosed (run with -race).
func TestCloseWhileInUse(t *testing.T) {
	s, err := Create(Memfd, testName(t), 64<<10, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddRegion("r", 0, 64, 64); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 4)
	for g := 0; g < 4; g++ {
		go func() {
			for i := 0; i < 1000; i++ {
				_, err1 := s.Regions()
				_, err2 := s.LoadUint64(s.DataOffset())
				_, err3 := s.RegionBytes("r")
				s.Info()
				for _, err := range []error{err1, err2, err3} {
					if err != nil && !errors.Is(err, ErrClosed) {
						done <- err
						return
					}
				}
			}
			done <- nil
		}()
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for g := 0; g < 4; g++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
