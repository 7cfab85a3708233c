package segment

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// mapView makes the second, read-only mapping of [off, off+n) for
// MapReadOnly (s.mu held, range checked, n > 0).
func (s *Segment) mapView(off, n int64) (mapping, []byte, error) {
	switch s.hdr.backend {
	case POSIX, File:
		fd, err := s.reopenSameFd()
		if err != nil {
			return nil, nil, err
		}
		m, b, err := mmapView(fd, off, n)
		return m, b, errors.Join(err, unix.Close(fd))
	case Memfd:
		if s.file == nil {
			return nil, nil, ErrClosed
		}
		return mmapView(int(s.file.Fd()), off, n)
	case SysV:
		// shmat maps a whole segment (Linux lets a segment marked for
		// removal be attached while others still are).
		mem, err := unix.SysvShmAttach(s.id, 0, unix.SHM_RDONLY)
		if err != nil {
			return nil, nil, fmt.Errorf("shmat read-only: %w", osErr(err))
		}
		m := &sysvMapping{mem: mem, id: s.id}
		if int64(len(mem)) < off+n {
			return nil, nil, errors.Join(fmt.Errorf("%w: shmat mapped %d bytes, want %d", ErrCorrupt, len(mem), off+n), m.unmap())
		}
		return m, mem[off : off+n : off+n], nil
	}
	return nil, nil, fmt.Errorf("%w: backend %v", ErrUnsupported, s.hdr.backend)
}

// mmapView maps [off, off+n) of fd PROT_READ from the page holding off
// (from the start of the object where that offset is refused: a huge-page
// object wants its own alignment).
func mmapView(fd int, off, n int64) (*fdMapping, []byte, error) {
	start := off &^ int64(os.Getpagesize()-1)
	mem, err := unix.Mmap(fd, start, int(off+n-start), unix.PROT_READ, unix.MAP_SHARED)
	if errors.Is(err, unix.EINVAL) && start != 0 {
		start = 0
		mem, err = unix.Mmap(fd, 0, int(off+n), unix.PROT_READ, unix.MAP_SHARED)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("mmap %d bytes read-only: %w", off+n-start, osErr(err))
	}
	d := off - start
	return &fdMapping{mem: mem}, mem[d : d+n : d+n], nil
}

// reopenSameFd opens s's path read-only (a bare descriptor: no os.File,
// no poller) and checks that it is still the file s maps, of the size
// mapped.
func (s *Segment) reopenSameFd() (int, error) {
	fd, err := unix.Open(s.path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, osErr(&os.PathError{Op: "open", Path: s.path, Err: err})
	}
	var st unix.Stat_t
	err = unix.Fstat(fd, &st)
	switch {
	case err != nil:
		err = fmt.Errorf("fstat %s: %w", s.path, osErr(err))
	case uint64(st.Dev) != s.dev || uint64(st.Ino) != s.ino:
		err = fmt.Errorf("%w: %s now holds another object (inode %d, not %d)", ErrNotExist, s.path, st.Ino, s.ino)
	case st.Size != s.hdr.totalSize:
		err = fmt.Errorf("%w: %s is %d bytes, mapped %d", ErrCorrupt, s.path, st.Size, s.hdr.totalSize)
	}
	if err != nil {
		return -1, errors.Join(err, unix.Close(fd))
	}
	return fd, nil
}
