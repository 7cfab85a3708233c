package segment

import "github.com/shmkit/shmkit/internal/fourcc"

// FourCC packs a code of one to four printable ASCII characters into a
// region kind, padding short codes with spaces: FourCC("SPSC"). The first
// character is the lowest byte, so the code reads as text in a hex dump of
// the little-endian TOC. It is meant for constants and panics on a code
// that is empty, longer than four characters or not printable ASCII.
func FourCC(code string) uint32 { return fourcc.Make(code) }

// FourCCString renders a region kind for people: the four characters when
// they are all printable ASCII (trailing spaces trimmed, as FourCC pads
// them), else the number in hex, e.g. "0x00000007".
func FourCCString(kind uint32) string { return fourcc.String(kind) }
