package bench

import (
	"errors"
	"testing"
)

func TestStampVerify(t *testing.T) {
	for _, n := range []int{8, 11, 12, 64, 1000, FullCheckLimit, FullCheckLimit + 8, 1 << 20} {
		msg := make([]byte, n)
		fillPayload(msg)
		for _, seq := range []uint64{0, 1, 7, 8, 1<<30 + 5} {
			for _, flags := range []uint32{0, flagMark, flagLast} {
				stamp(msg, seq, flags)
				got, whole, err := verify(msg, n, seq)
				if err != nil || got != flags {
					t.Fatalf("size %d seq %d: flags %#x err %v", n, seq, got, err)
				}
				if want := sampled(seq, n); whole != want {
					t.Fatalf("size %d seq %d: whole %v, want %v", n, seq, whole, want)
				}
			}
		}
		stamp(msg, 8, 0) // sampled at every size
		bad := func(name string, m []byte, size int, seq uint64) {
			t.Helper()
			if _, _, err := verify(m, size, seq); !errors.Is(err, ErrCorrupt) {
				t.Errorf("size %d, %s: got %v, want ErrCorrupt", n, name, err)
			}
		}
		bad("wrong sequence", msg, n, 9)
		bad("short", msg[:n-1], n, 8)
		for _, i := range []int{0, 4, n / 2, n - 1} {
			if i < 8 && i != 0 && i != 4 {
				continue
			}
			c := append([]byte(nil), msg...)
			c[i] ^= 0x40
			bad("flipped byte", c, n, 8)
		}
	}
}

func BenchmarkStampVerify(b *testing.B) {
	for _, n := range []int{64, 4 << 10, 64 << 10, 1 << 20} {
		b.Run(SizeName(n), func(b *testing.B) {
			msg := make([]byte, n)
			fillPayload(msg)
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				stamp(msg, uint64(i), 0)
				if _, _, err := verify(msg, n, uint64(i)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// FuzzVerify feeds arbitrary received bytes to verify: it must never
// panic, accept only a message that checks out, and accept every message
// stamp produces.
func FuzzVerify(f *testing.F) {
	good := make([]byte, 64)
	fillPayload(good)
	stamp(good, 3, flagMark)
	f.Add(good, 64, uint64(3))
	f.Add([]byte{}, 8, uint64(0))
	f.Add(make([]byte, 12), 12, uint64(1<<30))
	f.Fuzz(func(t *testing.T, msg []byte, n int, seq uint64) {
		if n < MinSize || n > 1<<16 {
			return
		}
		flags, _, err := verify(msg, n, seq)
		if err == nil {
			if len(msg) != n || flags&^(flagMark|flagLast) != 0 {
				t.Fatalf("accepted %d bytes for size %d with flags %#x", len(msg), n, flags)
			}
			return
		}
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("error %v does not wrap ErrCorrupt", err)
		}
		if len(msg) == n {
			m := append([]byte(nil), msg...)
			stamp(m, seq, flagLast)
			if got, _, err := verify(m, n, seq); err != nil || got != flagLast {
				t.Fatalf("stamped message rejected: %v", err)
			}
		}
	})
}
