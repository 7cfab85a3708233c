package segment

import (
	"bytes"
	"errors"
	"runtime"
	"testing"
)

// TestMapReadOnly: a read-only view shows the segment's bytes (and later
// writes through the writable mapping), a write through it faults, and
// Close unmaps it.
func TestMapReadOnly(t *testing.T) {
	for _, b := range allBackends {
		t.Run(b.String(), func(t *testing.T) {
			if runtime.GOOS != "linux" && b != File {
				t.Skipf("%v: Linux only", b)
			}
			name := testTarget(t, b)
			s := mustCreate(t, b, name, 64<<10, nil)
			// A region that does not start on a page: the view starts at
			// the page holding it.
			if _, err := s.AddRegion("pad", FourCC("PADS"), 100, 64); err != nil {
				t.Fatal(err)
			}
			r, err := s.AddRegion("data", FourCC("DATA"), 5000, 64)
			if err != nil {
				t.Fatal(err)
			}
			rw, err := s.Bytes(r.Offset, r.Length)
			if err != nil {
				t.Fatal(err)
			}
			copy(rw, "before the view")
			ro, err := s.MapReadOnly(r.Offset, r.Length)
			if err != nil {
				t.Fatal(err)
			}
			if len(ro) != len(rw) || cap(ro) != len(rw) || &ro[0] == &rw[0] {
				t.Fatalf("view: len %d cap %d, same address %v; want a second mapping of %d bytes", len(ro), cap(ro), &ro[0] == &rw[0], len(rw))
			}
			if !bytes.Equal(ro, rw) {
				t.Fatal("the view does not show the segment's bytes")
			}
			copy(rw[4990:], "after")
			if string(ro[4990:4995]) != "after" {
				t.Fatalf("view shows %q after a write through the writable mapping", ro[4990:4995])
			}
			err = Guard(func() error { ro[0] = 'X'; return nil })
			if !errors.Is(err, ErrFault) {
				t.Fatalf("write through the view: %v, want ErrFault", err)
			}
			if rw[0] != 'b' {
				t.Fatalf("a faulted write changed the byte to %q", rw[0])
			}
			if _, err := s.MapReadOnly(r.Offset, s.Size()); !errors.Is(err, ErrOutOfRange) {
				t.Fatalf("view past the end: %v, want ErrOutOfRange", err)
			}
			if _, err := s.MapReadOnly(0, 8); !errors.Is(err, ErrOutOfRange) {
				t.Fatalf("view of the header: %v, want ErrOutOfRange", err)
			}
			if b != Memfd {
				// A read-only attachment hands out its own mapping.
				s2, err := Open(b, name, &Options{ReadOnly: true})
				if err != nil {
					t.Fatal(err)
				}
				v, err := s2.MapReadOnly(r.Offset, r.Length)
				if err != nil || string(v[:6]) != "before" || len(s2.views) != 0 {
					t.Fatalf("view of a read-only attachment: %q, %v, %d mappings", v[:6], err, len(s2.views))
				}
				s2.Close()
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := s.MapReadOnly(r.Offset, r.Length); !errors.Is(err, ErrClosed) {
				t.Fatalf("after Close: %v, want ErrClosed", err)
			}
		})
	}
}

// TestMapReadOnlySuccessor: a POSIX or File name removed and created
// again names another object; the view refuses to map it.
func TestMapReadOnlySuccessor(t *testing.T) {
	for _, b := range []Backend{POSIX, File} {
		t.Run(b.String(), func(t *testing.T) {
			if runtime.GOOS != "linux" && b != File {
				t.Skipf("%v: Linux only", b)
			}
			name := testTarget(t, b)
			s := mustCreate(t, b, name, 16<<10, nil)
			if err := Remove(b, name, nil); err != nil {
				t.Fatal(err)
			}
			_, err := s.MapReadOnly(s.DataOffset(), 64)
			if !errors.Is(err, ErrNotExist) {
				t.Fatalf("view after the name was removed: %v, want ErrNotExist", err)
			}
			mustCreate(t, b, name, 16<<10, nil)
			_, err = s.MapReadOnly(s.DataOffset(), 64)
			if runtime.GOOS != "windows" && !errors.Is(err, ErrNotExist) {
				t.Fatalf("view of a successor: %v, want ErrNotExist", err)
			}
		})
	}
}

// BenchmarkOpenView: what MapReadOnly adds to an attachment's lifetime
// (Open, then Close): reopen, fstat, mmap, and a second munmap.
func BenchmarkOpenView(b *testing.B) {
	for _, view := range []bool{false, true} {
		b.Run(map[bool]string{false: "open-close", true: "open-view-close"}[view], func(b *testing.B) {
			name := testName(b)
			mustCreate(b, POSIX, name, 1<<20, nil)
			for range b.N {
				s, err := Open(POSIX, name, nil)
				if err != nil {
					b.Fatal(err)
				}
				if view {
					if _, err := s.MapReadOnly(s.DataOffset(), 512<<10); err != nil {
						b.Fatal(err)
					}
				}
				if err := s.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
