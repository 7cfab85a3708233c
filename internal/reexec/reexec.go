// Package reexec runs a registered function as a child process: the running
// binary re-executed with an environment variable naming the function. It is
// the one re-exec mechanism of the module: internal/proctest builds the test
// children on it and package bench its benchmark children.
//
// A program registers its children before it does anything else and lets
// Main dispatch:
//
//	func init() { reexec.Register("worker", worker) } // func() int
//	func main() {
//		if code, ok := reexec.Main(); ok {
//			os.Exit(code)
//		}
//		...
//	}
//
// and starts one with Command("worker", "KEY=value").
package reexec

import (
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
)

// selfExe is Linux's name for the running executable's file.
const selfExe = "/proc/self/exe"

// EnvChild is the environment variable that names the child to run.
const EnvChild = "SHMKIT_CHILD"

// EnvExecWrapper names an emulator that runs the binary when the kernel
// cannot (qemu-aarch64-static for a GOARCH=arm64 build on amd64): children
// are started through it.
const EnvExecWrapper = "SHMKIT_PROCTEST_EXEC_WRAPPER"

var (
	mu       sync.Mutex
	children = map[string]func() int{}
)

// Register makes fn runnable as a child process under name. It panics when
// name is registered twice (a programming error). Call it from init or
// before Main.
func Register(name string, fn func() int) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := children[name]; dup {
		panic("reexec: child " + name + " registered twice")
	}
	children[name] = fn
}

// Name returns the name of the child this process was started as, or "".
func Name() string { return os.Getenv(EnvChild) }

// Main runs the child this process was started as, if any, and returns its
// exit code and true; it returns false in a process that is no child. A
// child name nobody registered gives exit code 2 and a message on stderr.
func Main() (code int, ok bool) {
	name := Name()
	if name == "" {
		return 0, false
	}
	mu.Lock()
	fn, found := children[name]
	var names []string
	for n := range children {
		names = append(names, n)
	}
	mu.Unlock()
	if !found {
		sort.Strings(names)
		fmt.Fprintf(os.Stderr, "reexec: no child %q (have %s)\n", name, strings.Join(names, ", "))
		return 2, true
	}
	return fn(), true
}

// Command returns a command that runs the registered child name in a fresh
// copy of the running binary (/proc/self/exe where there is one, else
// os.Executable), with args as its arguments
// and env (KEY=value pairs) added to this process's environment, through
// the emulator named by EnvExecWrapper if it is set. The caller sets its
// files, starts it and waits for it.
func Command(name string, args []string, env ...string) (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("reexec: %w", err)
	}
	argv := append([]string{exe}, args...)
	if w := os.Getenv(EnvExecWrapper); w != "" {
		argv = append([]string{w}, argv...)
	} else if _, err := os.Stat(selfExe); err == nil {
		// The very file this process runs, even if its path has been
		// replaced meanwhile (a rebuild while a benchmark runs).
		argv[0] = selfExe
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(append(os.Environ(), EnvChild+"="+name), env...)
	return cmd, nil
}
