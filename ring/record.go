package ring

import (
	"encoding/binary"
	"fmt"
)

// Byte ring records. Every record starts at an 8-byte aligned position
// with an 8-byte header, and never wraps around the end of the buffer:
//
//	offset 0: length uint32  payload bytes (data) or bytes after the header (padding)
//	offset 4: tag    uint32  recData or recPad
//	offset 8: payload, padded with unspecified bytes to a multiple of 8
const (
	recHeader = 8
	recData   = 'D' | 'A'<<8 | 'T'<<16 | 'A'<<24
	recPad    = 'P' | 'A'<<8 | 'D'<<16 | '!'<<24
)

// record is one decoded byte ring record.
type record struct {
	off  uint64 // payload offset in the buffer
	n    uint64 // payload length
	skip uint64 // bytes from the read position to the end of the record
}

// decodeRecord decodes the record at position pos of buf (the byte ring's
// data area, a power-of-two length), given that avail bytes from pos on
// were published by the producer. A padding record at pos is skipped: the
// record returned is the data record at the start of buf, and skip counts
// both. Every length is checked against the buffer, the published bytes
// and maxPayload; anything impossible is ErrCorrupt.
func decodeRecord(buf []byte, pos, avail, maxPayload uint64) (record, error) {
	size := uint64(len(buf))
	if pos%8 != 0 || pos >= size {
		return record{}, fmt.Errorf("%w: byte ring read position %d of %d", ErrCorrupt, pos, size)
	}
	var skip uint64
	n, tag := readRecHeader(buf, pos, avail)
	if tag == recPad {
		if pos+recHeader+n != size {
			return record{}, fmt.Errorf("%w: byte ring padding of %d bytes at %d does not end the buffer of %d", ErrCorrupt, n, pos, size)
		}
		skip = size - pos
		if avail <= skip {
			return record{}, fmt.Errorf("%w: byte ring padding at %d with only %d bytes published", ErrCorrupt, pos, avail)
		}
		pos, avail = 0, avail-skip
		n, tag = readRecHeader(buf, pos, avail)
	}
	if tag != recData {
		return record{}, fmt.Errorf("%w: byte ring record at %d has tag %#08x", ErrCorrupt, pos, tag)
	}
	if n > maxPayload {
		return record{}, fmt.Errorf("%w: byte ring record at %d of %d bytes, limit %d", ErrCorrupt, pos, n, maxPayload)
	}
	total := recHeader + align8(n)
	if total > avail || pos+total > size {
		return record{}, fmt.Errorf("%w: byte ring record at %d of %d bytes runs past the %d published bytes or the end", ErrCorrupt, pos, n, avail)
	}
	return record{off: pos + recHeader, n: n, skip: skip + total}, nil
}

// readRecHeader reads the header at pos, or reports tag 0 when fewer than
// a header's bytes are published or left in buf.
func readRecHeader(buf []byte, pos, avail uint64) (n uint64, tag uint32) {
	if avail < recHeader || pos+recHeader > uint64(len(buf)) {
		return 0, 0
	}
	h := buf[pos : pos+recHeader]
	return uint64(binary.LittleEndian.Uint32(h)), binary.LittleEndian.Uint32(h[4:])
}

// putRecHeader writes a record header at pos.
func putRecHeader(buf []byte, pos, n uint64, tag uint32) {
	h := buf[pos : pos+recHeader]
	binary.LittleEndian.PutUint32(h, uint32(n))
	binary.LittleEndian.PutUint32(h[4:], tag)
}
