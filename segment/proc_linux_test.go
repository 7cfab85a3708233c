package segment

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/shmkit/shmkit/internal/procfs"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/shmkit/shmkit/internal/proctest"
	"golang.org/x/sys/unix"
)

func init() {
	proctest.Register("memfd-writer", childMemfdWriter)
	proctest.Register("create-and-exit", childCreateAndExit)
	proctest.Register("enospc", childENOSPC)
	proctest.Register("open-as-nobody", childOpenAsNobody)
}

func fail(format string, args ...any) int {
	fmt.Fprintf(os.Stderr, "child: "+format+"\n", args...)
	return 1
}

// childMemfdWriter attaches the memfd on fd 3, checks what the parent wrote
// in region "ping" and answers in region "pong" and in a counter.
func childMemfdWriter() int {
	s, err := OpenMemfd(os.NewFile(3, "segment"), nil)
	if err != nil {
		return fail("%v", err)
	}
	defer s.Close()
	ping, err := s.RegionBytes("ping")
	if err != nil {
		return fail("%v", err)
	}
	if !bytes.HasPrefix(ping, []byte("from parent")) {
		return fail("ping holds %q", ping[:16])
	}
	pong, err := s.RegionBytes("pong")
	if err != nil {
		return fail("%v", err)
	}
	copy(pong, "from child")
	r, err := s.Region("ping")
	if err != nil {
		return fail("%v", err)
	}
	c, err := s.Uint64(r.Offset + r.Length - 8)
	if err != nil {
		return fail("%v", err)
	}
	c.Add(41)
	return 0
}

func TestMemfdAcrossProcesses(t *testing.T) {
	s := mustCreate(t, Memfd, testName(t), 1<<20, nil)
	ping, err := s.AddRegion("ping", FourCC("PING"), 4096, 64)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddRegion("pong", FourCC("PONG"), 4096, 64); err != nil {
		t.Fatal(err)
	}
	b, _ := s.RegionBytes("ping")
	copy(b, "from parent")
	c, _ := s.Uint64(ping.Offset + ping.Length - 8)
	c.Store(1)

	cmd := proctest.Command(t, "memfd-writer")
	cmd.ExtraFiles = []*os.File{s.File()}
	if out, err := run(cmd); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	pong, _ := s.RegionBytes("pong")
	if !bytes.HasPrefix(pong, []byte("from child")) {
		t.Fatalf("pong = %q", pong[:16])
	}
	if c.Load() != 42 {
		t.Fatalf("counter = %d, want 42", c.Load())
	}
}

func TestMemfdSeals(t *testing.T) {
	s := mustCreate(t, Memfd, testName(t), 8192, nil)
	fd := int(s.File().Fd())
	if err := unix.Ftruncate(fd, 4096); !errors.Is(err, unix.EPERM) {
		t.Fatalf("shrinking a sealed memfd: %v, want EPERM", err)
	}
	if err := unix.Ftruncate(fd, 1<<20); !errors.Is(err, unix.EPERM) {
		t.Fatalf("growing a sealed memfd: %v, want EPERM", err)
	}
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	if err != nil || flags&unix.FD_CLOEXEC == 0 {
		t.Fatalf("memfd without FD_CLOEXEC: %#x, %v", flags, err)
	}
	// An unsealed memfd is refused.
	ufd, err := unix.MemfdCreate("unsealed", unix.MFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	uf := os.NewFile(uintptr(ufd), "unsealed")
	defer uf.Close()
	if _, err := OpenMemfd(uf, nil); !errors.Is(err, ErrNotSealed) {
		t.Fatalf("OpenMemfd(unsealed) = %v, want ErrNotSealed", err)
	}
}

// childCreateAndExit creates one segment on each named backend and exits
// without removing them, leaving segments whose creator is dead.
func childCreateAndExit() int {
	name, path := os.Getenv("SEG_NAME"), os.Getenv("SEG_PATH")
	for _, b := range []Backend{POSIX, SysV, File} {
		n := name
		if b == File {
			n = path
		}
		if _, err := Create(b, n, 16<<10, nil); err != nil {
			return fail("%v", err)
		}
	}
	return 0
}

func findInfo(infos []Info, b Backend, name string) *Info {
	for i := range infos {
		if infos[i].Backend == b && infos[i].Name == name {
			return &infos[i]
		}
	}
	return nil
}

func TestListAliveAndDead(t *testing.T) {
	dir := t.TempDir()
	alive := testName(t) + ".alive"
	dead := testName(t) + ".dead"
	for _, b := range []Backend{POSIX, SysV, File} {
		n := alive
		if b == File {
			n = filepath.Join(dir, alive)
		}
		mustCreate(t, b, n, 16<<10, nil)
		n = dead
		if b == File {
			n = filepath.Join(dir, dead)
		}
		removeLater(t, b, n, nil)
	}
	cmd := proctest.Command(t, "create-and-exit", "SEG_NAME="+dead, "SEG_PATH="+filepath.Join(dir, dead))
	if out, err := run(cmd); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	childPID := cmd.ProcessState.Pid()
	// A non-segment file in the directory is not listed.
	if err := os.WriteFile(filepath.Join(dir, "other"), []byte("not a segment at all"), 0o600); err != nil {
		t.Fatal(err)
	}

	infos, err := List(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []Backend{POSIX, SysV, File} {
		a, d := findInfo(infos, b, alive), findInfo(infos, b, dead)
		if a == nil || d == nil {
			t.Fatalf("%v: List missed a segment (alive %v, dead %v) in %+v", b, a != nil, d != nil, infos)
		}
		if a.Err != nil || d.Err != nil {
			t.Fatalf("%v: errors %v / %v", b, a.Err, d.Err)
		}
		if !a.CreatorAlive || a.CreatorPID != os.Getpid() {
			t.Errorf("%v: own segment: alive %v pid %d", b, a.CreatorAlive, a.CreatorPID)
		}
		if d.CreatorAlive || d.CreatorPID != childPID {
			t.Errorf("%v: dead child's segment: alive %v pid %d (child %d)", b, d.CreatorAlive, d.CreatorPID, childPID)
		}
		if d.Size != 16<<10 {
			t.Errorf("%v: size %d", b, d.Size)
		}
	}
	if findInfo(infos, File, "other") != nil {
		t.Error("List reported a file without the magic")
	}
}

func TestProcessAlive(t *testing.T) {
	start, err := ProcessStart(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if !ProcessAlive(os.Getpid(), start) {
		t.Fatal("this process is not alive")
	}
	if ProcessAlive(os.Getpid(), start+1) {
		t.Fatal("a different start time counts as alive (pid reuse)")
	}
	if ProcessAlive(0, 0) || ProcessAlive(-1, 0) {
		t.Fatal("pid 0/-1 alive")
	}
	// A zombie is dead: start a child and do not reap it yet.
	cmd := exec.Command("/bin/true")
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	pid := cmd.Process.Pid
	zstart, err := ProcessStart(pid)
	if err == nil {
		for i := 0; i < 1000; i++ {
			if _, st, _ := procfs.Stat(pid); st == 'Z' {
				break
			}
			syscall.Nanosleep(&syscall.Timespec{Nsec: 1e6}, nil)
		}
		if _, st, _ := procfs.Stat(pid); st == 'Z' && ProcessAlive(pid, zstart) {
			t.Error("a zombie counts as alive")
		}
	}
	cmd.Wait()
	if ProcessAlive(pid, zstart) {
		t.Error("a reaped child counts as alive")
	}
}

// childENOSPC runs in its own mount namespace: it mounts a 64 KiB tmpfs
// over /dev/shm and expects a 1 MiB POSIX Create to fail with ENOSPC (and
// the same for a File segment on another tiny tmpfs).
func childENOSPC() int {
	if err := unix.Mount("tmpfs", POSIXDir, "tmpfs", 0, "size=64k"); err != nil {
		fmt.Fprintf(os.Stderr, "mount: %v\n", err)
		return 3
	}
	name := os.Getenv("SEG_NAME")
	_, err := Create(POSIX, name, 1<<20, nil)
	if !errors.Is(err, unix.ENOSPC) {
		return fail("Create on a full /dev/shm: %v, want ENOSPC", err)
	}
	if ents, _ := os.ReadDir(POSIXDir); len(ents) != 0 {
		return fail("failed Create left %d files behind", len(ents))
	}
	// A segment that fits still works there.
	s, err := Create(POSIX, name, 16<<10, nil)
	if err != nil {
		return fail("small Create: %v", err)
	}
	s.Close()
	if err := Remove(POSIX, name, nil); err != nil {
		return fail("%v", err)
	}
	// The File backend reserves too: a tiny tmpfs at a directory of its own.
	dir, err := os.MkdirTemp("", "shmkit-enospc")
	if err != nil {
		return fail("%v", err)
	}
	defer os.Remove(dir)
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=64k"); err != nil {
		return fail("mount %s: %v", dir, err)
	}
	defer unix.Unmount(dir, 0)
	if _, err := Create(File, filepath.Join(dir, "seg"), 1<<20, nil); !errors.Is(err, unix.ENOSPC) {
		return fail("File Create on a full tmpfs: %v, want ENOSPC", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		return fail("failed File Create left %d files behind", len(ents))
	}
	return 0
}

func TestCreateENOSPC(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	cmd := proctest.Command(t, "enospc", "SEG_NAME="+testName(t))
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	out, err := run(cmd)
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ee.ExitCode() == 3,
		err != nil && strings.Contains(err.Error(), "operation not permitted"):
		t.Skipf("cannot mount a tmpfs in a private namespace: %v\n%s", err, out)
	default:
		t.Fatalf("child: %v\n%s", err, out)
	}
}

// childOpenAsNobody runs as uid 65534 and expects ErrPermission opening
// root's 0600 segments.
func childOpenAsNobody() int {
	name := os.Getenv("SEG_NAME")
	for _, b := range []Backend{POSIX, SysV} {
		_, err := Open(b, name, &Options{ReadOnly: true})
		if !errors.Is(err, ErrPermission) || !errors.Is(err, fs.ErrPermission) {
			return fail("%v: Open as nobody: %v, want ErrPermission", b, err)
		}
	}
	return 0
}

func TestPermissionDenied(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to start a child as another user")
	}
	name := testName(t)
	mustCreate(t, POSIX, name, 8192, nil)
	mustCreate(t, SysV, name, 8192, nil)
	cmd := proctest.Command(t, "open-as-nobody", "SEG_NAME="+name)
	// The test binary sits in a directory only root may enter: run a copy.
	dir, err := os.MkdirTemp("", "shmkit-nobody")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	exe, err := os.ReadFile(cmd.Path)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Path = filepath.Join(dir, "segment.test")
	if err := os.WriteFile(cmd.Path, exe, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := run(cmd)
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) && errors.Is(err, syscall.EPERM) {
		t.Skipf("cannot start a child as uid 65534 here: %v", err)
	}
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

// run runs a proctest child and returns its output.
func run(cmd *exec.Cmd) ([]byte, error) {
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	return buf.Bytes(), err
}
