// Package proctest runs parts of a test binary as real child processes, for
// the cross-process tests that the race detector cannot replace: mmapped
// memory is invisible to it, so only separate processes prove anything.
//
// A test package registers its children and hands TestMain to Main:
//
//	func TestMain(m *testing.M) {
//		proctest.Register("pinger", pinger) // func() int, returns an exit code
//		proctest.Main(m)
//	}
//
// and a test starts one with Command(t, "pinger", "KEY=value") — the test
// binary re-executed with -test.run=^$ and an environment variable that makes
// Main run the child instead of the tests.
package proctest

import (
	"os"
	"os/exec"
	"testing"

	"github.com/shmkit/shmkit/internal/reexec"
)

// EnvChild is the environment variable that names the child to run (the
// one internal/reexec uses).
const EnvChild = reexec.EnvChild

// Register makes fn runnable as a child process under name. Call it before
// Main, typically from TestMain.
func Register(name string, fn func() int) { reexec.Register(name, fn) }

// Main runs the child named by EnvChild, if any, and exits with its code;
// otherwise it runs the tests and exits.
func Main(m *testing.M) {
	if code, ok := reexec.Main(); ok {
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// IsChild reports whether this process is a child started by Command.
func IsChild() bool { return reexec.Name() != "" }

// EnvExecWrapper names an emulator that runs the test binary when the
// kernel cannot (no binfmt_misc entry): .ci/run sets it to
// qemu-aarch64-static to run the cross-process tests of a GOARCH=arm64
// build on an amd64 machine. Children are started through it too
// (internal/reexec reads it).
const EnvExecWrapper = reexec.EnvExecWrapper

// Command returns a command that runs the registered child name in a fresh
// copy of the test binary, with env (KEY=value pairs) added to this
// process's environment. Its stdout and stderr go to the test's, unless the
// caller sets them. The caller starts it and waits for it.
func Command(tb testing.TB, name string, env ...string) *exec.Cmd {
	tb.Helper()
	cmd, err := reexec.Command(name, []string{"-test.run=^$", "-test.bench=^$"}, env...)
	if err != nil {
		tb.Fatalf("proctest: %v", err)
	}
	cmd.Stdout = os.Stderr
	cmd.Stderr = os.Stderr
	return cmd
}

// Start starts the child and arranges for it to be killed and reaped when
// the test ends, if the test has not waited for it by then.
func Start(tb testing.TB, cmd *exec.Cmd) {
	tb.Helper()
	if err := cmd.Start(); err != nil {
		tb.Fatalf("proctest: start %v: %v", cmd.Args, err)
	}
	tb.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
}
