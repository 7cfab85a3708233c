package bridge

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// stateFile keeps, per origin publisher (a hash of the origin and
// "<publisher>.<epoch>" of its Shmkit header), the last sequence the in side finished with.
// Each update is one 16-byte pwrite into a fixed-size file, so it survives
// SIGKILL (the page cache keeps it) and costs no fsync; it does not
// survive a power cut. Layout: an 8-byte magic "SHMKBST1", then
// stateSlots records {key uint64, seq uint64}, little endian; key 0 is an
// empty record.
type stateFile struct {
	f     *os.File
	slots map[uint64]int    // key -> record index
	seqs  map[uint64]uint64 // key -> seq loaded at open
	next  int
	buf   [16]byte
}

const (
	stateMagic  = "SHMKBST1"
	stateSlots  = 4096
	stateRecLen = 16
	stateSize   = len(stateMagic) + stateSlots*stateRecLen
)

func openState(path string) (*stateFile, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrState, path, err)
	}
	s := &stateFile{f: f, slots: map[uint64]int{}, seqs: map[uint64]uint64{}}
	fail := func(err error) (*stateFile, error) {
		return nil, errors.Join(err, f.Close())
	}
	fi, err := f.Stat()
	if err != nil {
		return fail(fmt.Errorf("%w: %s: %w", ErrState, path, err))
	}
	switch fi.Size() {
	case 0:
		if err := f.Truncate(int64(stateSize)); err != nil {
			return fail(fmt.Errorf("%w: %s: %w", ErrState, path, err))
		}
		if _, err := f.WriteAt([]byte(stateMagic), 0); err != nil {
			return fail(fmt.Errorf("%w: %s: %w", ErrState, path, err))
		}
		return s, nil
	case int64(stateSize):
	default:
		return fail(fmt.Errorf("%w: %s: %d bytes, want %d", ErrState, path, fi.Size(), stateSize))
	}
	b := make([]byte, stateSize)
	if _, err := io.ReadFull(io.NewSectionReader(f, 0, int64(stateSize)), b); err != nil {
		return fail(fmt.Errorf("%w: %s: %w", ErrState, path, err))
	}
	if string(b[:len(stateMagic)]) != stateMagic {
		return fail(fmt.Errorf("%w: %s: bad magic %q", ErrState, path, b[:len(stateMagic)]))
	}
	for i := range stateSlots {
		r := b[len(stateMagic)+i*stateRecLen:]
		key, seq := binary.LittleEndian.Uint64(r), binary.LittleEndian.Uint64(r[8:])
		if key == 0 {
			continue
		}
		s.slots[key] = i
		s.seqs[key] = seq
		s.next = i + 1
	}
	s.next %= stateSlots
	return s, nil
}

// get returns the sequence recorded for key when the file was opened.
func (s *stateFile) get(key uint64) (uint64, bool) {
	v, ok := s.seqs[key]
	return v, ok
}

// put records key's latest sequence. A new key takes the next record,
// round robin over stateSlots (the oldest key is forgotten).
func (s *stateFile) put(key, seq uint64) error {
	i, ok := s.slots[key]
	if !ok {
		i = s.next
		s.next = (s.next + 1) % stateSlots
		for k, j := range s.slots {
			if j == i {
				delete(s.slots, k)
				break
			}
		}
		s.slots[key] = i
	}
	binary.LittleEndian.PutUint64(s.buf[:], key)
	binary.LittleEndian.PutUint64(s.buf[8:], seq)
	if _, err := s.f.WriteAt(s.buf[:], int64(len(stateMagic)+i*stateRecLen)); err != nil {
		return fmt.Errorf("%w: %w", ErrState, err)
	}
	return nil
}

func (s *stateFile) close() error { return s.f.Close() }
