package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/proctest"
	"github.com/shmkit/shmkit/segment"
)

// The shmctl executable the tests drive as a user would, built once, on
// first use (fuzz workers and child processes never build it).
var (
	buildOnce sync.Once
	buildDir  string
	builtBin  string
	buildErr  error
)

// shmctlBin builds shmctl (once) and returns its path.
func shmctlBin(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		if buildDir, buildErr = os.MkdirTemp("", "shmctl-test-"); buildErr != nil {
			return
		}
		builtBin = filepath.Join(buildDir, "shmctl")
		out, err := exec.Command(goTool(), "build", "-o", builtBin, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("build shmctl: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

func TestMain(m *testing.M) {
	if proctest.IsChild() {
		proctest.Main(m) // runs the child and exits
	}
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// goTool finds the go command that is running these tests.
func goTool() string {
	if p := filepath.Join(runtime.GOROOT(), "bin", "go"); fileExists(p) {
		return p
	}
	return "go"
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// shmctl runs the built binary with args.
func shmctl(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(shmctlBin(t), args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("shmctl %v: %v", args, err)
	}
	return o.String(), e.String(), code
}

func mustShmctl(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := shmctl(t, args...)
	if code != 0 {
		t.Fatalf("shmctl %s: exit %d: %s", strings.Join(args, " "), code, errOut)
	}
	return out
}

// mustRm runs `shmctl rm` until it removes the segment. rm refuses (exit
// 3) a segment in use, and a process listing segments meanwhile (another
// test's `shmctl ls`, segment.List) maps or attaches each one for a
// moment: it tries again for up to 10 s while refused.
func mustRm(t *testing.T, args ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, errOut, code := shmctl(t, append([]string{"rm"}, args...)...)
		if code == 0 {
			return
		}
		if code != exitInUse || time.Now().After(deadline) {
			t.Fatalf("shmctl rm %s: exit %d: %s", strings.Join(args, " "), code, errOut)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCreateListInspectRemove(t *testing.T) {
	dir := t.TempDir()
	for _, b := range []string{"posix", "sysv", "file"} {
		t.Run(b, func(t *testing.T) {
			t.Parallel()
			name := fmt.Sprintf("cli.%d.%s", os.Getpid(), b)
			target, short := name, name
			if b == "file" {
				target = filepath.Join(dir, name)
			}
			backend, _ := segment.ParseBackend(b)
			t.Cleanup(func() { segment.Remove(backend, target, nil) })

			out := mustShmctl(t, "create", target, "--size", "64KiB", "--backend", b, "--mode", "0640")
			if !strings.Contains(out, "created "+b) {
				t.Fatalf("create said %q", out)
			}
			if _, errOut, code := shmctl(t, "create", target, "--size", "64KiB", "--backend", b); code == 0 ||
				!strings.Contains(errOut, "already exists") {
				t.Fatalf("second create: exit %d, %q", code, errOut)
			}

			var list []map[string]any
			if err := json.Unmarshal([]byte(mustShmctl(t, "ls", "-o", "json", "--dir", dir)), &list); err != nil {
				t.Fatal(err)
			}
			var found map[string]any
			for _, e := range list {
				if e["name"] == short && e["backend"] == b {
					found = e
				}
			}
			if found == nil || found["size"] != float64(64<<10) || found["creator_alive"] != false || found["error"] != nil {
				t.Fatalf("ls -o json: %v in %v", found, list)
			}
			if text := mustShmctl(t, "ls", "--dir", dir); !strings.Contains(text, short) {
				t.Fatalf("ls does not show %s:\n%s", short, text)
			}

			var info map[string]any
			if err := json.Unmarshal([]byte(mustShmctl(t, "inspect", target, "--backend", b, "-o", "json")), &info); err != nil {
				t.Fatal(err)
			}
			if info["name"] != short || info["mode"] != "0640" || info["header_size"] != float64(2368) {
				t.Fatalf("inspect -o json: %v", info)
			}
			if text := mustShmctl(t, "inspect", target, "--backend", b); !strings.Contains(text, "regions:") {
				t.Fatalf("inspect:\n%s", text)
			}

			mustRm(t, target, "--backend", b)
			if _, errOut, code := shmctl(t, "inspect", target, "--backend", b); code == 0 ||
				!strings.Contains(errOut, "does not exist") {
				t.Fatalf("inspect after rm: exit %d, %q", code, errOut)
			}
			if _, err := segment.Stat(backend, target, nil); err == nil {
				t.Fatal("segment still there after rm")
			}
		})
	}
}

func TestInspectPrintsFourCC(t *testing.T) {
	name := fmt.Sprintf("cli.%d.fourcc", os.Getpid())
	s, err := segment.Create(segment.POSIX, name, 1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer segment.Remove(segment.POSIX, name, nil)
	defer s.Close()
	s.AddRegion("requests", segment.FourCC("SPSC"), 4096, 64)
	s.AddRegion("pool", segment.FourCC("SLAB"), 64<<10, 4096)
	s.AddRegion("odd", 7, 64, 64)
	text := mustShmctl(t, "inspect", name)
	for _, want := range []string{"requests", "SPSC", "pool", "SLAB", "0x00000007", "alive",
		fmt.Sprintf("held by pid %d (creator, maps)", os.Getpid())} {
		if !strings.Contains(text, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, text)
		}
	}
	var out struct {
		Regions []struct {
			Name, Kind string
			KindValue  uint32 `json:"kind_value"`
		}
	}
	if err := json.Unmarshal([]byte(mustShmctl(t, "inspect", name, "-o", "json")), &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Regions) != 3 || out.Regions[0].Kind != "SPSC" || out.Regions[0].KindValue != segment.FourCC("SPSC") {
		t.Fatalf("inspect -o json regions: %+v", out.Regions)
	}
}

// TestBadInputOneLine gives every command wrong input: each must exit
// non-zero with exactly one line on stderr, print nothing on stdout, and
// change nothing (no segment created, none removed).
func TestBadInputOneLine(t *testing.T) {
	name := fmt.Sprintf("cli.%d.bad", os.Getpid())
	t.Cleanup(func() { segment.Remove(segment.POSIX, name, nil) })
	// A dead segment that a bad gc must not collect.
	dead := fmt.Sprintf("cli.%d.dead", os.Getpid())
	t.Cleanup(func() { segment.Remove(segment.POSIX, dead, nil) })
	mustShmctl(t, "create", dead, "--size", "64KiB")
	precious := filepath.Join(t.TempDir(), "precious")
	if err := os.WriteFile(precious, []byte("not a segment"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"create", "bad/name", "--size", "1MiB"},
		{"create", "a..b", "--size", "1MiB"},
		{"create", name, "--size", "12XB"},
		{"create", name, "--size", "0"},
		{"create", name, "--size", "1KiB"},
		{"create", name, "--size", "2PiB"},
		{"create", name},
		{"create", name, "--size", "1MiB", "--backend", "nfs"},
		{"create", name, "--size", "1MiB", "--backend", "memfd"},
		{"create", name, "--size", "1MiB", "--mode", "0999"},
		{"create", name, "--size", "1MiB", "--sysv-key", "0x10"},
		{"create", name, "--size", "1MiB", "-o", "yaml"},
		{"create", "--size", "1MiB"},
		{"ls", "-o", "yaml"},
		{"ls", "extra"},
		{"ls", "--dir", "/nonexistent/shmctl-test"},
		{"inspect", name},
		{"inspect", name, "-o", "yaml"},
		{"inspect", name, "--backend", "nfs"},
		{"rm", name},
		{"rm", name, "--force"},
		{"rm", dead, "-o", "yaml"},
		{"rm", dead, "--backend", "nfs"},
		{"rm", "--backend", "file", precious},
		{"rm", "--backend", "file", "--force", precious},
		{"gc", "--match", dead, "-o", "yaml"},
		{"gc", "--match", dead, "--backend", "memfd"},
		{"gc", "--match", dead, "--backend", "posix,nfs"},
		{"gc", "--match", "["},
		{"gc", "--match", dead, "--dir", "/nonexistent/shmctl-test"},
		{"gc", "--match", dead, "--dir", t.TempDir(), "--backend", "posix"},
		{"gc", "--match", dead, "extra"},
		{"gc", "--match", dead, "--dry"},
		{"doctor", "-o", "yaml"},
		{"doctor", "extra"},
		{"completion"},
		{"completion", "tcsh"},
		{"completion", "bash", "zsh"},
		{"nosuchcommand"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			t.Parallel()
			out, errOut, code := shmctl(t, args...)
			lines := strings.Split(strings.TrimRight(errOut, "\n"), "\n")
			if code == 0 || len(lines) != 1 || !strings.HasPrefix(lines[0], "shmctl: ") || out != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want non-zero and one line", code, out, errOut)
			}
		})
	}
	t.Cleanup(func() {
		if _, err := segment.Stat(segment.POSIX, name, nil); err == nil {
			t.Error("a bad command created a segment")
		}
		if _, err := segment.Stat(segment.POSIX, dead, nil); err != nil {
			t.Errorf("a bad command removed a segment: %v", err)
		}
		if _, err := os.Stat(precious); err != nil {
			t.Errorf("rm removed a file that is not a segment: %v", err)
		}
	})
}

// TestHelpHasExamples: every command's --help shows examples.
func TestHelpHasExamples(t *testing.T) {
	for _, c := range rootCmd.Commands() {
		if c.Hidden || c.Name() == "help" {
			continue
		}
		if c.Name() == "bench" && c.Example == "" {
			t.Log("bench: no examples yet (bench.go belongs to the bench engineer)")
			continue
		}
		t.Run(c.Name(), func(t *testing.T) {
			t.Parallel()
			out := mustShmctl(t, c.Name(), "--help")
			if !strings.Contains(out, "Examples:\n  shmctl "+c.Name()) && !strings.Contains(out, "Examples:\n  source") {
				t.Errorf("shmctl %s --help has no examples:\n%s", c.Name(), out)
			}
		})
	}
}

// TestCompletion: the scripts for each shell, and segment names completed
// from what exists.
func TestCompletion(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish"} {
		if out := mustShmctl(t, "completion", sh); len(out) < 1000 || !strings.Contains(out, "shmctl") {
			t.Errorf("completion %s: %d bytes", sh, len(out))
		}
	}
	name := fmt.Sprintf("cli.%d.complete", os.Getpid())
	t.Cleanup(func() { segment.Remove(segment.POSIX, name, nil) })
	mustShmctl(t, "create", name, "--size", "64KiB")
	out := mustShmctl(t, "__complete", "inspect", name[:len(name)-3])
	if !strings.Contains(out, name+"\n") {
		t.Errorf("completing a segment name:\n%s", out)
	}
	if out := mustShmctl(t, "__complete", "gc", "--backend", ""); !strings.Contains(out, "sysv\n") {
		t.Errorf("completing --backend:\n%s", out)
	}
}

// TestExitCodesDocumented: docs/shmctl.md lists exactly the exit codes
// main uses.
func TestExitCodesDocumented(t *testing.T) {
	b, err := os.ReadFile("../../docs/shmctl.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(b), "<!-- exitcodes -->")
	table, _, ok2 := strings.Cut(table, "<!-- /exitcodes -->")
	if !ok || !ok2 {
		t.Fatal("docs/shmctl.md: no <!-- exitcodes --> table")
	}
	var documented []int
	for _, line := range strings.Split(table, "\n") {
		var code int
		if _, err := fmt.Sscanf(line, "| %d |", &code); err == nil {
			documented = append(documented, code)
		}
	}
	if want := []int{exitOK, exitError, exitBlocked, exitInUse}; !slices.Equal(documented, want) {
		t.Fatalf("docs/shmctl.md documents exit codes %v; main uses %v", documented, want)
	}
}
