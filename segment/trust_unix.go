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
	return owner{uid: st.Uid, gid: st.Gid, cuid: st.Uid, mode: fi.Mode().Perm()}, nil
}
