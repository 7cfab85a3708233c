package segment

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// shmHugeTLB is SHM_HUGETLB, which golang.org/x/sys/unix lacks.
const shmHugeTLB = 0x800

// sysvMapping is an attachment (shmat) of a SysV segment.
type sysvMapping struct {
	mem []byte
	id  int
}

func (m *sysvMapping) unmap() error {
	err := unix.SysvShmDetach(m.mem)
	m.mem = nil
	return err
}

func (m *sysvMapping) flush() error { return nil }

func (m *sysvMapping) describe(info *Info) {
	var d unix.SysvShmDesc
	if _, err := unix.SysvShmCtl(m.id, unix.IPC_STAT, &d); err == nil {
		info.Mode = os.FileMode(d.Perm.Mode & 0o777)
		info.Attached = int(d.Nattch)
	}
}

func sysvKeyFor(name string, opts *Options) int32 {
	if opts.SysVKey != 0 {
		return opts.SysVKey
	}
	return SysVKey(name)
}

func createSysV(name string, size int64, h *header, opts *Options) (*Segment, error) {
	key := sysvKeyFor(name, opts)
	h.sysvKey = key
	mode, _ := opts.mode()
	gid, err := opts.group()
	if err != nil {
		return nil, err
	}
	// Created 0600 and widened after the group is set (as createExcl does).
	flags := unix.IPC_CREAT | unix.IPC_EXCL | 0o600
	if opts.HugePages {
		flags |= shmHugeTLB
	}
	id, err := unix.SysvShmGet(int(key), int(size), flags)
	switch {
	case err == nil:
	case errors.Is(err, unix.EEXIST):
		return nil, fmt.Errorf("%w: key %#08x (%w)", ErrExist, uint32(key), err)
	case opts.HugePages && (errors.Is(err, unix.ENOMEM) || errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EPERM)):
		return nil, hugeErr(err)
	case errors.Is(err, unix.EINVAL):
		return nil, fmt.Errorf("%w: shmget %d bytes: %w (above kernel.shmmax?)", ErrInvalidSize, size, err)
	default:
		return nil, fmt.Errorf("shmget key %#08x: %w", uint32(key), osErr(err))
	}
	rmid := func() error { _, err := unix.SysvShmCtl(id, unix.IPC_RMID, nil); return err }
	if err := sysvSetPerm(id, mode, gid); err != nil {
		return nil, errors.Join(err, rmid())
	}
	mem, err := unix.SysvShmAttach(id, 0, 0)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("shmat: %w", osErr(err)), rmid())
	}
	m := &sysvMapping{mem: mem, id: id}
	if int64(len(mem)) != size {
		err = fmt.Errorf("shmat mapped %d bytes, want %d", len(mem), size)
	} else {
		err = setup(mem, opts, true)
	}
	if err != nil {
		return nil, errors.Join(err, m.unmap(), rmid())
	}
	s := newSegment(mem, h, m)
	s.id = id
	return s, nil
}

func openSysV(name string, opts *Options) (*Segment, error) {
	key := sysvKeyFor(name, opts)
	id, err := unix.SysvShmGet(int(key), 0, 0)
	if err != nil {
		return nil, fmt.Errorf("key %#08x: %w", uint32(key), osErr(err))
	}
	s, err := attachSysV(id, name, opts.ReadOnly)
	if err != nil {
		return nil, fmt.Errorf("key %#08x: %w", uint32(key), err)
	}
	if !opts.ReadOnly {
		// Checked on the attached shmid, which cannot be swapped; only its
		// owner or creator (trusted, once this passes) can change it later.
		if err := sysvTrust(id, key, opts); err != nil {
			return nil, errors.Join(err, s.Close())
		}
	}
	if err := setup(s.mem, opts, !opts.ReadOnly); err != nil {
		return nil, errors.Join(err, s.Close())
	}
	return s, nil
}

func attachSysV(id int, name string, readOnly bool) (*Segment, error) {
	flag := 0
	if readOnly {
		flag = unix.SHM_RDONLY
	}
	mem, err := unix.SysvShmAttach(id, 0, flag)
	if err != nil {
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EIDRM) {
			return nil, fmt.Errorf("%w: shmid %d is gone (%w)", ErrNotExist, id, err)
		}
		return nil, fmt.Errorf("shmat shmid %d: %w", id, osErr(err))
	}
	s, err := attach(mem, int64(len(mem)), SysV, name, readOnly, &sysvMapping{mem: mem, id: id})
	if err != nil {
		return nil, err
	}
	s.id = id
	return s, nil
}

// sysvHolds reports whether shmid id holds the shmkit segment name, or
// (unpublished) zeros where the magic goes.
func sysvHolds(id int, name string, allowUnpublished bool) bool {
	mem, err := unix.SysvShmAttach(id, 0, unix.SHM_RDONLY)
	if err != nil {
		return false
	}
	defer unix.SysvShmDetach(mem)
	if len(mem) < hdrFixedSize {
		return false
	}
	magic := mem[:len(Magic)]
	if allZero(magic) {
		return allowUnpublished
	}
	field := mem[hdrName : hdrName+MaxNameLen]
	n := bytes.IndexByte(field, 0)
	return string(magic) == Magic && n == len(name) && string(field[:n]) == name
}

func removeSysV(name string, opts *Options) error {
	key := sysvKeyFor(name, opts)
	id, err := unix.SysvShmGet(int(key), 0, 0)
	if err == nil && sysvHolds(id, name, true) {
		return rmidErr(id)
	}
	if opts.SysVKey == 0 {
		// Created with an explicit key: find it by the name in its header.
		ents, _ := sysvEntries()
		for _, e := range ents {
			if sysvHolds(e.id, name, false) {
				return rmidErr(e.id)
			}
		}
	}
	if err == nil {
		return fmt.Errorf("%w: key %#08x holds no shmkit segment named %q", ErrNotExist, uint32(key), name)
	}
	return fmt.Errorf("key %#08x: %w", uint32(key), osErr(err))
}

// errGone matches the errors of a shmid that no longer exists.
var errGone = unix.EINVAL

func rmidErr(id int) error {
	if _, err := unix.SysvShmCtl(id, unix.IPC_RMID, nil); err != nil {
		return fmt.Errorf("IPC_RMID shmid %d: %w", id, osErr(err))
	}
	return nil
}

type sysvEntry struct {
	key  int32
	id   int
	size int64
}

// sysvEntries lists /proc/sysvipc/shm, leaving out IPC_PRIVATE keys (which
// include segments already removed but still attached).
func sysvEntries() ([]sysvEntry, error) {
	f, err := os.Open("/proc/sysvipc/shm")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []sysvEntry
	sc := bufio.NewScanner(f)
	sc.Scan() // column titles
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 4 {
			continue
		}
		key, err1 := strconv.ParseInt(fs[0], 10, 64)
		id, err2 := strconv.Atoi(fs[1])
		size, err3 := strconv.ParseInt(fs[3], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil || key == 0 {
			continue
		}
		out = append(out, sysvEntry{key: int32(key), id: id, size: size})
	}
	return out, sc.Err()
}

// listSysV describes every SysV segment that starts with the shmkit magic.
func listSysV() []Info {
	ents, _ := sysvEntries()
	var out []Info
	for _, e := range ents {
		if e.size < int64(len(Magic)) {
			continue
		}
		mem, err := unix.SysvShmAttach(e.id, 0, unix.SHM_RDONLY)
		if err != nil {
			continue // removed meanwhile, or not ours to read
		}
		if len(mem) < len(Magic) || string(mem[:len(Magic)]) != Magic { // the id may have been reused
			unix.SysvShmDetach(mem)
			continue
		}
		name := rawName(mem)
		s, err := attach(mem, int64(len(mem)), SysV, "", true, &sysvMapping{mem: mem, id: e.id})
		if err != nil {
			out = append(out, Info{Name: name, Backend: SysV, SysVKey: e.key, SysVID: e.id, Size: e.size, Attached: -1, Err: err})
			continue
		}
		s.id = e.id
		info := s.Info()
		s.Close()
		out = append(out, info)
	}
	return out
}

// sysvSetPerm gives a new shmid exactly mode and (gid >= 0) group gid.
func sysvSetPerm(id int, mode os.FileMode, gid int) error {
	var d unix.SysvShmDesc
	if _, err := unix.SysvShmCtl(id, unix.IPC_STAT, &d); err != nil {
		return fmt.Errorf("IPC_STAT shmid %d: %w", id, osErr(err))
	}
	setMode(&d.Perm.Mode, uint32(mode.Perm()))
	if gid >= 0 {
		d.Perm.Gid = uint32(gid)
	}
	if _, err := unix.SysvShmCtl(id, unix.IPC_SET, &d); err != nil {
		return fmt.Errorf("IPC_SET shmid %d (mode %#o, group %d): %w", id, uint32(mode.Perm()), gid, osErr(err))
	}
	return nil
}

// sysvTrust checks shmid id's owner, creator and mode (Options.trust).
func sysvTrust(id int, key int32, opts *Options) error {
	var d unix.SysvShmDesc
	if _, err := unix.SysvShmCtl(id, unix.IPC_STAT, &d); err != nil {
		return fmt.Errorf("IPC_STAT shmid %d: %w", id, osErr(err))
	}
	w := owner{uid: d.Perm.Uid, gid: d.Perm.Gid, cuid: d.Perm.Cuid, mode: os.FileMode(d.Perm.Mode & 0o777)}
	return opts.trust(fmt.Sprintf("sysv key %#08x shmid %d", uint32(key), id), w)
}

// setMode stores mode bits into SysvIpcPerm.Mode, a uint32 or uint16
// depending on the architecture.
func setMode[T uint16 | uint32](p *T, m uint32) { *p = T(m) }
