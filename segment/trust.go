package segment

import (
	"fmt"
	"os"
	"os/user"
	"slices"
	"strconv"
)

// owner is who owns a segment and who may write it, as the kernel reports
// it for the open object (fstat of the descriptor, IPC_STAT of the shmid):
// never looked up again by name, so it cannot be swapped in between.
type owner struct {
	uid, gid uint32
	cuid     uint32 // SysV: the creator's uid (IPC_SET can give uid away); = uid elsewhere
	mode     os.FileMode
	dev, ino uint64 // POSIX, File: the file's identity (RemoveName)
}

func (w owner) String() string {
	s := fmt.Sprintf("owner uid %d%s, group %d, mode %#o", w.uid, userName(w.uid), w.gid, uint32(w.mode.Perm()))
	if w.cuid != w.uid {
		s += fmt.Sprintf(", created by uid %d%s", w.cuid, userName(w.cuid))
	}
	return s
}

// othersWrite reports whether a uid other than the caller's may write the
// object: another owner, or write permission for the group or others.
func (w owner) othersWrite() bool {
	return w.uid != uint32(os.Geteuid()) || w.mode&0o022 != 0
}

func userName(uid uint32) string {
	if u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10)); err == nil {
		return " (" + u.Username + ")"
	}
	return ""
}

// trust checks a segment about to be joined read-write: its owner (and
// creator) must be the caller's effective uid or one of opts.Owners, and no
// one outside them may write it except a group of opts.Groups. what names
// the object for the error.
func (o *Options) trust(what string, w owner) error {
	me := uint32(os.Geteuid())
	ok := func(uid uint32) bool { return uid == me || slices.Contains(o.Owners, int(uid)) }
	switch {
	case !ok(w.uid) || !ok(w.cuid):
		return fmt.Errorf("%w: %s: %v; the caller is uid %d (trust other owners by naming them)", ErrUntrusted, what, w, me)
	case w.mode&0o002 != 0:
		return fmt.Errorf("%w: %s: %v: anyone may write it", ErrUntrusted, what, w)
	case w.mode&0o020 != 0 && !slices.Contains(o.Groups, int(w.gid)):
		return fmt.Errorf("%w: %s: %v: group %d may write it (trust the group by naming it)", ErrUntrusted, what, w, w.gid)
	}
	return nil
}

// group resolves Options.Group: -1 when unset.
func (o *Options) group() (int, error) {
	if o.Group == "" {
		return -1, nil
	}
	return LookupGroup(o.Group)
}

// LookupGroup returns the gid of a group given by name or as a decimal
// number.
func LookupGroup(g string) (int, error) {
	if n, err := strconv.Atoi(g); err == nil && n >= 0 {
		return n, nil
	}
	gr, err := user.LookupGroup(g)
	if err != nil {
		return 0, fmt.Errorf("%w: group %q: %w", ErrInvalidOption, g, err)
	}
	n, err := strconv.Atoi(gr.Gid)
	if err != nil {
		return 0, fmt.Errorf("%w: group %q has gid %q", ErrInvalidOption, g, gr.Gid)
	}
	return n, nil
}

// LookupUser returns the uid of a user given by name or as a decimal number.
func LookupUser(u string) (int, error) {
	if n, err := strconv.Atoi(u); err == nil && n >= 0 {
		return n, nil
	}
	us, err := user.Lookup(u)
	if err != nil {
		return 0, fmt.Errorf("%w: user %q: %w", ErrInvalidOption, u, err)
	}
	n, err := strconv.Atoi(us.Uid)
	if err != nil {
		return 0, fmt.Errorf("%w: user %q has uid %q", ErrInvalidOption, u, us.Uid)
	}
	return n, nil
}
