package ring

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/shmkit/shmkit/futex"
	"github.com/shmkit/shmkit/internal/proctest"
)

// Defect 6 of docs/security.md: participants of one ring that differ in
// fence mode. A child that cannot call membarrier (a seccomp filter) and a
// GOARCH=386 child each exchange parked round trips with this (amd64)
// process over two MPMC rings of one word, with the Waiter's re-check
// disabled: a lost wake-up leaves both sides asleep until the round's
// deadline, and the test fails naming the round.

const (
	pingPongRingSize = 4096
	envRounds        = "SHMKIT_FENCE_ROUNDS"
	envSeccomp       = "SHMKIT_FENCE_SECCOMP"
	roundDeadline    = 20 * time.Second
)

func init() { proctest.Register("fence-pingpong", childFencePingPong) }

// parkNoRecheck parks at once and never re-checks on its own: what a user
// may ask for where no wake-up can be lost. The child waits so; the parent
// spins first (spinNoRecheck), so it answers while the child is on its
// way into the futex: the window in which a wake-up can be lost.
var (
	parkNoRecheck = WithWaiter(futex.Waiter{Strategy: futex.Park, Recheck: -1})
	spinNoRecheck = WithWaiter(futex.Waiter{Strategy: futex.SpinThenPark, Recheck: -1})
)

// denyMembarrier installs, for every thread of this process, a seccomp
// filter that fails membarrier(2) with EPERM (the way a container profile
// that does not know it does).
func denyMembarrier() error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("PR_SET_NO_NEW_PRIVS: %w", err)
	}
	filter := []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 0}, // seccomp_data.nr
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 0, Jf: 1, K: unix.SYS_MEMBARRIER},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW},
	}
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	_, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&prog)))
	if e != 0 {
		return fmt.Errorf("seccomp: %w", e)
	}
	if _, _, e := unix.Syscall(unix.SYS_MEMBARRIER, membarrierQuery, 0, 0); e != unix.EPERM {
		return fmt.Errorf("membarrier after the filter: errno %v, want EPERM", e)
	}
	return nil
}

// childFencePingPong answers every word on the ping ring with the same
// word on the pong ring, until the last round. Under SHMKIT_FENCE_SECCOMP
// it first makes membarrier fail.
func childFencePingPong() int {
	if os.Getenv(envSeccomp) != "" {
		if err := denyMembarrier(); err != nil {
			return childFail("%v", err)
		}
	}
	a, err := childArea()
	if err != nil {
		return childFail("%v", err)
	}
	ping, err := AttachMPMC(a.ring()[:pingPongRingSize], parkNoRecheck)
	if err != nil {
		return childFail("attach ping: %v", err)
	}
	pong, err := AttachMPMC(a.ring()[pingPongRingSize:], parkNoRecheck)
	if err != nil {
		return childFail("attach pong: %v", err)
	}
	rounds := uint64(envInt(envRounds, 0))
	in, out := ping.Consumer(), pong.Producer()
	a.word(wordReady).Add(1)
	for i := uint64(1); i <= rounds; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), roundDeadline)
		v, err := in.DequeueU64(ctx)
		if err == nil && v != i {
			err = fmt.Errorf("got %d", v)
		}
		if err == nil {
			err = out.EnqueueU64(ctx, v)
		}
		cancel()
		if err != nil {
			return childFail("round %d (canFence %v): %v", i, canFence.Load(), err)
		}
	}
	a.word(wordDone).Add(1)
	return 0
}

// fenceRounds is how many round trips a run makes: SHMKIT_FENCE_ROUNDS,
// else 20 000 (3 000 with -short). Each round parks both sides.
func fenceRounds() int {
	def := 20000
	if testing.Short() {
		def = 3000
	}
	return envInt(envRounds, def)
}

// pingPong runs rounds parked round trips with the child started by
// start (given the command's environment) and returns the ring's fence
// mode at the end.
func pingPong(t *testing.T, rounds int, start func(env ...string) *exec.Cmd, a *sharedArea) uint32 {
	t.Helper()
	ping, err := NewMPMC(a.ring()[:pingPongRingSize], 8, 8, spinNoRecheck)
	if err != nil {
		t.Fatal(err)
	}
	pong, err := NewMPMC(a.ring()[pingPongRingSize:], 8, 8, spinNoRecheck)
	if err != nil {
		t.Fatal(err)
	}
	cmd := start(fmt.Sprintf("%s=%d", envRounds, rounds))
	a.waitWord(t, wordReady, 1)
	out, in := ping.Producer(), pong.Consumer()
	began := time.Now()
	var slowest time.Duration
	for i := uint64(1); i <= uint64(rounds); i++ {
		t0 := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), roundDeadline)
		err := out.EnqueueU64(ctx, i)
		var v uint64
		if err == nil {
			v, err = in.DequeueU64(ctx)
		}
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("round %d of %d: no answer within %v: a wake-up was lost (fence mode %d)", i, rounds, roundDeadline, ping.c.hdr.fence.Load())
		}
		if err != nil || v != i {
			t.Fatalf("round %d: got %d, %v", i, v, err)
		}
		slowest = max(slowest, time.Since(t0))
	}
	waitCmd(t, cmd)
	el := time.Since(began)
	mode := ping.c.hdr.fence.Load()
	// Each wake of a parked waiter moves the Event's seq word by 2 (armed
	// odd by the waiter, back to even by the waker).
	seqOff, _ := eventWords(t)
	wakes := func(r *MPMC) uint32 {
		return (*atomic.Uint32)(unsafe.Pointer(uintptr(unsafe.Pointer(&r.c.notEmpty))+uintptr(seqOff))).Load() / 2
	}
	t.Logf("%d round trips in %v (%.1f µs each, slowest %v), none lost; the child was woken from the futex %d times, this process %d; fence mode of the ring %d, this process canFence=%v fastPublish=%v",
		rounds, el.Round(time.Millisecond), float64(el.Microseconds())/float64(rounds), slowest.Round(time.Microsecond),
		wakes(ping), wakes(pong), mode, canFence.Load(), fastPublish)
	return mode
}

// TestFenceModeSeccompChild: the child cannot call membarrier, so it
// raises both rings to strict at attach; this process completes the
// hand-over and from then on barriers after its plain stores.
func TestFenceModeSeccompChild(t *testing.T) {
	if os.Getenv(proctest.EnvExecWrapper) != "" {
		t.Skip("skipped: the children run under an emulator (qemu-user implements no seccomp)")
	}
	if !registerFence() {
		t.Skip("skipped: membarrier unavailable here, so every process publishes with XCHG already")
	}
	a := newSharedArea(t, 2*pingPongRingSize)
	mode := pingPong(t, fenceRounds(), func(env ...string) *exec.Cmd {
		return a.start(t, "fence-pingpong", append(env, envSeccomp+"=1")...)
	}, a)
	if mode != fenceStrict {
		t.Errorf("fence mode %d after a participant that cannot fence attached, want %d (strict)", mode, fenceStrict)
	}
}

// TestFenceMode386Child: a GOARCH=386 build of this test publishes with
// XCHG (no plain release store on 386) but can call membarrier, so it
// fences before it parks and the ring stays in fast mode.
func TestFenceMode386Child(t *testing.T) {
	if runtime.GOARCH != "amd64" || runtime.GOOS != "linux" {
		t.Skip("skipped: needs linux/amd64 to run a 386 child beside it")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	if _, err := os.Stat(gobin); err != nil {
		t.Skip("skipped: no go command to build the GOARCH=386 child")
	}
	bin := filepath.Join(t.TempDir(), "ring386.test")
	build := exec.Command(gobin, "test", "-c", "-o", bin, ".")
	build.Env = append(os.Environ(), "GOARCH=386", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("GOARCH=386 go test -c: %v\n%s", err, out)
	}
	a := newSharedArea(t, 2*pingPongRingSize)
	mode := pingPong(t, fenceRounds(), func(env ...string) *exec.Cmd {
		cmd := exec.Command(bin, "-test.run=^$")
		cmd.Env = append(append(os.Environ(), "SHMKIT_CHILD=fence-pingpong"), env...)
		cmd.ExtraFiles = []*os.File{a.f}
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Start(); err != nil {
			if errors.Is(err, unix.ENOEXEC) {
				t.Skip("skipped: this kernel does not run 386 binaries")
			}
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if cmd.ProcessState == nil {
				cmd.Process.Kill()
				cmd.Wait()
			}
		})
		return cmd
	}, a)
	if mode != fenceFast {
		t.Errorf("fence mode %d with a 386 child that can fence, want %d (fast)", mode, fenceFast)
	}
}

// storeBufferRounds runs the store-buffer litmus test of
// TestAsymmetricFence with the waiter making no fence (a participant that
// cannot call membarrier) against a publisher that publishes with
// publish64 and decides with mayWake and mustNotify, on a ring in fence mode mode, and
// returns how many rounds lost the wake-up.
func storeBufferRounds(t *testing.T, mode uint32, rounds int) int {
	type pad [cacheLine]byte
	var sh struct {
		word  atomic.Uint64
		_     pad
		event [cacheLine]byte // a futex.Event at its start
		_     pad
		go1   atomic.Uint64
		go2   atomic.Uint64
	}
	_, sleepersOff := eventWords(t)
	e, err := futex.EventAt(sh.event[:])
	if err != nil {
		t.Fatal(err)
	}
	sleepers := (*atomic.Uint32)(unsafe.Pointer(&sh.event[sleepersOff]))
	var c control
	c.hdr.fence.Store(mode)
	saw := make([]bool, rounds+1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := uint64(1); i <= uint64(rounds); i++ {
			sh.go1.Store(i)
			for sh.go2.Load() < i {
			}
			publish64(&sh.word, i)
			saw[i] = c.mayWake(e) && c.mustNotify(e)
		}
	}()
	lost := 0
	for i := uint64(1); i <= uint64(rounds); i++ {
		sh.go2.Store(i)
		for sh.go1.Load() < i {
		}
		sleepers.Add(1) // no sleeperFence: this waiter cannot make one
		w := sh.word.Load()
		for sh.go1.Load() < i+1 && i < uint64(rounds) {
		}
		if i == uint64(rounds) {
			wg.Wait()
		}
		if w < i && !saw[i] {
			lost++
		}
		sleepers.Add(^uint32(0))
	}
	wg.Wait()
	return lost
}

// TestStrictModeOrders is the reason for the fence word, in one process:
// a waiter that makes no fence loses wake-ups against plain release
// stores (fast mode; logged, as the hardware decides how often) and none
// once the ring says strict, where publish64 follows its store with a
// full barrier.
func TestStrictModeOrders(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		t.Skip("skipped: needs two Ps")
	}
	if !registerFence() || !fastPublish {
		t.Skip("skipped: publications are sequentially consistent here; nothing to order")
	}
	rounds := 2000
	if testing.Short() {
		rounds = 500
	}
	fast := storeBufferRounds(t, fenceFast, rounds)
	strict := storeBufferRounds(t, fenceStrict, rounds)
	t.Logf("rounds that lost the wake-up with a waiter that cannot fence: fast mode %d of %d, strict mode %d of %d", fast, rounds, strict, rounds)
	if strict != 0 {
		t.Fatalf("strict mode lost %d wake-ups", strict)
	}
}

// withoutFence makes this process one that cannot fence (membarrier fails
// with EPERM, as under a seccomp filter) until the test ends.
func withoutFence(t *testing.T) {
	registerFence()
	old, could := membarrier, canFence.Load()
	membarrier = func(int) (uintptr, unix.Errno) { return 0, unix.EPERM }
	t.Cleanup(func() { membarrier = old; canFence.Store(could) })
}

// TestFenceModeTransitions walks the header word through its states in
// one process: a failed membarrier is checked (the process stops counting
// as one that can fence) and raises the ring; a participant that can
// fence completes the hand-over on its next publication.
func TestFenceModeTransitions(t *testing.T) {
	if !registerFence() {
		t.Skip("skipped: membarrier unavailable here")
	}
	var c control
	var w atomic.Uint64
	var e futex.Event
	withoutFence(t)
	if sleeperFence() {
		t.Fatal("sleeperFence reported success when membarrier failed")
	}
	if canFence.Load() {
		t.Fatal("a failed membarrier left canFence set")
	}
	c.agreeFence()
	if f := c.hdr.fence.Load(); f != fencePending {
		t.Fatalf("fence word %d after a participant that cannot fence attached, want %d", f, fencePending)
	}
	publish64(&w, 1)
	c.wake(&e) // cannot hand over: stays pending
	if f := c.hdr.fence.Load(); f != fencePending {
		t.Fatalf("fence word %d after a publication by a process that cannot fence, want %d", f, fencePending)
	}
	membarrier = func(cmd int) (uintptr, unix.Errno) {
		r, _, e := unix.Syscall(unix.SYS_MEMBARRIER, uintptr(cmd), 0, 0)
		return r, e
	}
	canFence.Store(true)
	publish64(&w, 2)
	c.wake(&e)
	if f := c.hdr.fence.Load(); f != fenceStrict && fastPublish {
		t.Fatalf("fence word %d after a publication by a process that can fence, want %d", f, fenceStrict)
	}
	c.agreeFence()
	if f := c.hdr.fence.Load(); f != fenceStrict && fastPublish {
		t.Fatalf("fence word went back to %d", f)
	}
}

// TestPendingBoundsRecheck: while a ring's hand-over is pending and this
// process cannot complete it, a wait whose Waiter disables the re-check
// still re-checks (every handOverRecheck): a condition that becomes true
// without a Notify (the lost wake-up the hand-over guards against) is
// seen within a bounded time.
func TestPendingBoundsRecheck(t *testing.T) {
	withoutFence(t)
	canFence.Store(false)
	var c control
	c.hdr.fence.Store(fencePending)
	var e futex.Event
	var ready atomic.Bool
	o := options{waiter: futex.Waiter{Strategy: futex.Park, Recheck: -1}}
	go func() { time.Sleep(5 * time.Millisecond); ready.Store(true) }() // no Notify: a lost wake-up
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	if err := o.wait(ctx, &c, &e, ready.Load); err != nil {
		t.Fatalf("wait: %v (the re-check was disabled while the hand-over was pending)", err)
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Fatalf("wait took %v", el)
	}
}

// BenchmarkWakeCheck is the cost the fence word adds to a publication in
// fast mode: publish64 and the wake-up decision, with the sleeper check
// alone (as before the fence word) and with mayWake (sleeper count | fence
// word). Nobody sleeps, so neither calls Notify.
func BenchmarkWakeCheck(b *testing.B) {
	registerFence()
	var c control
	var w atomic.Uint64
	e := &c.notEmpty
	b.Run("sleepers", func(b *testing.B) {
		for i := range b.N {
			publish64(&w, uint64(i))
			if e.Sleepers() != 0 {
				e.Notify()
			}
		}
	})
	b.Run("mayWake", func(b *testing.B) {
		for i := range b.N {
			publish64(&w, uint64(i))
			if c.mayWake(e) {
				c.wake(e)
			}
		}
	})
}
