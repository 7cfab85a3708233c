package word

import (
	"strings"
	"testing"
	"unsafe"
)

func aligned64(n int) []byte {
	b := make([]byte, n+64)
	pad := int((64 - uintptr(unsafe.Pointer(&b[0]))%64) % 64)
	return b[pad : pad+n]
}

func TestWords(t *testing.T) {
	mem := aligned64(64)
	U64(mem, 8).Store(0x0102030405060708)
	U32(mem, 4).Store(0xa0b0c0d0)
	if mem[8] != 0x08 || mem[15] != 0x01 {
		t.Fatalf("U64 is not little-endian at offset 8: % x", mem[8:16])
	}
	if mem[4] != 0xd0 || mem[7] != 0xa0 {
		t.Fatalf("U32 at offset 4: % x", mem[4:8])
	}
	if !Aligned(mem, 64) || Aligned(mem[1:], 2) || !Aligned(nil, 64) {
		t.Fatal("Aligned wrong")
	}
}

func TestBadOffsetsPanic(t *testing.T) {
	mem := aligned64(64)
	for _, tc := range []struct {
		name string
		f    func()
		want string
	}{
		{"u64 past end", func() { U64(mem, 60) }, "outside"},
		{"u32 negative", func() { U32(mem, -4) }, "outside"},
		{"u64 misaligned", func() { U64(mem, 4) }, "misaligned"},
		{"u32 misaligned", func() { U32(mem, 2) }, "misaligned"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if r == nil || !strings.Contains(r.(string), tc.want) {
					t.Fatalf("recover() = %v, want a panic saying %q", r, tc.want)
				}
			}()
			tc.f()
		})
	}
}
