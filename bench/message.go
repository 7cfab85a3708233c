package bench

import (
	"encoding/binary"
	"fmt"

	"github.com/shmkit/shmkit/internal/checksum"
)

// Message format. Every message is at least MinSize bytes:
//
//	offset 0:   head  uint64  bits 0-47 sequence number, 48-55 sender id,
//	                          bit 62 mark, bit 63 last
//	offset 8:   time  int64   intended send time, CLOCK_MONOTONIC ns (fixed-rate
//	                          stream only; 0 otherwise)
//	offset 16:  check uint32  CRC-32C of bytes 20..n-4 bound to the head word,
//	                          on sampled messages; 0 on the others
//	offset n-4: tail  uint32  the low half of the head word again
//
// Every message is checked for its head word (sequence number, sender,
// flags) and its tail stamp, which catches a lost, duplicated, reordered or
// torn message for the price of two loads. The checksum, which reads every
// byte, is computed and checked on sampled messages only (one in
// SampleEvery); a verification cell per transport and size, untimed,
// checksums every message (Config.Verify).
const (
	// MinSize is the smallest message the harness can stamp.
	MinSize = 24
	// MaxSize is the largest message size a run accepts.
	MaxSize = 64 << 20
	// SampleEvery is the period of checksummed messages in timed cells.
	SampleEvery = 64

	seqMask   = 1<<48 - 1
	idShift   = 48
	idMask    = 0xff
	flagMark  = 1 << 62 // first measured message: the warm-up ends here
	flagLast  = 1 << 63 // final message of the cell
	flagsMask = flagMark | flagLast

	offTime    = 8
	offCheck   = 16
	offPayload = 20
)

// checkOf is the check word of msg with head word w.
func checkOf(msg []byte, w uint64) uint32 {
	c := checksum.CRC32C(msg[offPayload:len(msg)-4]) ^ uint32(w*0x9E3779B97F4A7C15>>32)
	if c == 0 {
		c = 1 // 0 means "not checksummed"
	}
	return c
}

// fillPayload writes pseudo-random bytes that stamp leaves alone.
func fillPayload(msg []byte) {
	x := uint64(0x9E3779B97F4A7C15)
	for i := range msg {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		msg[i] = byte(x)
	}
}

// headWord builds a head word.
func headWord(seq uint64, id int, flags uint64) uint64 {
	return seq&seqMask | uint64(id&idMask)<<idShift | flags
}

// stamp writes the head word, the send time and the tail stamp of a
// message, and its checksum when sum is set (else a zero check word).
func stamp(msg []byte, w uint64, t int64, sum bool) {
	n := len(msg)
	binary.LittleEndian.PutUint64(msg[0:], w)
	binary.LittleEndian.PutUint64(msg[offTime:], uint64(t))
	binary.LittleEndian.PutUint32(msg[n-4:], uint32(w))
	var c uint32
	if sum {
		c = checkOf(msg, w)
	}
	binary.LittleEndian.PutUint32(msg[offCheck:], c)
}

// verify checks that msg is a message of size n whose head word carries
// sequence number seq from sender id, and checksums it when sum is set
// (a message stamped without a checksum then fails). It returns the head
// word. Errors wrap ErrCorrupt.
func verify(msg []byte, n int, id int, seq uint64, sum bool) (uint64, error) {
	if len(msg) != n || n < MinSize {
		return 0, fmt.Errorf("%w: message %d: %d bytes, want %d (at least %d)", ErrCorrupt, seq, len(msg), n, MinSize)
	}
	w := binary.LittleEndian.Uint64(msg[0:])
	if want := headWord(seq, id, 0); w&^flagsMask != want {
		return 0, fmt.Errorf("%w: message %d from sender %d: head word %#x (sequence %d, sender %d)",
			ErrCorrupt, seq, id, w, w&seqMask, w>>idShift&idMask)
	}
	if t := binary.LittleEndian.Uint32(msg[n-4:]); t != uint32(w) {
		return 0, fmt.Errorf("%w: message %d: tail stamp %#x, head %#x (torn message)", ErrCorrupt, seq, t, uint32(w))
	}
	if sum {
		got := binary.LittleEndian.Uint32(msg[offCheck:])
		if c := checkOf(msg, w); got != c {
			return 0, fmt.Errorf("%w: message %d: checksum %#08x, computed %#08x", ErrCorrupt, seq, got, c)
		}
	}
	return w, nil
}

// sendTime returns the send time stamped into msg.
func sendTime(msg []byte) int64 { return int64(binary.LittleEndian.Uint64(msg[offTime:])) }
