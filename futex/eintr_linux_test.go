package futex

import (
	"errors"
	"os"
	"os/signal"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestWaitEINTR interrupts a thread asleep in a timed futex wait with a
// stream of signals aimed at that thread: the wait must neither return
// early nor fail, and must still time out.
func TestWaitEINTR(t *testing.T) {
	sigs := make(chan os.Signal, 1024)
	signal.Notify(sigs, syscall.SIGUSR1)
	defer signal.Stop(sigs)

	var w atomic.Uint32
	tid := make(chan int, 1)
	res := make(chan error, 1)
	const d = 200 * time.Millisecond
	var took time.Duration
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		tid <- unix.Gettid()
		start := time.Now()
		err := Wait(&w, 0, d)
		took = time.Since(start)
		res <- err
	}()
	target := <-tid
	pid := os.Getpid()
	sent := 0
	var err error
loop:
	for {
		select {
		case err = <-res:
			break loop
		default:
		}
		if e := unix.Tgkill(pid, target, unix.SIGUSR1); e == nil {
			sent++
		}
		time.Sleep(2 * time.Millisecond)
	}
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("interrupted Wait = %v, want ErrTimeout", err)
	}
	if took < d {
		t.Fatalf("interrupted Wait returned after %v, before its %v time-out", took, d)
	}
	if sent == 0 {
		t.Fatal("no signal was delivered")
	}
	t.Logf("%d signals sent; wait took %v", sent, took)
}
