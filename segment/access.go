package segment

import (
	"fmt"
	"io"
	"sync/atomic"
)

// check validates [off, off+n) against the data area and returns it as ints.
func (s *Segment) check(off, n int64, write bool) (int, int, error) {
	if s.mem == nil {
		return 0, 0, ErrClosed
	}
	if write && s.readOnly {
		return 0, 0, ErrReadOnly
	}
	if off < s.hdr.headerSize || n < 0 || off > s.hdr.totalSize || n > s.hdr.totalSize-off {
		return 0, 0, fmt.Errorf("%w: [%d, +%d) outside the data area [%d, %d)",
			ErrOutOfRange, off, n, s.hdr.headerSize, s.hdr.totalSize)
	}
	return int(off), int(n), nil
}

// Bytes returns the n bytes at offset off of the data area, writable and
// shared with every process attached (capacity limited to n). It fails on a
// read-only attachment (use ReadAt), when the range leaves the data area or
// after Close. The slice is valid until Close.
func (s *Segment) Bytes(off, n int64) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, l, err := s.check(off, n, true)
	if err != nil {
		return nil, err
	}
	return s.mem[o : o+l : o+l], nil
}

// RegionBytes returns the bytes of the region called name, as Bytes does.
func (s *Segment) RegionBytes(name string) ([]byte, error) {
	r, err := s.Region(name)
	if err != nil {
		return nil, err
	}
	return s.Bytes(r.Offset, r.Length)
}

// Uint32 returns the 32-bit word at offset off (a multiple of 4 in the data
// area) for atomic access across processes; valid until Close.
func (s *Segment) Uint32(off int64) (*atomic.Uint32, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, err := s.word(off, 4, true)
	if err != nil {
		return nil, err
	}
	return word32(s.mem, o), nil
}

// Uint64 returns the 64-bit word at offset off (a multiple of 8 in the data
// area) for atomic access across processes; valid until Close.
func (s *Segment) Uint64(off int64) (*atomic.Uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, err := s.word(off, 8, true)
	if err != nil {
		return nil, err
	}
	return word64(s.mem, o), nil
}

// LoadUint32 atomically loads the 32-bit word at off; it works on read-only
// attachments too. Where another uid may truncate the object
// (OthersMayTruncate), a fault is an error wrapping ErrFault.
func (s *Segment) LoadUint32(off int64) (v uint32, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, err := s.word(off, 4, false)
	if err != nil {
		return 0, err
	}
	if s.others {
		err = Guard(func() error { v = word32(s.mem, o).Load(); return nil })
		return v, err
	}
	return word32(s.mem, o).Load(), nil
}

// LoadUint64 atomically loads the 64-bit word at off; it works on read-only
// attachments too. Where another uid may truncate the object
// (OthersMayTruncate), a fault is an error wrapping ErrFault.
func (s *Segment) LoadUint64(off int64) (v uint64, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, err := s.word(off, 8, false)
	if err != nil {
		return 0, err
	}
	if s.others {
		err = Guard(func() error { v = word64(s.mem, o).Load(); return nil })
		return v, err
	}
	return word64(s.mem, o).Load(), nil
}

func (s *Segment) word(off, size int64, write bool) (int, error) {
	o, _, err := s.check(off, size, write)
	if err != nil {
		return 0, err
	}
	if off%size != 0 {
		return 0, fmt.Errorf("%w: offset %d for a %d-byte word", ErrUnaligned, off, size)
	}
	return o, nil
}

// ReadAt copies bytes at offset off (anywhere in the segment, header
// included) into p, as io.ReaderAt. It works on read-only attachments. The
// copy is not atomic with respect to concurrent writers. A fault (the
// object truncated under the mapping) is an error wrapping ErrFault.
func (s *Segment) ReadAt(p []byte, off int64) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mem == nil {
		return 0, ErrClosed
	}
	if off < 0 {
		return 0, fmt.Errorf("%w: negative offset %d", ErrOutOfRange, off)
	}
	if off >= s.hdr.totalSize {
		return 0, io.EOF
	}
	var n int
	if err := Guard(func() error { n = copy(p, s.mem[off:]); return nil }); err != nil {
		return 0, err
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
