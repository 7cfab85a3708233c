package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/proctest"
	"github.com/shmkit/shmkit/segment"
)

// The holder child: HOLD_ACTION=create|open|halfmade on segment HOLD_NAME of
// backend HOLD_BACKEND. It prints "ready" once it holds the segment and
// holds it until its stdin closes (or it is killed).
//   - create: creates the segment (so it is the creator) and keeps it mapped.
//   - open: attaches an existing segment (POSIX, File: maps; SysV: shmat).
//   - halfmade: makes /dev/shm/shmkit.NAME the way Create does up to the
//     point where it writes the header, stops before publishing the magic,
//     and lets go of the file: the creator pid and start time are written,
//     the magic is zero, nothing maps it.
func init() {
	proctest.Register("holder", func() int {
		b, err := segment.ParseBackend(os.Getenv("HOLD_BACKEND"))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		name := os.Getenv("HOLD_NAME")
		switch os.Getenv("HOLD_ACTION") {
		case "create":
			s, err := segment.Create(b, name, 64<<10, nil)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			defer s.Close()
		case "open":
			s, err := segment.Open(b, name, nil)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			defer s.Close()
		case "halfmade":
			if err := halfMade(name); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
		default:
			return 2
		}
		fmt.Println("ready")
		io.Copy(io.Discard, os.Stdin)
		return 0
	})
}

// halfMade writes a POSIX segment file with the creator fields of the
// header (pid at byte 32, start time at 40: docs/segment-layout.md) and no
// magic, as a creator that stopped mid-create leaves it.
func halfMade(name string) error {
	start, err := segment.ProcessStart(os.Getpid())
	if err != nil {
		return err
	}
	f, err := os.OpenFile(segment.POSIXDir+"/"+segment.Prefix+name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(64 << 10); err != nil {
		return err
	}
	var b [16]byte
	binary.LittleEndian.PutUint32(b[0:], uint32(os.Getpid()))
	binary.LittleEndian.PutUint64(b[8:], start)
	_, err = f.WriteAt(b[:], 32)
	return err
}

// child is a running holder.
type child struct {
	pid   int
	stdin io.Closer
	kill  func()
}

// startHolder starts a holder child and waits until it says it holds the
// segment. The child is killed when the test ends.
func startHolder(t *testing.T, backend, name, action string) child {
	t.Helper()
	cmd := proctest.Command(t, "holder", "HOLD_BACKEND="+backend, "HOLD_NAME="+name, "HOLD_ACTION="+action)
	cmd.Stdout = nil // StdoutPipe below
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	proctest.Start(t, cmd)
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("holder %s %s %s: %q, %v", action, backend, name, line, err)
	}
	return child{pid: cmd.Process.Pid, stdin: stdin, kill: func() {
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
	}}
}

type gcResult struct {
	DryRun   bool `json:"dry_run"`
	Segments []struct {
		Backend string `json:"backend"`
		Name    string `json:"name"`
		Action  string `json:"action"`
		Reason  string `json:"reason"`
		Unseen  int    `json:"unseen_attachments"`
		Holders []struct {
			PID   int      `json:"pid"`
			Roles []string `json:"roles"`
		} `json:"holders"`
	} `json:"segments"`
}

// gcOne runs `shmctl gc -o json` restricted to one segment name and
// returns the entry for it (Action "" when gc did not list it).
//
// A process that lists segments (another test's `shmctl ls` or gc, a
// package's tests calling segment.List) attaches or maps each one for a
// moment, and gc rightly keeps a segment it finds held: gcOne runs gc
// again, for up to 10 s, while a holder outside ours (the processes the
// test started) holds the segment, or an attachment gc could not match to
// a process (one that came or went between gc's two looks) counts.
func gcOne(t *testing.T, name string, ours []int, args ...string) (action, reason string, holders map[int][]string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var unseen int
		action, reason, unseen, holders = gcOnce(t, name, args...)
		stray := unseen > 0
		for pid := range holders {
			stray = stray || !slices.Contains(ours, pid)
		}
		if !stray || time.Now().After(deadline) {
			return action, reason, holders
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func gcOnce(t *testing.T, name string, args ...string) (action, reason string, unseen int, holders map[int][]string) {
	t.Helper()
	out := mustShmctl(t, append([]string{"gc", "-o", "json", "--match", name}, args...)...)
	var r gcResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("gc -o json: %v\n%s", err, out)
	}
	holders = map[int][]string{}
	for _, s := range r.Segments {
		if s.Name != name {
			t.Fatalf("gc --match %s acted on %s", name, s.Name)
		}
		for _, h := range s.Holders {
			holders[h.PID] = h.Roles
		}
		return s.Action, s.Reason, s.Unseen, holders
	}
	return "", "", 0, holders
}

func exists(b segment.Backend, target string) bool {
	_, err := segment.Stat(b, target, nil)
	return err == nil
}

// TestGCKeepsLiveRemovesDead walks a segment on each backend through its
// life: held by its creator and a second process (kept), creator SIGKILLed
// while the other still maps it (kept, rm refuses and names the holder),
// holder SIGKILLed (--dry-run reports it and changes nothing; gc removes
// it).
func TestGCKeepsLiveRemovesDead(t *testing.T) {
	dir := t.TempDir()
	for _, b := range []string{"posix", "sysv", "file"} {
		t.Run(b, func(t *testing.T) {
			t.Parallel()
			backend, _ := segment.ParseBackend(b)
			name := fmt.Sprintf("gct.%d.%s", os.Getpid(), b)
			target := name
			extra := []string{"--backend", b}
			if b == "file" {
				target = filepath.Join(dir, name)
				extra = append(extra, "--dir", dir)
			}
			t.Cleanup(func() { segment.Remove(backend, target, nil) })
			attachRole := "maps"
			if b == "sysv" {
				attachRole = "attached"
			}

			creator := startHolder(t, b, target, "create")
			holder := startHolder(t, b, target, "open")
			action, reason, hs := gcOne(t, name, []int{creator.pid, holder.pid}, extra...)
			if action != "keep" || !slices.Contains(hs[creator.pid], "creator") || !slices.Contains(hs[creator.pid], attachRole) ||
				!slices.Contains(hs[holder.pid], attachRole) {
				t.Fatalf("both alive: %s (%s), holders %v; want keep, creator %d and holder %d", action, reason, hs, creator.pid, holder.pid)
			}

			creator.kill()
			action, reason, hs = gcOne(t, name, []int{holder.pid}, extra...)
			if action != "keep" || len(hs) != 1 || !slices.Equal(hs[holder.pid], []string{attachRole}) ||
				!strings.Contains(reason, fmt.Sprint(holder.pid)) {
				t.Fatalf("creator killed: %s (%s), holders %v; want keep, held by %d", action, reason, hs, holder.pid)
			}
			_, errOut, code := shmctl(t, "rm", target, "--backend", b)
			if code != exitInUse || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, fmt.Sprintf("pid %d", holder.pid)) {
				t.Fatalf("rm of a held segment: exit %d, %q; want %d naming pid %d", code, errOut, exitInUse, holder.pid)
			}
			if !exists(backend, target) {
				t.Fatal("gc or a refused rm removed a held segment")
			}

			holder.kill()
			action, reason, _ = gcOne(t, name, nil, append(extra, "--dry-run")...)
			if action != "remove" || !strings.Contains(reason, "dead") {
				t.Fatalf("all dead, --dry-run: %s (%s); want remove", action, reason)
			}
			if !exists(backend, target) {
				t.Fatal("gc --dry-run removed the segment")
			}
			action, reason, _ = gcOne(t, name, nil, extra...)
			if action != "removed" || exists(backend, target) {
				t.Fatalf("all dead: %s (%s), exists %v; want removed", action, reason, exists(backend, target))
			}
		})
	}
}

// TestGCMidCreate: a POSIX segment whose header is not yet published is
// kept while the creator named in its header lives, and removed once it is
// dead; an unpublished one nothing holds and no creator is named in is
// removed too.
func TestGCMidCreate(t *testing.T) {
	name := fmt.Sprintf("gct.%d.half", os.Getpid())
	t.Cleanup(func() { segment.Remove(segment.POSIX, name, nil) })
	creator := startHolder(t, "posix", name, "halfmade")
	action, reason, hs := gcOne(t, name, []int{creator.pid}, "--backend", "posix")
	if action != "keep" || !slices.Equal(hs[creator.pid], []string{"creator"}) || !strings.Contains(reason, "being created") {
		t.Fatalf("creator alive: %s (%s), holders %v; want keep", action, reason, hs)
	}
	creator.kill()
	action, reason, _ = gcOne(t, name, nil, "--backend", "posix")
	if action != "removed" || !strings.Contains(reason, "mid-create") {
		t.Fatalf("creator dead: %s (%s); want removed", action, reason)
	}

	zero := fmt.Sprintf("gct.%d.zero", os.Getpid())
	path := segment.POSIXDir + "/" + segment.Prefix + zero
	t.Cleanup(func() { os.Remove(path) })
	if err := os.WriteFile(path, make([]byte, 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	if action, reason, _ = gcOne(t, zero, nil, "--backend", "posix"); action != "removed" {
		t.Fatalf("unpublished, unheld: %s (%s); want removed", action, reason)
	}
}

// TestGCLeavesForeign: gc never touches what is not a shmkit segment of a
// layout it reads, held or not.
func TestGCLeavesForeign(t *testing.T) {
	name := fmt.Sprintf("gct.%d.foreign", os.Getpid())
	path := segment.POSIXDir + "/" + segment.Prefix + name
	t.Cleanup(func() { os.Remove(path) })
	if err := os.WriteFile(path, []byte("definitely not a segment header, but a file someone keeps here"), 0o600); err != nil {
		t.Fatal(err)
	}
	action, reason, _ := gcOne(t, name, nil, "--backend", "posix")
	if action != "keep" || !strings.Contains(reason, "not touched") {
		t.Fatalf("foreign file: %s (%s); want keep, not touched", action, reason)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
}

// TestRmForce: --force removes a held segment and says who held it.
func TestRmForce(t *testing.T) {
	name := fmt.Sprintf("gct.%d.force", os.Getpid())
	t.Cleanup(func() { segment.Remove(segment.POSIX, name, nil) })
	h := startHolder(t, "posix", name, "create")
	var out rmOut
	if err := json.Unmarshal([]byte(mustShmctl(t, "rm", name, "--force", "-o", "json")), &out); err != nil {
		t.Fatal(err)
	}
	if !out.Removed || !out.Forced || len(out.Holders) != 1 || out.Holders[0].PID != h.pid || exists(segment.POSIX, name) {
		t.Fatalf("rm --force: %+v; want removed, forced, held by %d", out, h.pid)
	}
}

// TestNoPermission runs shmctl as an unprivileged user (nobody) against
// root-owned segments whose creators are dead: on a 0600 one, inspect and
// rm fail with one line and gc cannot read its header; on a 0644 one, gc,
// which cannot read root's processes, keeps it; rm fails. Nothing changes.
func TestNoPermission(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("switching to another user needs root")
	}
	private := fmt.Sprintf("gct.%d.private", os.Getpid())
	shared := fmt.Sprintf("gct.%d.shared", os.Getpid())
	for _, n := range []string{private, shared} {
		t.Cleanup(func() { segment.Remove(segment.POSIX, n, nil) })
	}
	mustShmctl(t, "create", private, "--size", "64KiB") // creators exit: dead
	mustShmctl(t, "create", shared, "--size", "64KiB", "--mode", "0644")
	if err := os.Chmod(filepath.Dir(shmctlBin(t)), 0o755); err != nil {
		t.Fatal(err)
	}
	asNobody := func(args ...string) (string, string, int) {
		cmd := exec.Command(shmctlBin(t), args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Skipf("cannot run as nobody: %v", err)
		}
		return o.String(), e.String(), cmd.ProcessState.ExitCode()
	}
	for _, args := range [][]string{{"inspect", private}, {"rm", private}, {"rm", private, "--force"}, {"rm", shared}} {
		out, errOut, code := asNobody(args...)
		if code == 0 || out != "" || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "permission") {
			t.Errorf("%v as nobody: exit %d, stdout %q, stderr %q; want one line about permission", args, code, out, errOut)
		}
	}
	for name, want := range map[string]string{private: "cannot validate", shared: "cannot read"} {
		out, errOut, code := asNobody("gc", "-o", "json", "--match", name)
		var r gcResult
		if err := json.Unmarshal([]byte(out), &r); err != nil || code != 0 {
			t.Fatalf("gc as nobody: exit %d, %v: %s %s", code, err, out, errOut)
		}
		if len(r.Segments) != 1 || r.Segments[0].Action != "keep" || !strings.Contains(r.Segments[0].Reason, want) {
			t.Errorf("gc as nobody: %+v; want keep, %q", r.Segments, want)
		}
	}
	if !exists(segment.POSIX, private) || !exists(segment.POSIX, shared) {
		t.Fatal("a command run as nobody removed a segment")
	}
}
