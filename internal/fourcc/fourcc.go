// Package fourcc packs four-character codes into the little-endian 32-bit
// words that mark shmkit's shared structures (region kinds, magics): the
// first character is the lowest byte, so the code reads in order in a hex
// dump of the memory.
package fourcc

import (
	"fmt"
	"strings"
)

// Make packs a code of one to four printable ASCII characters, padding a
// short one with spaces: Make("SPSC"). A code outside that set is a
// programmer error and panics.
func Make(code string) uint32 {
	if len(code) < 1 || len(code) > 4 {
		panic(fmt.Sprintf("fourcc: %q is not 1-4 characters", code))
	}
	var v uint32
	for i := 0; i < 4; i++ {
		c := byte(' ')
		if i < len(code) {
			c = code[i]
		}
		if c < 0x20 || c > 0x7e {
			panic(fmt.Sprintf("fourcc: %q is not printable ASCII", code))
		}
		v |= uint32(c) << (8 * i)
	}
	return v
}

// String renders v for people: the characters when all four are printable
// ASCII and the first is not a space (trailing spaces trimmed, as Make pads
// them), otherwise the number in hex, e.g. "0x00000007".
func String(v uint32) string {
	var b [4]byte
	for i := range b {
		b[i] = byte(v >> (8 * i))
		if b[i] < 0x20 || b[i] > 0x7e {
			return fmt.Sprintf("0x%08x", v)
		}
	}
	if b[0] == ' ' {
		return fmt.Sprintf("0x%08x", v)
	}
	return strings.TrimRight(string(b[:]), " ")
}
