package ring

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/shmkit/shmkit/internal/proctest"
)

// A shared test area is one memfd mapped by the test and its children:
// the first page holds coordination words, the ring starts at ringOff.
const (
	ringOff   = 4096
	wordReady = 0 // children increment when attached
	wordGo    = 1 // parent sets to 1 to start the timed part
	wordDone  = 2 // children increment when finished
	wordCount = 8 // first of the per-child result words (uint64 each)
)

// sharedArea is the parent's view of a memfd shared with children.
type sharedArea struct {
	mem []byte
	f   *os.File
}

// newSharedArea creates a sealed memfd of ringOff+ringSize bytes, maps it
// shared and arranges for both to go away when the test ends.
func newSharedArea(tb testing.TB, ringSize int) *sharedArea {
	tb.Helper()
	mem, f := proctest.Memfd(tb, ringOff+ringSize)
	return &sharedArea{mem: mem, f: f}
}

func (a *sharedArea) ring() []byte { return a.mem[ringOff:] }

func (a *sharedArea) word(i int) *atomic.Uint32 {
	return (*atomic.Uint32)(unsafe.Pointer(&a.mem[4*i]))
}

func (a *sharedArea) count(i int) *atomic.Uint64 {
	return (*atomic.Uint64)(unsafe.Pointer(&a.mem[8*(wordCount+i)]))
}

// start runs child name with the area as fd 3 and env added.
func (a *sharedArea) start(tb testing.TB, name string, env ...string) *exec.Cmd {
	tb.Helper()
	cmd := proctest.Command(tb, name, env...)
	cmd.ExtraFiles = []*os.File{a.f}
	proctest.Start(tb, cmd)
	return cmd
}

// waitWord spins (with short sleeps) until word i reaches want, or fails
// the test after a generous time (this is a hang detector, not a timing
// check).
func (a *sharedArea) waitWord(tb testing.TB, i int, want uint32) {
	tb.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for a.word(i).Load() < want {
		if time.Now().After(deadline) {
			tb.Fatalf("word %d stuck at %d, want %d", i, a.word(i).Load(), want)
		}
		time.Sleep(50 * time.Microsecond)
	}
}

// spinWord spins without sleeping until word i reaches want; used by
// benchmarks for the start-up handshake.
func (a *sharedArea) spinWord(i int, want uint32) {
	for a.word(i).Load() < want {
	}
}

// childArea maps the memfd a child received as fd 3.
func childArea() (*sharedArea, error) {
	var st unix.Stat_t
	if err := unix.Fstat(3, &st); err != nil {
		return nil, fmt.Errorf("fstat fd 3: %w", err)
	}
	mem, err := unix.Mmap(3, 0, int(st.Size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap fd 3: %w", err)
	}
	return &sharedArea{mem: mem, f: os.NewFile(3, "memfd")}, nil
}

// envInt reads an integer from the environment, or def.
func envInt(name string, def int) int {
	v, err := strconv.Atoi(os.Getenv(name))
	if err != nil {
		return def
	}
	return v
}

// waitCmd waits for a child and fails the test if it did not exit 0.
func waitCmd(tb testing.TB, cmd *exec.Cmd) {
	tb.Helper()
	if err := cmd.Wait(); err != nil {
		tb.Fatalf("child %v: %v", cmd.Env[len(cmd.Env)-1], err)
	}
}

// childFail prints a child's error and returns its exit code.
func childFail(format string, args ...any) int {
	fmt.Fprintf(os.Stderr, "child: "+format+"\n", args...)
	return 1
}

// goInArea runs f in a goroutine that uses the shared area, and makes the
// test's cleanup cancel (the ctx f waits with) and wait for f before the
// area is unmapped: a test that fails while f is parked in the area then
// reports its failure, instead of faulting on the unmapped futex word.
func goInArea(tb testing.TB, cancel context.CancelFunc, f func()) {
	done := make(chan struct{})
	tb.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		f()
	}()
}
