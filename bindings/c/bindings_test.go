package main

// The bindings' tests: they build libshmkit.so (once per test binary, in a
// temporary directory), the Go examples that talk to Python and C, and the
// C examples, then run the Python unittest suite and the cross-language
// pairs as real processes. They skip with one line when cgo, cc, python3 or
// numpy is missing.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shmkit/shmkit"
)

var (
	root, _ = filepath.Abs("../..") // the repository
	tmp     string                  // the built programs; removed by TestMain

	buildOnce sync.Once
	buildErr  error
	ccOnce    sync.Once
	ccErr     error
	pyOnce    sync.Once
	pyExe     string
	pyNumpy   bool
	pyWhy     string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if tmp != "" {
		os.RemoveAll(tmp)
	}
	os.Exit(code)
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtimeGOROOT(), "bin", "go")
}

func runtimeGOROOT() string {
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		return "/usr/local/go"
	}
	return strings.TrimSpace(string(out))
}

// built builds libshmkit.so and the Go examples once; it skips the test
// when cgo is off.
func built(t *testing.T) {
	t.Helper()
	out, err := exec.Command(goTool(), "env", "CGO_ENABLED").Output()
	if err != nil || strings.TrimSpace(string(out)) != "1" {
		t.Skip("skip: cgo is disabled (CGO_ENABLED=0 or no C compiler): libshmkit.so cannot be built")
	}
	buildOnce.Do(func() {
		if tmp, buildErr = os.MkdirTemp("", "shmkit-bindings-"); buildErr != nil {
			return
		}
		for _, b := range [][]string{
			{"build", "-buildmode=c-shared", "-o", filepath.Join(tmp, "libshmkit.so"), "./bindings/c"},
			{"build", "-o", filepath.Join(tmp, "frames"), "./examples/python/frames"},
			{"build", "-o", filepath.Join(tmp, "ticks"), "./examples/python/ticks"},
		} {
			cmd := exec.Command(goTool(), b...)
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go %s: %v\n%s", strings.Join(b, " "), err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
}

// cBuilt compiles the C examples against shmkit.h (after built).
func cBuilt(t *testing.T) {
	t.Helper()
	built(t)
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "cc"
	}
	if _, err := exec.LookPath(cc); err != nil {
		t.Skipf("skip: no C compiler (%s) to build examples/c", cc)
	}
	ccOnce.Do(func() {
		for _, prog := range []string{"subscriber", "publisher"} {
			cmd := exec.Command(cc, "-O2", "-Wall", "-Wextra", "-Werror", "-I", filepath.Join(root, "bindings/c"),
				"-o", filepath.Join(tmp, "c-"+prog), filepath.Join(root, "examples/c", prog+".c"),
				"-L", tmp, "-lshmkit", "-Wl,-rpath,"+tmp)
			if out, err := cmd.CombinedOutput(); err != nil {
				ccErr = fmt.Errorf("%v: %v\n%s", cmd.Args, err, out)
				return
			}
		}
	})
	if ccErr != nil {
		t.Fatal(ccErr)
	}
}

// python finds an interpreter: $SHMKIT_PYTHON, else python3 on PATH, else
// /usr/bin/python3, preferring the first that has numpy. It skips when
// there is none; with needNumpy it skips when none has numpy.
func python(t *testing.T, needNumpy bool) string {
	t.Helper()
	built(t)
	pyOnce.Do(func() {
		var cands []string
		if p := os.Getenv("SHMKIT_PYTHON"); p != "" {
			cands = append(cands, p)
		}
		if p, err := exec.LookPath("python3"); err == nil {
			cands = append(cands, p)
		}
		cands = append(cands, "/usr/bin/python3")
		for _, c := range cands {
			if exec.Command(c, "-c", "import ctypes").Run() != nil {
				continue
			}
			hasNumpy := exec.Command(c, "-c", "import numpy").Run() == nil
			if pyExe == "" || hasNumpy && !pyNumpy {
				pyExe, pyNumpy = c, hasNumpy
			}
			if hasNumpy {
				break
			}
		}
		pyWhy = fmt.Sprintf("tried %v", cands)
	})
	if pyExe == "" {
		t.Skipf("skip: no python3 with ctypes (%s; set SHMKIT_PYTHON)", pyWhy)
	}
	if needNumpy && !pyNumpy {
		t.Skipf("skip: numpy not installed for %s (apt-get install python3-numpy, or set SHMKIT_PYTHON)", pyExe)
	}
	return pyExe
}

// pyCmd runs a Python program with the package and the library.
func pyCmd(ctx context.Context, t *testing.T, numpy bool, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, python(t, numpy), args...)
	cmd.Env = append(os.Environ(), "SHMKIT_LIB="+filepath.Join(tmp, "libshmkit.so"),
		"PYTHONPATH="+filepath.Join(root, "bindings/python"), "PYTHONDONTWRITEBYTECODE=1")
	cmd.Dir = root
	return cmd
}

func chanName(t *testing.T) string {
	name := fmt.Sprintf("bind-%d-%s", os.Getpid(), regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "-"))
	t.Cleanup(func() { _ = shmkit.Remove(name) })
	return name
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// pair runs two programs at once and returns their outputs; both must
// succeed.
func pair(t *testing.T, a, b *exec.Cmd) (string, string) {
	t.Helper()
	var oa, ob bytes.Buffer
	a.Stdout, a.Stderr = &oa, &oa
	b.Stdout, b.Stderr = &ob, &ob
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		_ = a.Process.Kill()
		_ = a.Wait()
		t.Fatal(err)
	}
	ea, eb := make(chan error, 1), make(chan error, 1)
	go func() { ea <- a.Wait() }()
	go func() { eb <- b.Wait() }()
	var errA, errB error
	for got := 0; got < 2; got++ {
		select {
		case errA = <-ea:
			if errA != nil {
				_ = b.Process.Kill()
			}
		case errB = <-eb:
			if errB != nil {
				_ = a.Process.Kill()
			}
		}
	}
	if errA != nil || errB != nil {
		t.Fatalf("%s: %v\n%s\n%s: %v\n%s", filepath.Base(a.Path), errA, oa.String(), filepath.Base(b.Path), errB, ob.String())
	}
	return oa.String(), ob.String()
}

func bin(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, filepath.Join(tmp, name), args...)
}

func wantOutput(t *testing.T, out, want string) {
	t.Helper()
	if !strings.Contains(out, want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
}

// TestPython runs the package's unittest suite (in-process API, lifetimes
// of views, errors, GIL and Ctrl-C, Python → Python across processes).
func TestPython(t *testing.T) {
	cmd := pyCmd(ctxT(t), t, false, "-m", "unittest", "discover", "-s", "bindings/python/tests", "-v")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %v\n%s", cmd.Args, err, out)
	}
	t.Logf("%s", lastLines(out, 3))
}

func lastLines(b []byte, n int) string {
	l := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(l[max(0, len(l)-n):], "\n")
}

// TestGoToPython: examples/python/frames (Go) streams 1 MiB frames to
// examples/python/frames_subscriber.py, which reads them as numpy arrays.
func TestGoToPython(t *testing.T) {
	ctx := ctxT(t)
	name := chanName(t)
	py := pyCmd(ctx, t, true, "examples/python/frames_subscriber.py", name)
	_, out := pair(t, bin(ctx, "frames", "-name", name, "-count", "300"), py)
	wantOutput(t, out, "received 300 frames")
}

// TestPythonToGo: examples/python/ticks_publisher.py feeds 64-byte ticks to
// examples/python/ticks (Go).
func TestPythonToGo(t *testing.T) {
	ctx := ctxT(t)
	name := chanName(t)
	py := pyCmd(ctx, t, false, "examples/python/ticks_publisher.py", name, "5000")
	_, out := pair(t, py, bin(ctx, "ticks", "-name", name, "-count", "5000"))
	wantOutput(t, out, "received 5000 messages")
}

// TestGoToC: examples/c/subscriber.c receives from the Go publisher.
func TestGoToC(t *testing.T) {
	cBuilt(t)
	ctx := ctxT(t)
	name := chanName(t)
	_, out := pair(t, bin(ctx, "frames", "-name", name, "-size", "64", "-count", "20000", "-depth", "256"), bin(ctx, "c-subscriber", name))
	wantOutput(t, out, "received 20000 messages")
}

// TestCToGo: examples/c/publisher.c feeds the Go subscriber.
func TestCToGo(t *testing.T) {
	cBuilt(t)
	ctx := ctxT(t)
	name := chanName(t)
	_, out := pair(t, bin(ctx, "c-publisher", name, "20000"), bin(ctx, "ticks", "-name", name, "-count", "20000"))
	wantOutput(t, out, "received 20000 messages")
}

// TestKillPythonSubscriber SIGKILLs a Python subscriber that holds
// messages unreleased and has a full ring: the Go publisher carries on, a
// Go subscriber gets every message, and the pool is whole afterwards.
func TestKillPythonSubscriber(t *testing.T) {
	ctx := ctxT(t)
	name := chanName(t)
	ch, err := shmkit.Create(name, shmkit.Config{MaxMessage: 4096, RingDepth: 8, LivenessInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	const held = 5
	py := pyCmd(ctx, t, false, "-c", `
import sys, time, shmkit
ch = shmkit.open(sys.argv[1])
sub = ch.subscriber()
print("ready", flush=True)
msgs = [sub.receive() for _ in range(int(sys.argv[2]))]   # held, never released
views = [m.data for m in msgs]
print("held", flush=True)
time.sleep(600)
`, name, fmt.Sprint(held))
	stdout, err := py.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	py.Stderr = os.Stderr
	if err := py.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = py.Process.Kill(); _ = py.Wait() }()
	lines := bufio.NewScanner(stdout)
	expect := func(want string) {
		t.Helper()
		if !lines.Scan() || lines.Text() != want {
			t.Fatalf("python said %q (%v), want %q", lines.Text(), lines.Err(), want)
		}
	}
	expect("ready")
	keep, err := ch.Subscriber()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ch.Publisher()
	if err != nil {
		t.Fatal(err)
	}
	var got int
	var kerr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			s, err := keep.Receive(ctx)
			if errors.Is(err, shmkit.ErrPeerGone) {
				return
			}
			if err != nil {
				kerr = err
				return
			}
			if n := int(s.Bytes()[0]) | int(s.Bytes()[1])<<8; n != got {
				kerr = fmt.Errorf("message %d numbered %d", got, n)
			}
			got++
			s.Release()
		}
	}()
	send := func(i int) {
		msg := make([]byte, 100+i%3000)
		msg[0], msg[1] = byte(i), byte(i>>8)
		if err := pub.Send(ctx, msg); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	const total = 500
	i := 0
	for ; i < held; i++ {
		send(i)
	}
	expect("held")
	st, _ := ch.Stats()
	hold := 0
	for _, p := range st.Participants {
		if p.Role == shmkit.RoleSubscriber {
			hold += p.Held
		}
	}
	if hold < held {
		t.Fatalf("participants %+v: the Python subscriber should hold %d samples", st.Participants, held)
	}
	// Fill its ring too (depth 8), so the publisher would block on it.
	for ; i < held+8; i++ {
		send(i)
	}
	if err := py.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = py.Wait()
	start := time.Now()
	for ; i < total; i++ { // blocks on the dead ring until liveness cleans it
		send(i)
	}
	t.Logf("published %d more messages in %v after the kill", total-held-8, time.Since(start).Round(time.Millisecond))
	pub.Close()
	<-done
	if kerr != nil {
		t.Fatal(kerr)
	}
	if got != total {
		t.Fatalf("the Go subscriber got %d of %d messages", got, total)
	}
	keep.Close()
	// The dead subscriber's slot is freed and its chunks are back.
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := ch.Stats()
		if err != nil {
			t.Fatal(err)
		}
		p := st.Pool
		if st.Count("subscriber") == 0 && p.Free == p.Total && p.InUse == 0 && p.InFlight == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pool not whole after the kill: %+v, %d subscribers", p, st.Count("subscriber"))
		}
		time.Sleep(time.Millisecond)
	}
}

// TestInstall installs the package with pip --no-build-isolation (Debian's
// setuptools, no index) with libshmkit.so beside it, and uses it without
// SHMKIT_LIB.
func TestInstall(t *testing.T) {
	py := python(t, false)
	if exec.Command(py, "-c", "import setuptools, pip").Run() != nil {
		t.Skipf("skip: %s has no pip or setuptools (apt-get install python3-pip python3-setuptools)", py)
	}
	src, site := t.TempDir(), t.TempDir()
	if err := copyTree(filepath.Join(root, "bindings/python"), src); err != nil {
		t.Fatal(err)
	}
	if err := copyFile(filepath.Join(tmp, "libshmkit.so"), filepath.Join(src, "shmkit", "libshmkit.so")); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctxT(t), py, "-m", "pip", "install", "--no-build-isolation", "--no-index",
		"--disable-pip-version-check", "--no-warn-script-location", "--target", site, src)
	cmd.Env = append(os.Environ(), "PIP_NO_INPUT=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %v\n%s", cmd.Args, err, out)
	}
	name := chanName(t)
	cmd = exec.CommandContext(ctxT(t), py, "-c", `
import sys, shmkit
with shmkit.create(sys.argv[1], max_message=64) as ch:
    sub, pub = ch.subscriber(), ch.publisher()
    pub.send(b"installed")
    with sub.receive(timeout=5) as m:
        print(m.tobytes().decode(), shmkit.__file__)
`, name)
	cmd.Dir = site
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "SHMKIT_LIB=") && !strings.HasPrefix(e, "PYTHONPATH=") {
			env = append(env, e)
		}
	}
	cmd.Env = append(env, "PYTHONPATH="+site, "PYTHONDONTWRITEBYTECODE=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	wantOutput(t, string(out), "installed "+site)
}

func copyTree(from, to string) error {
	return filepath.Walk(from, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if info.IsDir() {
			if n := info.Name(); n == "build" || n == "__pycache__" || strings.HasSuffix(n, ".egg-info") {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		if strings.HasSuffix(p, ".so") {
			return nil
		}
		return copyFile(p, filepath.Join(to, rel))
	})
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// TestBindingsBench runs bindings/python/bench.py (frames and 64-byte
// messages against multiprocessing, the cost of a ctypes call, the C
// subscriber against the Go one) with the programs it needs. It takes
// minutes, so it runs only with SHMKIT_BINDINGS_BENCH=1:
//
//	SHMKIT_BINDINGS_BENCH=1 go test -run TestBindingsBench -v -timeout 30m ./bindings/c
//
// SHMKIT_BENCH_ARGS adds arguments (e.g. "--rounds 3 --only frames").
func TestBindingsBench(t *testing.T) {
	if os.Getenv("SHMKIT_BINDINGS_BENCH") != "1" {
		t.Skip("skip: set SHMKIT_BINDINGS_BENCH=1 to run the bindings' benchmarks (minutes)")
	}
	cBuilt(t)
	ctx, cancel := context.WithTimeout(context.Background(), 28*time.Minute)
	defer cancel()
	args := append([]string{"bindings/python/bench.py", "--bin", tmp}, strings.Fields(os.Getenv("SHMKIT_BENCH_ARGS"))...)
	cmd := pyCmd(ctx, t, true, args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
}
