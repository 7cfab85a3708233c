//go:build linux

package holders

// scan_linux.go reads /proc once to find out which processes hold which
// segment: file mappings by device and inode, open descriptors, SysV
// attachments, and the processes whose maps are unreadable.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/shmkit/shmkit/segment"
)

// Table is one pass over /proc: every file mapping, every open
// descriptor and every SysV attachment of every process this one can see,
// plus the processes whose maps it could not read.
type Table struct {
	self  int
	files map[uint64][]fileMap // inode -> mappings of a file with that inode
	sysv  map[int][]int        // shmid -> pids attached (maps lines "/SYSV...")
	fds   map[string][]int     // path an open descriptor points to -> pids
	blind []blindProc          // processes whose maps or fds could not be read
	shm   map[int]shmRow       // shmid -> its row of /proc/sysvipc/shm
	// ptrace is set when this process has CAP_SYS_PTRACE, so only
	// non-dumpable processes (and other user namespaces') are unreadable.
	ptrace bool
}

// fileMap is one process's mapping of a file.
type fileMap struct {
	pid  int
	dev  uint64 // unix.Mkdev of the maps line's major:minor
	path string
}

// blindProc is a process whose maps (or descriptors) could not be read,
// usually for want of permission: it may hold any segment it can access.
type blindProc struct {
	pid int
	uid int // -1 when unknown
}

// shmRow is what /proc/sysvipc/shm says of one SysV segment.
type shmRow struct {
	key    int32
	nattch int
	uid    int
	gid    int
	perms  uint32
}

// Object identifies a segment the way the kernel does, for matching
// against a Table: the file (device, inode, path) of a POSIX or File
// segment, or the shmid of a SysV segment. uid, gid and mode say who may
// access it. Two Objects compare equal when they name the same kernel
// object; a segment removed and created again under its name is another
// Object.
type Object struct {
	isSysV bool
	shmid  int
	dev    uint64
	ino    uint64
	path   string
	uid    int
	gid    int
	mode   uint32
}

// SysV reports whether o is a SysV segment.
func (o Object) SysV() bool { return o.isSysV }

// Owner returns the uid that owns o (the file's owner; SysV: shm_perm.uid).
func (o Object) Owner() int { return o.uid }

// File returns the device and inode of o's file (zero for SysV), to check
// that a directory entry about to be removed is the file judged.
func (o Object) File() (dev, ino uint64) { return o.dev, o.ino }

// Scan reads /proc once. Processes that exit during the scan are skipped;
// processes that cannot be read are listed as blind (Blind). The calling
// process itself is left out: it is never a holder of what it judges
// (except as creator or registered participant, which Judge checks by
// liveness). A Table is a snapshot: what it says may be out of date as soon
// as it returns, so a caller about to remove a segment scans again and
// judges again just before it does.
func Scan() (*Table, error) {
	t := &Table{
		self: os.Getpid(), files: map[uint64][]fileMap{}, sysv: map[int][]int{},
		fds: map[string][]int{}, shm: map[int]shmRow{},
	}
	t.ptrace = HasCap(CapSysPtrace)
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("scan processes: %w", err)
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 || pid == t.self {
			continue
		}
		t.scanProc(pid)
	}
	if err := t.readSysV(); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("scan processes: %w", err)
	}
	return t, nil
}

// scanProc records the mappings and descriptors of one process. The
// descriptors are read before the maps: a creator holds its segment open
// until it has mapped it, so a process caught between the two is seen in
// one or the other.
func (t *Table) scanProc(pid int) {
	dir := "/proc/" + strconv.Itoa(pid)
	blind := false
	fds, err := os.ReadDir(dir + "/fd")
	switch {
	case err == nil:
		for _, fd := range fds {
			target, err := os.Readlink(dir + "/fd/" + fd.Name())
			if err == nil && strings.HasPrefix(target, "/") {
				target = strings.TrimSuffix(target, " (deleted)")
				t.fds[target] = appendPID(t.fds[target], pid)
			}
		}
	case gone(err):
		return
	default:
		blind = true
	}
	maps, err := os.ReadFile(dir + "/maps")
	switch {
	case err == nil:
		t.parseMaps(pid, maps)
	case gone(err):
		return
	default:
		blind = true
	}
	if blind {
		t.blind = append(t.blind, blindProc{pid: pid, uid: procUID(pid)})
	}
}

// gone reports whether err says the process has exited.
func gone(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH)
}

// parseMaps records the file-backed lines of a /proc/PID/maps file:
// "start-end perms offset major:minor inode path".
func (t *Table) parseMaps(pid int, maps []byte) {
	for line := range bytes.Lines(maps) {
		f := bytes.Fields(line)
		if len(f) < 6 {
			continue
		}
		ino, err := strconv.ParseUint(string(f[4]), 10, 64)
		if err != nil || ino == 0 {
			continue
		}
		path := string(bytes.TrimSpace(line[bytes.Index(line, f[5]):]))
		path = strings.TrimSuffix(path, " (deleted)")
		if strings.HasPrefix(path, "/SYSV") { // a SysV attachment: inode is the shmid
			t.sysv[int(ino)] = appendPID(t.sysv[int(ino)], pid)
			continue
		}
		maj, min, ok := bytes.Cut(f[3], []byte(":"))
		if !ok {
			continue
		}
		ma, err1 := strconv.ParseUint(string(maj), 16, 32)
		mi, err2 := strconv.ParseUint(string(min), 16, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		m := fileMap{pid: pid, dev: unix.Mkdev(uint32(ma), uint32(mi)), path: path}
		if l := t.files[ino]; len(l) == 0 || l[len(l)-1] != m { // one entry per mapping run
			t.files[ino] = append(l, m)
		}
	}
}

func appendPID(pids []int, pid int) []int {
	if len(pids) > 0 && pids[len(pids)-1] == pid {
		return pids
	}
	return append(pids, pid)
}

// procUID returns the real uid of pid from /proc/PID/status, -1 if unknown.
func procUID(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return -1
	}
	for line := range bytes.Lines(b) {
		if rest, ok := bytes.CutPrefix(line, []byte("Uid:")); ok {
			f := bytes.Fields(rest)
			if len(f) > 0 {
				if uid, err := strconv.Atoi(string(f[0])); err == nil {
					return uid
				}
			}
		}
	}
	return -1
}

// readSysV reads /proc/sysvipc/shm, locating columns by their titles.
func (t *Table) readSysV() error {
	f, err := os.Open("/proc/sysvipc/shm")
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return sc.Err()
	}
	col := map[string]int{}
	for i, name := range strings.Fields(sc.Text()) {
		col[name] = i
	}
	need := []string{"key", "shmid", "perms", "nattch", "uid", "gid"}
	for _, n := range need {
		if _, ok := col[n]; !ok {
			return fmt.Errorf("/proc/sysvipc/shm: no %q column", n)
		}
	}
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < len(col) {
			continue
		}
		num := func(name string, base int) int64 {
			v, _ := strconv.ParseInt(f[col[name]], base, 64)
			return v
		}
		id := int(num("shmid", 10))
		t.shm[id] = shmRow{key: int32(num("key", 10)), nattch: int(num("nattch", 10)),
			uid: int(num("uid", 10)), gid: int(num("gid", 10)), perms: uint32(num("perms", 8))}
	}
	return sc.Err()
}

// locate finds the object behind info: it stats the file of a POSIX or File
// segment, or looks up the SysV shmid (by info.SysVID, or else by key). It
// fails with segment.ErrNotExist when the object is gone.
func (t *Table) locate(info segment.Info) (Object, error) {
	if info.Backend == segment.SysV {
		id, ok := info.SysVID, false
		if _, ok = t.shm[id]; !ok || id == 0 {
			for sid, r := range t.shm {
				if r.key == info.SysVKey {
					id, ok = sid, true
				}
			}
		}
		if !ok {
			return Object{}, fmt.Errorf("%w: no SysV segment with key %#08x", segment.ErrNotExist, uint32(info.SysVKey))
		}
		r := t.shm[id]
		return Object{isSysV: true, shmid: id, uid: r.uid, gid: r.gid, mode: r.perms & 0o777}, nil
	}
	path := info.Path
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return Object{}, fmt.Errorf("%w: %s", segment.ErrNotExist, path)
		}
		return Object{}, fmt.Errorf("stat %s: %w", path, err)
	}
	return Object{dev: uint64(st.Dev), ino: st.Ino, path: path, uid: int(st.Uid), gid: int(st.Gid),
		mode: st.Mode & 0o777}, nil
}

// mappers returns the processes that map o (SysV: are attached to it).
func (t *Table) mappers(o Object) []int {
	if o.isSysV {
		return t.sysv[o.shmid]
	}
	var out []int
	for _, m := range t.files[o.ino] {
		// The device of a maps line is the superblock's; stat may report
		// another one (btrfs subvolumes), so the path also identifies it.
		if m.dev == o.dev || m.path == o.path {
			out = appendPID(out, m.pid)
		}
	}
	return out
}

// openers returns the processes with a descriptor open on o's file.
func (t *Table) openers(o Object) []int {
	if o.isSysV {
		return nil
	}
	return t.fds[o.path]
}

// attachments returns the kernel's count of attachments of a SysV
// segment (shm_nattch), -1 for other backends.
func (t *Table) attachments(o Object) int {
	if !o.isSysV {
		return -1
	}
	return t.shm[o.shmid].nattch
}

// blindTo returns the processes whose holdings are unknown and that may
// access o: running as root, as o's owner, or o grants group or other
// access. With CAP_SYS_PTRACE this process reads every process's maps
// except those of non-dumpable processes (privilege-separated daemons) and
// processes of other user namespaces: those are only reported
// (blindCount), not counted, or gc could never remove anything on a host
// that runs one.
func (t *Table) blindTo(o Object) []int {
	if t.ptrace {
		return nil
	}
	var out []int
	for _, b := range t.blind {
		if b.uid == 0 || b.uid == -1 || b.uid == o.uid || o.mode&0o077 != 0 {
			out = append(out, b.pid)
		}
	}
	return out
}

// rawCreator reads the creator pid and start time from the header bytes of
// a POSIX or File segment whose magic is not yet published: the creator
// writes them before the magic, so they may be set or still zero.
func rawCreator(path string) (pid int, start uint64) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	var b [16]byte
	if _, err := f.ReadAt(b[:], 32); err != nil { // segment layout: creator pid at 32, start at 40
		return 0, 0
	}
	p := binary.LittleEndian.Uint32(b[0:])
	if p == 0 || p > 1<<22 {
		return 0, 0
	}
	return int(p), binary.LittleEndian.Uint64(b[8:])
}

// Blind returns the processes whose holdings are unknown (their maps or
// descriptors could not be read).
func (t *Table) Blind() []int {
	out := make([]int, len(t.blind))
	for i, b := range t.blind {
		out[i] = b.pid
	}
	return out
}

// BlindCounted says whether Judge counts unreadable processes as possible
// holders (it does unless this process has CAP_SYS_PTRACE).
func (t *Table) BlindCounted() bool { return !t.ptrace }

// Capability numbers (linux/capability.h).
const (
	CapIPCLock   = 14
	CapSysPtrace = 19
)

// HasCap reports whether this process has capability c in its effective
// set (CapEff of /proc/self/status).
func HasCap(c uint) bool {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false
	}
	for line := range bytes.Lines(b) {
		if rest, ok := bytes.CutPrefix(line, []byte("CapEff:")); ok {
			v, err := strconv.ParseUint(string(bytes.TrimSpace(rest)), 16, 64)
			return err == nil && v&(1<<c) != 0
		}
	}
	return false
}

// initPIDNamespace is the inode of the initial (host) pid namespace,
// PROC_PID_INIT_INO in the kernel.
const initPIDNamespace = 0xEFFFFFFC

// PIDNamespace returns the inode of this process's pid namespace, and
// whether it is the host's.
func PIDNamespace() (ino uint64, initial bool, err error) {
	link, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return 0, false, err
	}
	s, ok := strings.CutPrefix(link, "pid:[")
	s, ok2 := strings.CutSuffix(s, "]")
	if !ok || !ok2 {
		return 0, false, fmt.Errorf("/proc/self/ns/pid: unexpected link %q", link)
	}
	ino, err = strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("/proc/self/ns/pid: unexpected link %q", link)
	}
	return ino, ino == initPIDNamespace, nil
}

// PIDNamespaceNote warns, when this process is not in the host's pid
// namespace, that processes outside it cannot be seen.
func PIDNamespaceNote() string {
	ino, initial, err := PIDNamespace()
	if err != nil || initial {
		return ""
	}
	return fmt.Sprintf("running in pid namespace %d, not the host's: processes outside it (their mappings, "+
		"their liveness) are invisible here; run gc where every user of the segments is visible", ino)
}
