package segment

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
)

func posixPath(name string) string { return POSIXDir + "/" + Prefix + name }

func createPOSIX(name string, size int64, h *header, opts *Options) (*Segment, error) {
	if opts.HugePages {
		return nil, fmt.Errorf("%w: POSIX segments live on %s (tmpfs), which has no huge pages; use the memfd or sysv backend",
			ErrHugePages, POSIXDir)
	}
	mode, _ := opts.mode()
	gid, err := opts.group()
	if err != nil {
		return nil, err
	}
	path := posixPath(name)
	f, err := createExcl(path, size, mode, gid)
	if err != nil {
		return nil, err
	}
	w, err := fileOwner(f)
	var mem []byte
	if err == nil {
		mem, err = mmapFd(int(f.Fd()), size, false)
	}
	err = errors.Join(err, f.Close())
	if err == nil {
		if err = setup(mem, opts, true); err != nil {
			err = errors.Join(err, (&fdMapping{mem: mem}).unmap())
		}
	}
	if err != nil {
		return nil, errors.Join(err, os.Remove(path))
	}
	s := newSegment(mem, h, &fdMapping{mem: mem, path: path})
	s.path, s.dev, s.ino, s.others = path, w.dev, w.ino, w.othersWrite()
	return s, nil
}

func openPOSIX(name string, opts *Options) (*Segment, error) {
	path := posixPath(name)
	flag := os.O_RDWR
	if opts.ReadOnly {
		flag = os.O_RDONLY
	}
	f, err := os.OpenFile(path, flag|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
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
	mem, err := mmapFd(int(f.Fd()), size, opts.ReadOnly)
	if err != nil {
		return nil, err
	}
	s, err := attach(mem, size, POSIX, name, opts.ReadOnly, &fdMapping{mem: mem, path: path})
	if err != nil {
		return nil, err
	}
	s.path, s.dev, s.ino, s.others = path, w.dev, w.ino, w.othersWrite()
	if err := setup(s.mem, opts, !opts.ReadOnly); err != nil {
		return nil, errors.Join(err, s.Close())
	}
	return s, nil
}

func removePOSIX(name string) error { return osErr(os.Remove(posixPath(name))) }

// listPOSIX describes every /dev/shm/shmkit.* object.
func listPOSIX() []Info {
	ents, _ := os.ReadDir(POSIXDir)
	var out []Info
	for _, e := range ents {
		name, ok := strings.CutPrefix(e.Name(), Prefix)
		if !ok || !e.Type().IsRegular() {
			continue
		}
		info, err := Stat(POSIX, name, nil)
		if err != nil {
			info = Info{Name: name, Backend: POSIX, Attached: -1, Err: err}
			if fi, err := e.Info(); err == nil {
				info.Size, info.Mode = fi.Size(), fi.Mode().Perm()
			}
		}
		info.Path = POSIXDir + "/" + e.Name()
		out = append(out, info)
	}
	return out
}
