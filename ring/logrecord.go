package ring

import (
	"encoding/binary"
	"fmt"
)

// Log records. Every record starts at a 32-byte aligned position with a
// 32-byte header and never wraps around the end of the buffer (a padding
// record fills the end of a lap instead), so position k*capacity always
// starts a record. docs/ring.md ("Log") has the table; TestLayout checks it.
//
//	offset  0: pos   uint64  the record's log position + 1 (so zeroed memory holds no record); stored last (release): the word readers poll
//	offset  8: seq   uint64  data: the writer's message number; padding: the next message's number
//	offset 16: len   uint32  payload bytes (0 for padding)
//	offset 20: size  uint32  bytes of the whole record, header included, a multiple of 32
//	offset 24: type  uint16  logData or logPad
//	offset 26: flags uint16  the writer's flags, opaque to the ring
//	offset 28: meta  uint32  the writer's word, opaque to the ring
//	offset 32: payload, then unspecified bytes up to size
const (
	logHeader   = 32
	logAlign    = 32
	logPosOff   = 0
	logSeqOff   = 8
	logLenOff   = 16
	logSizeOff  = 20
	logTypeOff  = 24
	logFlagsOff = 26
	logMetaOff  = 28

	logData = 1
	logPad  = 2
)

// logRec is one decoded log record header.
type logRec struct {
	seq   uint64
	n     uint64 // payload bytes
	size  uint64 // record bytes
	typ   uint16
	flags uint16
	meta  uint32
}

// align32 rounds n up to a multiple of 32.
func align32(n uint64) uint64 { return (n + logAlign - 1) &^ (logAlign - 1) }

// decodeLogRecord decodes the header of the record at buffer offset off of
// buf (the log's data area, a power-of-two length of at least 2*logHeader),
// for a reader that expects it at log position pos and has seen its pos
// word equal pos. Every field is checked against the buffer and
// maxPayload: a type that is neither data nor padding, a size that is not a
// multiple of 32, smaller than a header, too small for the payload or
// running past the end of the buffer, a payload over maxPayload: all
// ErrCorrupt. It reads the fields with plain loads; under DropOldest the
// caller re-checks the writer's tail afterwards, so a header torn by an
// overwrite is discarded, not reported.
func decodeLogRecord(buf []byte, off, pos, maxPayload uint64) (logRec, error) {
	capacity := uint64(len(buf))
	if off%logAlign != 0 || off+logHeader > capacity {
		return logRec{}, fmt.Errorf("%w: log record at offset %d of %d", ErrCorrupt, off, capacity)
	}
	h := buf[off : off+logHeader : off+logHeader]
	r := logRec{
		seq:   binary.LittleEndian.Uint64(h[logSeqOff:]),
		n:     uint64(binary.LittleEndian.Uint32(h[logLenOff:])),
		size:  uint64(binary.LittleEndian.Uint32(h[logSizeOff:])),
		typ:   binary.LittleEndian.Uint16(h[logTypeOff:]),
		flags: binary.LittleEndian.Uint16(h[logFlagsOff:]),
		meta:  binary.LittleEndian.Uint32(h[logMetaOff:]),
	}
	if r.size < logHeader || r.size%logAlign != 0 || r.size > capacity-off {
		return logRec{}, fmt.Errorf("%w: log record at position %d has size %d (offset %d of %d)", ErrCorrupt, pos, r.size, off, capacity)
	}
	switch r.typ {
	case logData:
		if r.n > maxPayload || logHeader+r.n > r.size {
			return logRec{}, fmt.Errorf("%w: log record at position %d of %d bytes in %d, limit %d", ErrCorrupt, pos, r.n, r.size, maxPayload)
		}
	case logPad:
		if r.n != 0 {
			return logRec{}, fmt.Errorf("%w: log padding at position %d has length %d", ErrCorrupt, pos, r.n)
		}
	default:
		return logRec{}, fmt.Errorf("%w: log record at position %d has type %d", ErrCorrupt, pos, r.typ)
	}
	return r, nil
}

// putLogHeader writes every header field but pos (the caller publishes pos
// last).
func putLogHeader(buf []byte, off uint64, r logRec) {
	h := buf[off : off+logHeader : off+logHeader]
	binary.LittleEndian.PutUint64(h[logSeqOff:], r.seq)
	binary.LittleEndian.PutUint32(h[logLenOff:], uint32(r.n))
	binary.LittleEndian.PutUint32(h[logSizeOff:], uint32(r.size))
	binary.LittleEndian.PutUint16(h[logTypeOff:], r.typ)
	binary.LittleEndian.PutUint16(h[logFlagsOff:], r.flags)
	binary.LittleEndian.PutUint32(h[logMetaOff:], r.meta)
}
