package segment

import (
	"errors"
	"fmt"
)

// MapReadOnly maps the n bytes at offset off of the data area a second
// time, read-only (PROT_READ), from the same object: the returned slice
// (capacity n) shows the same memory as Bytes(off, n), and a write
// through it faults (SIGSEGV: a fatal error for the process, or a
// recoverable panic in a goroutine that set debug.SetPanicOnFault). Use
// it to hand out memory that the caller's code must not write, such as
// received payloads. The mapping lives until Close, which unmaps it with
// the segment: the slice is valid until then.
//
// Each backend maps the object it is attached to, never a successor under
// the same name: POSIX and File reopen the segment's path read-only and
// map it only while it is still the file s maps (else the error wraps
// ErrNotExist); Memfd maps its descriptor; SysV attaches its shmid again
// with SHM_RDONLY (a second attachment, counted in shm_nattch). On Linux
// the mapping starts at the page holding off; off Linux (the File backend
// through mmap-go) it maps the whole file. On a read-only attachment it
// returns the bytes of the existing mapping, which is already PROT_READ.
// Other errors: ErrOutOfRange, ErrClosed, ErrUnsupported where no second
// mapping can be made.
func (s *Segment) MapReadOnly(off, n int64) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, l, err := s.check(off, n, false)
	if err != nil {
		return nil, err
	}
	if s.readOnly || l == 0 {
		return s.mem[o : o+l : o+l], nil
	}
	m, b, err := s.mapView(off, n)
	if err != nil {
		return nil, fmt.Errorf("map %v segment %q read-only: %w", s.hdr.backend, s.hdr.name, err)
	}
	s.views = append(s.views, m)
	return b, nil
}

// unmapViews unmaps every MapReadOnly mapping (Close, under s.mu).
func (s *Segment) unmapViews() error {
	var err error
	for _, m := range s.views {
		err = errors.Join(err, m.unmap())
	}
	s.views = nil
	return err
}
