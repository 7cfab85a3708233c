package segment

import (
	"fmt"
	"math/bits"
	"slices"
)

// Regions returns the table of contents, loaded once and validated entry by
// entry. Entries published after the load are not included.
func (s *Segment) Regions() ([]Region, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.regions()
}

// regions validates the TOC entries published since the last call and
// returns all of them. Entries never change once published, so validated
// ones are kept (as private copies) and only new ones are read.
func (s *Segment) regions() ([]Region, error) {
	if err := s.loadTOC(); err != nil {
		return nil, err
	}
	return slices.Clone(s.toc), nil
}

// loadTOC reads new entries under Guard: the TOC is in the mapping, which
// a hostile writer may have truncated.
func (s *Segment) loadTOC() error { return Guard(s.loadTOCUnguarded) }

func (s *Segment) loadTOCUnguarded() error {
	if s.mem == nil {
		return ErrClosed
	}
	n := int(s.count.Load()) // acquire: pairs with AddRegion's store
	if n > s.hdr.tocCap {
		return fmt.Errorf("%w: TOC count %d > capacity %d", ErrCorrupt, n, s.hdr.tocCap)
	}
	if n < len(s.toc) {
		return fmt.Errorf("%w: TOC count went down from %d to %d", ErrCorrupt, len(s.toc), n)
	}
	if s.tocIndex == nil {
		s.tocIndex = make(map[string]int)
	}
	prevEnd := s.hdr.headerSize
	if len(s.toc) > 0 {
		last := s.toc[len(s.toc)-1]
		prevEnd = last.Offset + last.Length
	}
	var e [tocEntrySize]byte
	for i := len(s.toc); i < n; i++ {
		copy(e[:], s.mem[hdrFixedSize+i*tocEntrySize:])
		r, err := parseEntry(e[:], &s.hdr, prevEnd)
		if err != nil {
			return fmt.Errorf("TOC entry %d: %w", i, err)
		}
		if _, dup := s.tocIndex[r.Name]; dup {
			return fmt.Errorf("%w: region %q appears twice", ErrCorrupt, r.Name)
		}
		s.tocIndex[r.Name] = i
		s.toc = append(s.toc, r)
		prevEnd = r.Offset + r.Length
	}
	return nil
}

// Region returns the TOC entry called name, or ErrNoRegion.
func (s *Segment) Region(name string) (Region, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.loadTOC(); err != nil {
		return Region{}, err
	}
	if i, ok := s.tocIndex[name]; ok {
		return s.toc[i], nil
	}
	return Region{}, fmt.Errorf("%w: %q in segment %q", ErrNoRegion, name, s.hdr.name)
}

// AddRegion appends a region of length bytes to the table of contents, at
// the first offset after the last region that is a multiple of align (a
// power of two; 0 means 64, one cache line), and returns it. The entry is
// written in full before the TOC count is published (atomic store), so
// processes attached meanwhile see either the old or the new table. Only the
// handle returned by Create may add regions (ErrNotCreator). Errors:
// ErrInvalidName, ErrExist (name taken), ErrTOCFull, ErrNoRoom.
func (s *Segment) AddRegion(name string, kind uint32, length, align int64) (Region, error) {
	if err := checkRegionName(name); err != nil {
		return Region{}, err
	}
	if align == 0 {
		align = 64
	}
	if align < 0 || align > MaxAlign || bits.OnesCount64(uint64(align)) != 1 {
		return Region{}, fmt.Errorf("%w: alignment %d is not a power of two up to %d", ErrInvalidOption, align, MaxAlign)
	}
	if length <= 0 {
		return Region{}, fmt.Errorf("%w: region %q length %d", ErrInvalidSize, name, length)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.mem == nil:
		return Region{}, ErrClosed
	case s.readOnly:
		return Region{}, ErrReadOnly
	case !s.creator:
		return Region{}, ErrNotCreator
	}
	rs, err := s.regions()
	if err != nil {
		return Region{}, err
	}
	end := s.hdr.headerSize
	for _, r := range rs {
		if r.Name == name {
			return Region{}, fmt.Errorf("%w: region %q", ErrExist, name)
		}
		end = r.Offset + r.Length
	}
	if len(rs) >= s.hdr.tocCap {
		return Region{}, fmt.Errorf("%w: %d entries", ErrTOCFull, s.hdr.tocCap)
	}
	off := (end + align - 1) &^ (align - 1)
	if off > s.hdr.totalSize || length > s.hdr.totalSize-off {
		return Region{}, fmt.Errorf("%w: region %q needs %d bytes at %d; segment ends at %d",
			ErrNoRoom, name, length, off, s.hdr.totalSize)
	}
	r := Region{Name: name, Kind: kind, Offset: off, Length: length, Align: align}
	copy(s.mem[hdrFixedSize+len(rs)*tocEntrySize:], encodeEntry(r))
	s.count.Store(uint32(len(rs) + 1)) // release: the entry is complete
	return r, nil
}
