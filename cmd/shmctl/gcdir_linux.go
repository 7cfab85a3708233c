//go:build linux

package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/shmkit/shmkit/internal/holders"
	"github.com/shmkit/shmkit/segment"
)

// gcDir is a directory `gc --dir` collects, opened once through a
// descriptor: it is listed through that descriptor and every removal is an
// unlinkat relative to it, of an entry that fstatat (no symlinks followed)
// shows to be the regular file judged dead, whose magic is read through a
// descriptor opened with openat(O_NOFOLLOW). Whoever can write an ancestor
// of the directory and swaps it (or a parent) for a symlink after gc opened
// it changes nothing: gc removes only entries of the directory it opened.
type gcDir struct {
	arg  string // as given
	path string // resolved, absolute
	fd   int
}

// openGCDir resolves dir and opens it component by component from "/"
// with O_DIRECTORY|O_NOFOLLOW, so no symlink swapped in meanwhile is
// followed. It returns warnings for ancestors that another user can write
// (or owns): such a user can swap dir between one gc run and the next.
func openGCDir(dir string) (*gcDir, []string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("--dir %s: %w", dir, err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, nil, fmt.Errorf("list %s: %w", dir, err)
	}
	fd, err := unix.Open("/", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open /: %w", err)
	}
	var warnings []string
	euid := os.Geteuid()
	cur := "/"
	for _, comp := range strings.Split(strings.TrimPrefix(real, "/"), "/") {
		if comp == "" {
			continue
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err == nil {
			if w := unsafeAncestor(cur, &st, euid); w != "" {
				warnings = append(warnings, fmt.Sprintf("--dir %s: its ancestor %s %s: that user can swap %s for "+
					"another directory; gc works through a descriptor of the directory it opened and removes only dead "+
					"shmkit segments in it, but make sure no other user can write the directories above it", dir, cur, w, dir))
			}
		}
		next, err := unix.Openat(fd, comp, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		unix.Close(fd)
		cur = filepath.Join(cur, comp)
		if err != nil {
			if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
				return nil, nil, fmt.Errorf("list %s: %s changed into a symlink or non-directory while gc opened it; nothing removed", dir, cur)
			}
			return nil, nil, fmt.Errorf("list %s: open %s: %w", dir, cur, err)
		}
		fd = next
	}
	return &gcDir{arg: dir, path: real, fd: fd}, warnings, nil
}

// unsafeAncestor says how a directory with stat st is writable by a user
// other than root and euid ("" when it is not).
func unsafeAncestor(path string, st *unix.Stat_t, euid int) string {
	switch {
	case st.Uid != 0 && int(st.Uid) != euid:
		return fmt.Sprintf("is owned by uid %d", st.Uid)
	case st.Mode&0o022 != 0 && st.Mode&unix.S_ISVTX == 0:
		return fmt.Sprintf("is writable by group or others (mode %04o, no sticky bit)", st.Mode&0o7777)
	}
	return ""
}

// listPath names the opened directory through this process's descriptor
// table, so listing it reads the directory opened, not whatever its path
// names now.
func (d *gcDir) listPath() string { return "/proc/self/fd/" + strconv.Itoa(d.fd) }

func (d *gcDir) close() { unix.Close(d.fd) }

// remove unlinks entry name of the directory if it is still the regular
// file want (device and inode) and starts with the segment magic (or
// zeros, a segment caught mid-create).
func (d *gcDir) remove(name string, want holders.Object) error {
	if name == "" || strings.ContainsRune(name, '/') || name == "." || name == ".." {
		return fmt.Errorf("%w: %q is not an entry name", segment.ErrInvalidName, name)
	}
	wdev, wino := want.File()
	var st unix.Stat_t
	if err := unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("%w: %s", segment.ErrNotExist, filepath.Join(d.path, name))
		}
		return fmt.Errorf("stat %s: %w", filepath.Join(d.path, name), err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || uint64(st.Dev) != wdev || st.Ino != wino {
		return errReplaced
	}
	fd, err := unix.Openat(d.fd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", filepath.Join(d.path, name), err)
	}
	defer unix.Close(fd)
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("stat %s: %w", filepath.Join(d.path, name), err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || uint64(st.Dev) != wdev || st.Ino != wino {
		return errReplaced
	}
	magic := make([]byte, len(segment.Magic))
	n, err := unix.Pread(fd, magic, 0)
	if err != nil {
		return fmt.Errorf("read %s: %w", filepath.Join(d.path, name), err)
	}
	if !bytes.Equal(magic[:n], []byte(segment.Magic)[:n]) && !allZero(magic[:n]) {
		return fmt.Errorf("%w: %s does not start with %q; not removed", segment.ErrBadMagic, filepath.Join(d.path, name), segment.Magic)
	}
	if err := unix.Unlinkat(d.fd, name, 0); err != nil {
		return fmt.Errorf("remove %s: %w", filepath.Join(d.path, name), err)
	}
	return nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
