package segment

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"syscall"

	mmap "github.com/edsrzf/mmap-go"
)

// fileMapping is a File segment mapped with mmap-go.
type fileMapping struct {
	mm   mmap.MMap
	path string
}

func (m *fileMapping) unmap() error { return m.mm.Unmap() }
func (m *fileMapping) flush() error { return m.mm.Flush() }
func (m *fileMapping) describe(info *Info) {
	if fi, err := os.Stat(m.path); err == nil {
		info.Mode = fi.Mode().Perm()
	}
}

// createExcl creates the file path exclusively with exactly mode (fchmod
// after open, so the umask does not apply) and group gid (fchown; -1 keeps
// the creator's), and reserves size bytes. The file is opened with mode
// 0600 and widened only after the chown, so nobody outside the owner can
// open it with a group it was not meant to have. On error nothing is left
// behind.
func createExcl(path string, size int64, mode os.FileMode, gid int) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, osErr(err)
	}
	if gid >= 0 {
		if err = f.Chown(-1, gid); err != nil {
			err = fmt.Errorf("chown %s to group %d: %w", path, gid, osErr(err))
		}
	}
	if err == nil {
		err = f.Chmod(mode)
	}
	if err == nil {
		err = reserve(f, size)
	}
	if err != nil {
		return nil, errors.Join(err, f.Close(), os.Remove(path))
	}
	return f, nil
}

func createFile(path string, size int64, h *header, opts *Options) (*Segment, error) {
	if opts.HugePages {
		if err := checkHugetlbfs(filepath.Dir(path)); err != nil {
			return nil, err
		}
	}
	mode, _ := opts.mode()
	gid, err := opts.group()
	if err != nil {
		return nil, err
	}
	f, err := createExcl(path, size, mode, gid)
	if err != nil {
		return nil, err
	}
	w, err := fileOwner(f)
	var mm mmap.MMap
	if err == nil {
		mm, err = mmap.MapRegion(f, int(size), mmap.RDWR, 0, 0)
	}
	err = errors.Join(err, f.Close())
	if err == nil {
		if err = setup(mm, opts, true); err != nil {
			err = errors.Join(err, mm.Unmap())
		}
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("map %s: %w", path, err), os.Remove(path))
	}
	s := newSegment(mm, h, &fileMapping{mm: mm, path: path})
	s.path, s.dev, s.ino, s.others = path, w.dev, w.ino, w.othersWrite()
	return s, nil
}

func openFile(path string, opts *Options) (*Segment, error) {
	flag, prot := os.O_RDWR, mmap.RDWR
	if opts.ReadOnly {
		flag, prot = os.O_RDONLY, mmap.RDONLY
	}
	if err := regularFile(path); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, flag|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, osErr(err)
	}
	defer f.Close()
	size, err := objectSize(f)
	if err != nil {
		return nil, err
	}
	w, err := fileOwner(f)
	if err != nil {
		return nil, err
	}
	if !opts.ReadOnly {
		if err := opts.trust(path, w); err != nil {
			return nil, err
		}
	}
	mm, err := mmap.MapRegion(f, int(size), prot, 0, 0)
	if err != nil {
		return nil, fmt.Errorf("map %s: %w", path, osErr(err))
	}
	s, err := attach(mm, size, File, "", opts.ReadOnly, &fileMapping{mm: mm, path: path})
	if err != nil {
		return nil, err
	}
	s.path, s.dev, s.ino, s.others = path, w.dev, w.ino, w.othersWrite()
	if err := setup(s.mem, opts, !opts.ReadOnly); err != nil {
		return nil, errors.Join(err, s.Close())
	}
	return s, nil
}

// objectSize returns the size of an open segment file, refusing what is not
// a regular file, empty (ErrNotReady: a creator between open and reserve)
// or larger than MaxSize.
func objectSize(f *os.File) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	switch {
	case !fi.Mode().IsRegular():
		return 0, fmt.Errorf("%w: %s is not a regular file", ErrBadMagic, f.Name())
	case fi.Size() == 0:
		return 0, fmt.Errorf("%w: %s is empty", ErrNotReady, f.Name())
	case fi.Size() > MaxSize || uint64(fi.Size()) > math.MaxInt:
		return 0, fmt.Errorf("%w: %s is %d bytes, more than %d", ErrBadMagic, f.Name(), fi.Size(), int64(MaxSize))
	}
	return fi.Size(), nil
}

// removeFile unlinks path if it looks like a segment: the shmkit magic, or
// an unpublished one (empty, or zeros where the magic goes). Anything else
// is refused with ErrBadMagic, so a mistyped path is not deleted.
func removeFile(path string) error {
	if err := regularFile(path); err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return osErr(err)
	}
	var magic [len(Magic)]byte
	n, err := io.ReadFull(f, magic[:])
	f.Close()
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return err
	}
	if !bytes.Equal(magic[:n], []byte(Magic)[:n]) && !allZero(magic[:n]) {
		return fmt.Errorf("%w: %s does not start with %q; not removed", ErrBadMagic, path, Magic)
	}
	return osErr(os.Remove(path))
}

// regularFile refuses, before opening, a path that is not a regular file (a
// FIFO would block the open; a device or directory is no segment).
func regularFile(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return osErr(err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: %s is not a regular file (%v)", ErrBadMagic, path, fi.Mode().Type())
	}
	return nil
}
