package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/shmkit/shmkit/internal/proctest"
)

// exitNoMount is the smallshm child's exit code when it may not mount.
const exitNoMount = 77

// The smallshm child runs in a private mount namespace: it mounts a 16 MiB
// tmpfs over /dev/shm and runs `shmctl doctor -o json` there (the binary in
// SHMCTL_BIN), passing on its output and exit code.
func init() {
	proctest.Register("smallshm", func() int {
		if err := unix.Mount("tmpfs", "/dev/shm", "tmpfs", 0, "size=16m,mode=1777"); err != nil {
			fmt.Fprintln(os.Stderr, "mount:", err)
			return exitNoMount
		}
		cmd := exec.Command(os.Getenv("SHMCTL_BIN"), "doctor", "-o", "json")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return 0
	})
}

func parseDoctor(t *testing.T, out string, code int) map[string]finding {
	t.Helper()
	var d doctorOut
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("doctor -o json: %v\n%s", err, out)
	}
	byCheck := map[string]finding{}
	fails := 0
	for _, f := range d.Findings {
		byCheck[f.Check] = f
		switch f.Severity {
		case sevFail:
			fails++
			fallthrough
		case sevWarn:
			if f.Fix == "" {
				t.Errorf("%s (%s) has no fix: %s", f.Check, f.Severity, f.Finding)
			}
		case sevOK, sevInfo:
		default:
			t.Errorf("%s: severity %q", f.Check, f.Severity)
		}
	}
	if d.Blocked != (fails > 0) || (code == exitBlocked) != d.Blocked || (code != exitOK && code != exitBlocked) {
		t.Errorf("exit %d, blocked %v, %d failing findings", code, d.Blocked, fails)
	}
	for _, c := range []string{"devshm.size", "devshm.free", "devshm.perms", "sysv.limits", "mqueue.limits", "hugepages",
		"memlock", "overcommit", "pidns", "procfs", "kernel.futex", "kernel.futex_waitv", "kernel.pidfd", "kernel.memfd_seals"} {
		if _, ok := byCheck[c]; !ok {
			t.Errorf("no %s finding", c)
		}
	}
	return byCheck
}

// TestDoctorHere runs doctor on this machine: every check reports, every
// warning carries its fix, the exit code matches the findings, and the text
// form says the same.
func TestDoctorHere(t *testing.T) {
	out, errOut, code := shmctl(t, "doctor", "-o", "json")
	fs := parseDoctor(t, out, code)
	if f := fs["kernel.memfd_seals"]; f.Severity != sevOK {
		t.Errorf("memfd seals on this machine: %+v", f)
	}
	if code == exitBlocked && strings.Count(errOut, "\n") != 1 {
		t.Errorf("blocked, stderr %q; want one line", errOut)
	}
	text, _, tcode := shmctl(t, "doctor")
	if tcode != code || !strings.Contains(text, "devshm.size") || !strings.Contains(text, " blocking\n") {
		t.Errorf("doctor text: exit %d (json %d):\n%s", tcode, code, text)
	}
}

// TestDoctorSmallDevShm mounts a 16 MiB tmpfs over /dev/shm in a private
// mount namespace and checks that doctor reports the small size.
func TestDoctorSmallDevShm(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	cmd := proctest.Command(t, "smallshm", "SHMCTL_BIN="+shmctlBin(t))
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case errors.Is(err, syscall.EPERM):
		t.Skipf("no private mount namespace here: %v", err)
	case err != nil:
		t.Fatal(err)
	}
	if code == exitNoMount {
		t.Skipf("cannot mount a tmpfs here: %s", errOut.String())
	}
	fs := parseDoctor(t, out.String(), code)
	f := fs["devshm.size"]
	if f.Severity != sevWarn || !strings.Contains(f.Finding, "16 MiB") || !strings.Contains(f.Finding, "64 MB") ||
		!strings.Contains(f.Fix, "shm-size") {
		t.Fatalf("devshm.size on a 16 MiB /dev/shm: %+v", f)
	}
}
