package bench

import (
	"errors"
	"testing"
)

func TestStampVerify(t *testing.T) {
	for _, n := range []int{MinSize, 25, 64, 1000, 64 << 10, 1 << 20} {
		msg := make([]byte, n)
		fillPayload(msg)
		for _, seq := range []uint64{0, 1, 63, 64, 1<<48 - 1} {
			for _, id := range []int{0, 7, 255} {
				for _, flags := range []uint64{0, flagMark, flagLast} {
					for _, sum := range []bool{false, true} {
						w := headWord(seq, id, flags)
						stamp(msg, w, 12345, sum)
						got, err := verify(msg, n, id, seq, sum)
						if err != nil || got != w {
							t.Fatalf("size %d seq %d id %d sum %v: word %#x err %v", n, seq, id, sum, got, err)
						}
						if sendTime(msg) != 12345 {
							t.Fatalf("send time %d", sendTime(msg))
						}
					}
				}
			}
		}
		stamp(msg, headWord(8, 1, 0), 0, true)
		bad := func(name string, m []byte, size, id int, seq uint64, sum bool) {
			t.Helper()
			if _, err := verify(m, size, id, seq, sum); !errors.Is(err, ErrCorrupt) {
				t.Errorf("size %d, %s: got %v, want ErrCorrupt", n, name, err)
			}
		}
		bad("wrong sequence", msg, n, 1, 9, false)
		bad("wrong sender", msg, n, 2, 8, false)
		bad("short", msg[:n-1], n, 1, 8, false)
		// Any flipped byte fails the checked message: the head word and
		// the tail stamp always, the rest through the checksum.
		for _, i := range []int{0, 5, offCheck, offPayload, n / 2, n - 5, n - 1} {
			if i >= offTime && i < offCheck {
				continue // the send time is not covered
			}
			c := append([]byte(nil), msg...)
			c[i] ^= 0x40
			bad("flipped byte", c, n, 1, 8, true)
		}
		// Without the checksum, a torn message (tail from another one) fails.
		c := append([]byte(nil), msg...)
		c[n-4] ^= 1
		bad("torn", c, n, 1, 8, false)
		// A message stamped without a checksum fails a checked receive.
		stamp(msg, headWord(8, 1, 0), 0, false)
		bad("unchecked", msg, n, 1, 8, true)
	}
}

// BenchmarkStampVerify is the per-message work of the harness at each
// size: a stamp and a check, and the same with the checksum (which a timed
// cell does on one message in SampleEvery).
func BenchmarkStampVerify(b *testing.B) {
	for _, n := range []int{64, 4 << 10, 64 << 10, 1 << 20} {
		for _, sum := range []bool{false, true} {
			name := SizeName(n)
			if sum {
				name += "/checksum"
			}
			b.Run(name, func(b *testing.B) {
				msg := make([]byte, n)
				fillPayload(msg)
				b.SetBytes(int64(n))
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					stamp(msg, headWord(uint64(i), 0, 0), 0, sum)
					if _, err := verify(msg, n, 0, uint64(i), sum); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// FuzzVerify feeds arbitrary bytes, as a hostile or broken transport
// could deliver them, to the receiver's check: it must return ErrCorrupt
// or accept a well-formed message, never panic.
func FuzzVerify(f *testing.F) {
	good := make([]byte, 64)
	fillPayload(good)
	stamp(good, headWord(3, 1, flagMark), 0, true)
	f.Add(good, 64, 1, uint64(3), true)
	f.Add([]byte{1, 2, 3}, 3, 0, uint64(0), false)
	f.Add(good[:20], 20, 1, uint64(3), true)
	f.Fuzz(func(t *testing.T, msg []byte, n, id int, seq uint64, sum bool) {
		w, err := verify(msg, n, id, seq, sum)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			return
		}
		if len(msg) != n || n < MinSize || w&^flagsMask != headWord(seq, id, 0) {
			t.Fatalf("accepted %d bytes (want %d) with head %#x", len(msg), n, w)
		}
	})
}
