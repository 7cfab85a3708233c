package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shmkit/shmkit/internal/proctest"
	"github.com/shmkit/shmkit/segment"
)

const envArgs = "SHMCTL_TEST_ARGS"

func TestMain(m *testing.M) {
	// The child runs shmctl's real main with the arguments in envArgs, so
	// the tests see its true exit status and stderr.
	proctest.Register("shmctl", func() int {
		var args []string
		if err := json.Unmarshal([]byte(os.Getenv(envArgs)), &args); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		os.Args = append([]string{"shmctl"}, args...)
		main()
		return 0
	})
	proctest.Main(m)
}

// shmctl runs the command line in a child process.
func shmctl(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	js, _ := json.Marshal(args)
	cmd := proctest.Command(t, "shmctl", envArgs+"="+string(js))
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
			if info["name"] != short || info["mode"] != float64(0o640) || info["header_size"] != float64(2368) {
				t.Fatalf("inspect -o json: %v", info)
			}
			if text := mustShmctl(t, "inspect", target, "--backend", b); !strings.Contains(text, "regions:") {
				t.Fatalf("inspect:\n%s", text)
			}

			mustShmctl(t, "rm", target, "--backend", b)
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
	for _, want := range []string{"requests", "SPSC", "pool", "SLAB", "0x00000007", "alive"} {
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

func TestBadInputOneLine(t *testing.T) {
	name := fmt.Sprintf("cli.%d.bad", os.Getpid())
	t.Cleanup(func() { segment.Remove(segment.POSIX, name, nil) })
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
		{"create", "--size", "1MiB"},
		{"ls", "-o", "yaml"},
		{"inspect", name},
		{"rm", name},
		{"rm", "--backend", "file", precious},
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
		if _, err := os.Stat(precious); err != nil {
			t.Errorf("rm removed a file that is not a segment: %v", err)
		}
	})
}
