package segment

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/proctest"
	"golang.org/x/sys/unix"
)

// The attacker of docs/security.md: another local user. These tests run a
// child of the test binary as nobody (uid and gid 65534); they need root
// to switch uid and skip without it.

const nobody = 65534

func init() {
	proctest.Register("squat", childSquat)
	proctest.Register("truncate-loop", childTruncateLoop)
}

// asNobody makes cmd run as nobody: it copies the test binary to a
// directory nobody can read (the one go test builds is not) and sets the
// credentials. It skips the test when this process cannot switch uid.
func asNobody(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root to run the attacker as another uid (nobody)")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "shmkit-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	copyTo := filepath.Join(dir, filepath.Base(exe))
	in, err := os.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(copyTo, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	cmd.Path = copyTo
	cmd.Args[0] = copyTo
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
}

// runNobody runs child name as nobody and fails the test unless it exits 0.
func runNobody(t *testing.T, name string, env ...string) {
	t.Helper()
	cmd := proctest.Command(t, name, env...)
	cmd.Stdout, cmd.Stderr = nil, nil
	asNobody(t, cmd)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child %s as nobody: %v\n%s", name, err, out)
	}
}

// childSquat creates SEG_NAME on SEG_BACKEND as nobody with mode SEG_MODE
// and exits, leaving it behind; with SEG_GIVE it also hands a SysV
// segment's uid to root (IPC_SET lets the creator set any uid).
func childSquat() int {
	b, _ := ParseBackend(os.Getenv("SEG_BACKEND"))
	mode, _ := strconv.ParseUint(os.Getenv("SEG_MODE"), 8, 32)
	s, err := Create(b, os.Getenv("SEG_NAME"), 64<<10, &Options{Mode: os.FileMode(mode)})
	if err != nil {
		return fail("%v", err)
	}
	if os.Getenv("SEG_GIVE") != "" && b == SysV {
		var d unix.SysvShmDesc
		if _, err := unix.SysvShmCtl(s.id, unix.IPC_STAT, &d); err != nil {
			return fail("IPC_STAT: %v", err)
		}
		d.Perm.Uid = 0
		if _, err := unix.SysvShmCtl(s.id, unix.IPC_SET, &d); err != nil {
			return fail("IPC_SET uid 0: %v", err)
		}
	}
	s.Close()
	return 0
}

// TestSquatRefused is defect 1 of docs/security.md: nobody creates the
// name first; root's Create says ErrExist and root's read-write Open
// refuses it with ErrUntrusted naming the owner and mode, on every named
// backend, unless root names nobody as an owner (and even then not a
// segment anyone may write).
func TestSquatRefused(t *testing.T) {
	dir, err := os.MkdirTemp("", "shmkit-squat-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o1777)
	for _, b := range []Backend{POSIX, SysV, File} {
		for _, c := range []struct {
			mode    string
			give    bool
			trusted bool // Options.Owners = [nobody] makes it acceptable
		}{{"666", false, false}, {"644", false, true}, {"600", true, true}} {
			if c.give && b != SysV {
				continue
			}
			t.Run(b.String()+"/"+c.mode, func(t *testing.T) {
				name := testName(t)
				if b == File {
					name = filepath.Join(dir, name)
				}
				env := []string{"SEG_BACKEND=" + b.String(), "SEG_NAME=" + name, "SEG_MODE=" + c.mode}
				if c.give {
					env = append(env, "SEG_GIVE=1")
				}
				removeLater(t, b, name, nil)
				runNobody(t, "squat", env...)
				if _, err := Create(b, name, 64<<10, nil); !errors.Is(err, ErrExist) {
					t.Fatalf("Create over the squatter's segment: %v, want ErrExist", err)
				}
				_, err := Open(b, name, nil)
				if !errors.Is(err, ErrUntrusted) {
					t.Fatalf("Open of nobody's segment: %v, want ErrUntrusted", err)
				}
				if !strings.Contains(err.Error(), "65534") || !strings.Contains(err.Error(), "mode 0"+c.mode) {
					t.Errorf("the error does not name owner and mode: %v", err)
				}
				s, err := Open(b, name, &Options{Owners: []int{nobody}})
				switch {
				case c.trusted && err != nil:
					t.Errorf("Open naming nobody as owner: %v", err)
				case !c.trusted && !errors.Is(err, ErrUntrusted):
					t.Errorf("Open naming nobody of a mode %s segment: %v, want ErrUntrusted", c.mode, err)
				}
				if s != nil {
					s.Close()
				}
				// Tools read anyone's segment read-only.
				if _, err := Stat(b, name, nil); err != nil {
					t.Errorf("Stat (read-only): %v", err)
				}
			})
		}
	}
}

// TestModeAndGroup: a group and a mode given at Create are what the
// segment gets whatever the umask; a group-writable segment is joined
// read-write only by a caller naming the group.
func TestModeAndGroup(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	for _, b := range []Backend{POSIX, SysV, File} {
		t.Run(b.String(), func(t *testing.T) {
			if os.Geteuid() != 0 {
				t.Skip("skipped: needs root to give a segment group nogroup (65534)")
			}
			name := testTarget(t, b)
			s := mustCreate(t, b, name, 64<<10, &Options{Mode: 0o660, Group: "65534"})
			info := s.Info()
			if info.Mode != 0o660 {
				t.Errorf("mode %#o, want 0660 under umask 077", uint32(info.Mode))
			}
			var gid uint32
			switch b {
			case SysV:
				var d unix.SysvShmDesc
				if _, err := unix.SysvShmCtl(s.id, unix.IPC_STAT, &d); err != nil {
					t.Fatal(err)
				}
				gid = d.Perm.Gid
			default:
				var st unix.Stat_t
				if err := unix.Stat(s.Path(), &st); err != nil {
					t.Fatal(err)
				}
				gid = st.Gid
			}
			if gid != nobody {
				t.Errorf("group %d, want 65534", gid)
			}
			if _, err := Open(b, name, nil); !errors.Is(err, ErrUntrusted) {
				t.Errorf("Open of a group-writable segment without naming the group: %v, want ErrUntrusted", err)
			}
			o, err := Open(b, name, &Options{Groups: []int{nobody}})
			if err != nil {
				t.Fatalf("Open naming the group: %v", err)
			}
			o.Close()
		})
	}
}

// childTruncateLoop (nobody) creates SEG_NAME on POSIX, mode 0644, says
// "ready", and then truncates it to nothing and restores it, over and over,
// until its stdin closes.
func childTruncateLoop() int {
	name := os.Getenv("SEG_NAME")
	s, err := Create(POSIX, name, 256<<10, &Options{Mode: 0o644})
	if err != nil {
		return fail("%v", err)
	}
	img := make([]byte, s.Size())
	if _, err := s.ReadAt(img, 0); err != nil {
		return fail("%v", err)
	}
	path := s.Path()
	s.Close()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fail("%v", err)
	}
	stop := make(chan struct{})
	go func() { io.Copy(io.Discard, os.Stdin); close(stop) }()
	os.Stdout.WriteString("ready\n")
	for {
		select {
		case <-stop:
			f.Close()
			os.Remove(path)
			return 0
		default:
		}
		f.Truncate(0)
		time.Sleep(50 * time.Microsecond)
		f.WriteAt(img, 0)
		time.Sleep(50 * time.Microsecond)
	}
}

// startTruncator starts childTruncateLoop as nobody and returns once the
// segment exists; the child stops (and removes it) when the test ends.
func startTruncator(t *testing.T, name string) {
	t.Helper()
	cmd := proctest.Command(t, "truncate-loop", "SEG_NAME="+name)
	cmd.Stdout = nil
	asNobody(t, cmd)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	proctest.Start(t, cmd)
	t.Cleanup(func() { stdin.Close(); cmd.Wait() })
	buf := make([]byte, 6)
	if _, err := io.ReadFull(stdout, buf); err != nil || string(buf) != "ready\n" {
		t.Fatalf("truncator did not start: %q %v", buf, err)
	}
}

// TestTruncatedUnderReader is defect 2 of docs/security.md: nobody
// truncates and restores its segment in a loop while root reads it the
// way the tools do (Stat, List, a long-lived read-only attachment's
// ReadAt and Regions). Root's process survives every fault; each fault is
// an error wrapping ErrFault.
func TestTruncatedUnderReader(t *testing.T) {
	name := testName(t)
	startTruncator(t, name)
	s, err := Open(POSIX, name, &Options{ReadOnly: true})
	for try := 0; err != nil && try < 1000; try++ { // caught while truncated
		s, err = Open(POSIX, name, &Options{ReadOnly: true})
	}
	if err != nil {
		t.Fatalf("Open read-only: %v", err)
	}
	defer s.Close()
	buf := make([]byte, s.Size())
	var faults, ok, statErrs int
	// 2000 rounds, and then on until a read has faulted (a hang detector's
	// bound, not a timing check: it takes a fraction of a second).
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; time.Now().Before(deadline) && (i < 2000 || faults == 0); i++ {
		if _, err := s.ReadAt(buf, 0); errors.Is(err, ErrFault) {
			faults++
		} else if err != nil {
			t.Fatalf("ReadAt: %v, want nil or ErrFault", err)
		} else {
			ok++
		}
		if _, err := Stat(POSIX, name, nil); err != nil {
			statErrs++
		}
		if _, err := s.LoadUint64(s.DataOffset()); err != nil && !errors.Is(err, ErrFault) {
			t.Fatalf("LoadUint64: %v, want nil or ErrFault", err)
		}
		if i%100 == 0 {
			List()
		}
	}
	t.Logf("ReadAt: %d faults turned into errors, %d whole reads; Stat: %d errors (truncated, not ready, fault)", faults, ok, statErrs)
	if faults == 0 {
		t.Errorf("no read faulted in 30 s: the truncation loop did not hit a read (not proven)")
	}
}
