//go:build unix

package segment

import (
	"os"
	"syscall"
)

// fileOwner returns the owner and mode of an open file (fstat).
func fileOwner(f *os.File) (owner, error) {
	fi, err := f.Stat()
	if err != nil {
		return owner{}, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return owner{mode: fi.Mode().Perm()}, nil
	}
	return owner{uid: st.Uid, gid: st.Gid, cuid: st.Uid, mode: fi.Mode().Perm(), dev: uint64(st.Dev), ino: uint64(st.Ino)}, nil
}

// pathID returns the identity of the file path names now (lstat: a
// symbolic link is not the file it points to).
func pathID(path string) (dev, ino uint64, err error) {
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		return 0, 0, err
	}
	return uint64(st.Dev), uint64(st.Ino), nil
}

// openNoFollow opens without blocking on a FIFO and without following a
// symbolic link in the last component.
const openNoFollow = syscall.O_NONBLOCK | syscall.O_NOFOLLOW
