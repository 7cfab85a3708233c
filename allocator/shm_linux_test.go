package allocator

import (
	"fmt"
	"os"
	"os/exec"
	"sync/atomic"
	"testing"
	"unsafe"

	"github.com/shmkit/shmkit/internal/proctest"
	"golang.org/x/sys/unix"
)

// sharedRegion is a memfd mapped MAP_SHARED: the allocator region first,
// then test-owned words (mailboxes, progress counters) from ctlOff on.
// Children get the memfd as fd 3 and map all of it.
type sharedRegion struct {
	file   *os.File
	mem    []byte
	ctlOff int
}

// newSharedRegion creates a memfd large enough for cfg plus ctlWords 64-bit
// control words, maps it and lays the allocator out. The test's cleanup
// unmaps and closes it (a memfd leaves nothing in /dev/shm).
func newSharedRegion(t testing.TB, cfg Config, ctlWords int) (*sharedRegion, *Allocator) {
	t.Helper()
	n, err := Size(cfg)
	if err != nil {
		t.Fatal(err)
	}
	total := n + ctlWords*8
	mem, f := proctest.Memfd(t, total)
	a, err := New(mem[:n], cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &sharedRegion{file: f, mem: mem, ctlOff: n}, a
}

// word returns control word i.
func (s *sharedRegion) word(i int) *atomic.Uint64 {
	return (*atomic.Uint64)(unsafe.Pointer(&s.mem[s.ctlOff+8*i]))
}

// command returns a child command that receives the region as fd 3.
func (s *sharedRegion) command(t testing.TB, name string, env ...string) *exec.Cmd {
	cmd := proctest.Command(t, name, append(env, fmt.Sprintf("ALLOCTEST_CTL=%d", s.ctlOff))...)
	cmd.ExtraFiles = []*os.File{s.file}
	return cmd
}

// childRegion maps the region passed as fd 3 and attaches to it with opts.
// It returns the handle and the control words.
func childRegion(opts ...Option) (*Allocator, *sharedRegion, error) {
	f := os.NewFile(3, "region")
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	mem, err := unix.Mmap(3, 0, int(st.Size()), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, nil, err
	}
	var ctl int
	if _, err := fmt.Sscan(os.Getenv("ALLOCTEST_CTL"), &ctl); err != nil {
		return nil, nil, fmt.Errorf("ALLOCTEST_CTL: %v", err)
	}
	a, err := Attach(mem[:ctl], opts...)
	if err != nil {
		return nil, nil, err
	}
	return a, &sharedRegion{file: f, mem: mem, ctlOff: ctl}, nil
}

func envInt(name string) int {
	var v int
	fmt.Sscan(os.Getenv(name), &v)
	return v
}

// child is a started child process whose exit the test can poll.
type child struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// startChild starts cmd (killed and reaped at the end of the test if still
// running) and waits for it in the background.
func startChild(t testing.TB, cmd *exec.Cmd) *child {
	t.Helper()
	proctest.Start(t, cmd)
	c := &child{cmd: cmd, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	return c
}

// exited reports whether the child has exited.
func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// wait waits for the child to exit and returns its error.
func (c *child) wait() error {
	<-c.done
	return c.err
}
