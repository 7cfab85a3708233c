package bench

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Message format. Every message is at least MinSize bytes:
//
//	offset 0:   word  uint32  bits 0-29 sequence number (mod 2^30), bit 30 mark, bit 31 last
//	offset 4:   check uint32  CRC-32C of the covered bytes, xor word*0x9E3779B1
//	offset n-4: stamp uint32  the sequence number again (messages of 12 bytes or more)
//
// The covered bytes are bytes 8 to n of a sampled message, and the last
// (up to) 64 bytes after the header otherwise. Messages up to
// FullCheckLimit bytes are all sampled; above it every SampleEvery-th is.
// The rest of the payload is pseudo-random bytes the producer writes once.
const (
	// MinSize is the smallest message the harness can stamp.
	MinSize = 8
	// MaxSize is the largest message size a run accepts.
	MaxSize = 64 << 20
	// FullCheckLimit is the largest size at which every message is
	// checksummed whole.
	FullCheckLimit = 64 << 10
	// SampleEvery is the sampling period of whole-message checksums above
	// FullCheckLimit.
	SampleEvery = 8

	seqMask  = 1<<30 - 1
	flagMark = 1 << 30 // first measured message: the warm-up ends here
	flagLast = 1 << 31 // final message of the cell
	tailSpan = 64
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// sampled reports whether message seq of size n is checksummed whole.
func sampled(seq uint64, n int) bool {
	return n <= FullCheckLimit || seq%SampleEvery == 0
}

// covered returns the bytes after the header that the checksum covers.
func covered(msg []byte, whole bool) []byte {
	if whole {
		return msg[8:]
	}
	return msg[max(8, len(msg)-tailSpan):]
}

// checkOf computes the check word of msg, whose first word is w: one
// CRC-32C pass over the covered bytes, bound to the header word by a
// multiplicative hash (the word itself is checked directly).
func checkOf(msg []byte, w uint32, whole bool) uint32 {
	return crc32.Checksum(covered(msg, whole), castagnoli) ^ (w * 0x9E3779B1)
}

// fillPayload writes the pseudo-random payload that stamp leaves alone.
func fillPayload(msg []byte) {
	x := uint64(0x9E3779B97F4A7C15)
	for i := range msg {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		msg[i] = byte(x)
	}
}

// stamp writes the header, tail stamp and checksum of message seq into msg
// (len(msg) >= MinSize) with the given flags.
func stamp(msg []byte, seq uint64, flags uint32) {
	n := len(msg)
	s := uint32(seq & seqMask)
	binary.LittleEndian.PutUint32(msg[0:], s|flags)
	if n >= 12 {
		binary.LittleEndian.PutUint32(msg[n-4:], s)
	}
	binary.LittleEndian.PutUint32(msg[4:], checkOf(msg, s|flags, sampled(seq, n)))
}

// verify checks that msg is message seq of size n and returns its flags.
// It reports whether the whole message was checksummed. Errors wrap
// ErrCorrupt.
func verify(msg []byte, n int, seq uint64) (flags uint32, whole bool, err error) {
	if len(msg) != n {
		return 0, false, fmt.Errorf("message %d: %d bytes, want %d: %w", seq, len(msg), n, ErrCorrupt)
	}
	w := binary.LittleEndian.Uint32(msg[0:])
	want := uint32(seq & seqMask)
	if w&seqMask != want {
		return 0, false, fmt.Errorf("message %d: sequence number %d: %w", seq, w&seqMask, ErrCorrupt)
	}
	if n >= 12 {
		if t := binary.LittleEndian.Uint32(msg[n-4:]); t != want {
			return 0, false, fmt.Errorf("message %d: tail stamp %d (torn message): %w", seq, t, ErrCorrupt)
		}
	}
	whole = sampled(seq, n)
	c := checkOf(msg, w, whole)
	if got := binary.LittleEndian.Uint32(msg[4:]); got != c {
		return 0, false, fmt.Errorf("message %d: checksum %#08x, computed %#08x: %w", seq, got, c, ErrCorrupt)
	}
	return w &^ seqMask, whole, nil
}
