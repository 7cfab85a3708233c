package segment

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"testing"
)

func openAgain(t *testing.T, s *Segment, name string, opts *Options) (*Segment, error) {
	t.Helper()
	if s.Backend() == Memfd {
		return OpenMemfd(s.File(), opts)
	}
	return Open(s.Backend(), name, opts)
}

func TestRoundTrip(t *testing.T) {
	for _, b := range allBackends {
		t.Run(b.String(), func(t *testing.T) {
			name := testTarget(t, b)
			s := mustCreate(t, b, name, 64<<10, nil)
			if s.Size() != 64<<10 || s.Backend() != b || s.ReadOnly() {
				t.Fatalf("Size %d Backend %v ReadOnly %v", s.Size(), s.Backend(), s.ReadOnly())
			}
			ctl, err := s.AddRegion("ctl", FourCC("CTRL"), 64, 64)
			if err != nil {
				t.Fatal(err)
			}
			data, err := s.AddRegion("data", FourCC("BYTE"), 1000, 4096)
			if err != nil {
				t.Fatal(err)
			}
			if ctl.Offset != s.DataOffset() || data.Offset%4096 != 0 || data.Offset < ctl.Offset+ctl.Length {
				t.Fatalf("regions %+v %+v, data offset %d", ctl, data, s.DataOffset())
			}
			w, err := s.Uint64(ctl.Offset + 8)
			if err != nil {
				t.Fatal(err)
			}
			w.Store(0xfeedface)
			buf, err := s.RegionBytes("data")
			if err != nil {
				t.Fatal(err)
			}
			copy(buf, "hello, segment")
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}

			if _, err := Create(b, name, 64<<10, nil); b != Memfd && !errors.Is(err, ErrExist) {
				t.Fatalf("second Create: %v, want ErrExist", err)
			}

			s2, err := openAgain(t, s, name, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer s2.Close()
			rs, err := s2.Regions()
			if err != nil || len(rs) != 2 || rs[0] != ctl || rs[1] != data {
				t.Fatalf("Regions() = %+v, %v", rs, err)
			}
			if v, err := s2.LoadUint64(ctl.Offset + 8); err != nil || v != 0xfeedface {
				t.Fatalf("LoadUint64 = %#x, %v", v, err)
			}
			got, err := s2.RegionBytes("data")
			if err != nil || !bytes.HasPrefix(got, []byte("hello, segment")) || len(got) != 1000 {
				t.Fatalf("RegionBytes = %q..., %v", got[:20], err)
			}
			// A write through the second handle shows in the first.
			got[0] = 'H'
			if buf[0] != 'H' {
				t.Fatal("write through the second attachment not visible in the first")
			}
			if _, err := s2.AddRegion("more", 0, 8, 8); !errors.Is(err, ErrNotCreator) {
				t.Fatalf("AddRegion on an attached handle: %v, want ErrNotCreator", err)
			}
			info := s2.Info()
			if info.Err != nil || info.Name != baseName(name) || info.Backend != b || info.Size != 64<<10 ||
				info.CreatorPID != os.Getpid() || !info.CreatorAlive || len(info.Regions) != 2 {
				t.Fatalf("Info = %+v", info)
			}
			if b != Memfd && info.Mode != 0o600 {
				t.Fatalf("mode %v, want 0600", info.Mode)
			}

			if b == Memfd {
				if err := Remove(b, name, nil); !errors.Is(err, ErrUnsupported) {
					t.Fatalf("Remove(memfd) = %v", err)
				}
				return
			}
			if _, err := Stat(b, name, nil); err != nil {
				t.Fatal(err)
			}
			if err := Remove(b, name, nil); err != nil {
				t.Fatal(err)
			}
			if _, err := Open(b, name, nil); !errors.Is(err, ErrNotExist) {
				t.Fatalf("Open after Remove: %v, want ErrNotExist", err)
			}
			if err := Remove(b, name, nil); !errors.Is(err, ErrNotExist) {
				t.Fatalf("second Remove: %v, want ErrNotExist", err)
			}
			// Attachments outlive the name.
			if v, err := s2.LoadUint64(ctl.Offset + 8); err != nil || v != 0xfeedface {
				t.Fatalf("after Remove: %#x, %v", v, err)
			}
		})
	}
}

func TestOpenMissing(t *testing.T) {
	for _, b := range []Backend{POSIX, SysV, File} {
		_, err := Open(b, testTarget(t, b), nil)
		if !errors.Is(err, ErrNotExist) {
			t.Errorf("%v: Open of a missing segment: %v, want ErrNotExist", b, err)
		}
		if b != SysV && !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%v: %v does not wrap fs.ErrNotExist", b, err)
		}
	}
}

func TestCloseIdempotent(t *testing.T) {
	s := mustCreate(t, Memfd, testName(t), 8192, nil)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if s.File() != nil {
		t.Fatal("File() after Close is not nil")
	}
	for what, err := range map[string]error{
		"Bytes":     second(s.Bytes(s.DataOffset(), 8)),
		"Uint32":    second(s.Uint32(s.DataOffset())),
		"Regions":   second(s.Regions()),
		"ReadAt":    second(s.ReadAt(make([]byte, 8), 0)),
		"Flush":     s.Flush(),
		"AddRegion": second(s.AddRegion("x", 0, 8, 8)),
	} {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", what, err)
		}
	}
}

func second[T any](_ T, err error) error { return err }
