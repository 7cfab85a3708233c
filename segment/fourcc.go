package segment

import "fmt"

// FourCC packs a code of one to four printable ASCII characters into a
// region kind, padding short codes with spaces: FourCC("SPSC"). The first
// character is the lowest byte, so the code reads as text in a hex dump of
// the little-endian TOC. It is meant for constants and panics on a code
// that is empty, longer than four characters or not printable ASCII.
func FourCC(code string) uint32 {
	if len(code) == 0 || len(code) > 4 {
		panic(fmt.Sprintf("segment.FourCC: %q is not 1-4 characters", code))
	}
	var k uint32
	for i := 0; i < 4; i++ {
		c := byte(' ')
		if i < len(code) {
			c = code[i]
		}
		if c < 0x20 || c > 0x7e {
			panic(fmt.Sprintf("segment.FourCC: %q is not printable ASCII", code))
		}
		k |= uint32(c) << (8 * i)
	}
	return k
}

// FourCCString renders a region kind for people: the four characters when
// they are all printable ASCII (trailing spaces trimmed, as FourCC pads
// them), else the number in hex, e.g. "0x00000007".
func FourCCString(kind uint32) string {
	var b [4]byte
	for i := range b {
		b[i] = byte(kind >> (8 * i))
		if b[i] < 0x20 || b[i] > 0x7e {
			return fmt.Sprintf("0x%08x", kind)
		}
	}
	n := 4
	for n > 1 && b[n-1] == ' ' {
		n--
	}
	if b[0] == ' ' {
		return fmt.Sprintf("0x%08x", kind)
	}
	return string(b[:n])
}
