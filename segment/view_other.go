//go:build !linux

package segment

import (
	"errors"
	"fmt"
	"os"

	mmap "github.com/edsrzf/mmap-go"
)

// mapView makes the second, read-only mapping for MapReadOnly (s.mu held,
// range checked, n > 0): off Linux only File segments exist; the whole
// file is mapped (mmap-go wants an offset aligned to the allocation
// granularity, 64 KiB on Windows).
func (s *Segment) mapView(off, n int64) (mapping, []byte, error) {
	if s.hdr.backend != File {
		return nil, nil, unsupported(fmt.Sprintf("a read-only view of a %v segment", s.hdr.backend))
	}
	f, err := s.reopenSame()
	if err != nil {
		return nil, nil, err
	}
	mm, err := mmap.MapRegion(f, int(s.hdr.totalSize), mmap.RDONLY, 0, 0)
	err = errors.Join(err, f.Close())
	if err != nil {
		if mm != nil {
			err = errors.Join(err, mm.Unmap())
		}
		return nil, nil, fmt.Errorf("map %s read-only: %w", s.path, osErr(err))
	}
	return &fileMapping{mm: mm, path: s.path}, mm[off : off+n : off+n], nil
}

// reopenSame opens s's path read-only and checks that it is still the
// file s maps (same device and inode where the OS has them).
func (s *Segment) reopenSame() (*os.File, error) {
	f, err := os.OpenFile(s.path, os.O_RDONLY|openNoFollow, 0)
	if err != nil {
		return nil, osErr(err)
	}
	w, err := fileOwner(f)
	if err == nil && (w.dev != s.dev || w.ino != s.ino) {
		err = fmt.Errorf("%w: %s now holds another object (inode %d, not %d)", ErrNotExist, s.path, w.ino, s.ino)
	}
	if err == nil {
		var size int64
		if size, err = objectSize(f); err == nil && size != s.hdr.totalSize {
			err = fmt.Errorf("%w: %s is %d bytes, mapped %d", ErrCorrupt, s.path, size, s.hdr.totalSize)
		}
	}
	if err != nil {
		return nil, errors.Join(err, f.Close())
	}
	return f, nil
}
