package segment

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
)

// List finds shmkit segments: every POSIX object under /dev/shm with the
// shmkit. prefix, every SysV segment (from /proc/sysvipc/shm) whose memory
// starts with the magic, and every regular file directly inside dirs that
// starts with the magic. Each is attached read-only and validated; one that
// fails validation is still listed, with Info.Err set. Memfd segments are
// anonymous and not listed. The error reports directories of dirs that could
// not be read; the list holds what was found regardless.
func List(dirs ...string) ([]Info, error) {
	out := append(listPOSIX(), listSysV()...)
	var errs []error
	for _, d := range dirs {
		infos, err := listDir(d)
		out = append(out, infos...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Backend != out[j].Backend {
			return out[i].Backend < out[j].Backend
		}
		if out[i].Path != out[j].Path {
			return out[i].Path < out[j].Path
		}
		return out[i].Name < out[j].Name
	})
	return out, errors.Join(errs...)
}

func listDir(dir string) ([]Info, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	var out []Info
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		path := filepath.Join(dir, e.Name())
		if !hasMagic(path) {
			continue
		}
		info, err := Stat(File, path, nil)
		if err != nil {
			info = Info{Name: e.Name(), Backend: File, Attached: -1, Err: err}
		}
		info.Path = path
		out = append(out, info)
	}
	return out, nil
}

func hasMagic(path string) bool {
	// Non-blocking and not through a link: the entry may have been swapped
	// for a FIFO or a symbolic link since the directory was read.
	f, err := os.OpenFile(path, os.O_RDONLY|openNoFollow, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	var b [len(Magic)]byte
	_, err = io.ReadFull(f, b[:])
	return err == nil && string(b[:]) == Magic
}

// rawName returns the name field of an image that failed validation, cut at
// the first NUL; callers print it quoted.
func rawName(mem []byte) string {
	if len(mem) < hdrName+MaxNameLen {
		return ""
	}
	f := mem[hdrName : hdrName+MaxNameLen]
	if n := bytes.IndexByte(f, 0); n >= 0 {
		f = f[:n]
	}
	return string(f)
}
