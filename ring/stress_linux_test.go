package ring

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/shmkit/shmkit/futex"
	"github.com/shmkit/shmkit/internal/proctest"
)

func init() {
	proctest.Register("byte-consume", childByteConsume)
	proctest.Register("park-consume", childParkConsume)
}

// stressN scales a stress count: the full count by default, a tenth with
// -short.
func stressN(full uint64) uint64 {
	if testing.Short() {
		return max(full/10, 1)
	}
	return full
}

// TestSPSCStress10M streams 10 million sequence-numbered messages from this
// process to a child through a 1024-slot ring, with the default
// spin-then-park waiting, and checks that all arrive complete and in order.
func TestSPSCStress10M(t *testing.T) {
	runSPSCAcross(t, "batch", 1024, stressN(10_000_000))
}

// TestByteRingAcrossProcesses streams variable-length records (0 bytes up
// to MaxRecord, with and without padding at the end) to a child.
func TestByteRingAcrossProcesses(t *testing.T) {
	for _, capacity := range []int{64, 128, 4096} {
		t.Run(fmt.Sprint(capacity), func(t *testing.T) {
			size, _ := ByteRingSize(capacity)
			a := newSharedArea(t, size)
			r, err := NewByteRing(a.ring(), capacity)
			if err != nil {
				t.Fatal(err)
			}
			n := stressN(100_000)
			cmd := a.start(t, "byte-consume")
			if err := produceBytes(context.Background(), r, n, r.MaxRecord()); err != nil {
				t.Fatal(err)
			}
			waitCmd(t, cmd)
			if got := a.count(0).Load(); got != n {
				t.Fatalf("child received %d records, want %d", got, n)
			}
		})
	}
}

func childByteConsume() int {
	a, err := childArea()
	if err != nil {
		return childFail("%v", err)
	}
	r, err := AttachByteRing(a.ring())
	if err != nil {
		return childFail("attach: %v", err)
	}
	n, err := consumeBytes(context.Background(), r, r.MaxRecord())
	a.count(0).Store(n)
	if err != nil {
		return childFail("consume: %v", err)
	}
	return 0
}

// waitWordChild is waitWord for children, which have no testing.TB.
func (a *sharedArea) waitWordChild(i int, want uint32) {
	for a.word(i).Load() < want {
		time.Sleep(20 * time.Microsecond)
	}
}

// TestParkWake100k makes a child consumer that always parks (futex.Park)
// receive 100k messages, each enqueued only once the consumer has announced
// itself asleep, so every message must wake a sleeper (or be seen by its
// re-check). A lost wake-up hangs the child; the test then fails on its
// generous per-message deadline instead of hanging.
func TestParkWake100k(t *testing.T) {
	size, _ := SPSCSize(16, 16)
	a := newSharedArea(t, size)
	r, err := NewSPSC(a.ring(), 16, 16)
	if err != nil {
		t.Fatal(err)
	}
	n := stressN(100_000)
	cmd := a.start(t, "park-consume")
	a.waitWord(t, wordReady, 1)
	buf := make([]byte, 16)
	futexWord := (*atomic.Uint32)(unsafe.Pointer(&r.c.notEmpty)) // seq: its first word (TestLayout)
	wakes, armedSeen := 0, 0
	for i := range n {
		// Wait (without a time limit on the consumer side) until the
		// consumer sleeps or is about to: its sleeper count is set.
		for spins := 0; r.c.notEmpty.Sleepers() == 0; spins++ {
			if spins%64 == 0 {
				runtime.Gosched()
			}
			if cmd.ProcessState != nil {
				t.Fatal("consumer exited")
			}
		}
		armed := uint32(0)
		if i%64 == 0 {
			// Now and then wait until the consumer has armed the futex
			// word (seq odd: it parks on that value): this message's
			// Notify must then make the wake system call, which moves
			// seq on (nothing else does: the child parks with no
			// re-check and a deadline a minute away).
			for armed = futexWord.Load(); armed&1 == 0; armed = futexWord.Load() {
				runtime.Gosched()
				if cmd.ProcessState != nil {
					t.Fatal("consumer exited")
				}
			}
		}
		if err := r.Producer().Enqueue(context.Background(), seqMsg(buf, i)); err != nil {
			t.Fatal(err)
		}
		if armed != 0 {
			armedSeen++
			if futexWord.Load() != armed {
				wakes++
			}
		}

	}
	r.Producer().Close()
	waitCmd(t, cmd)
	if got := a.count(0).Load(); got != n {
		t.Fatalf("consumer received %d, want %d", got, n)
	}
	// An enqueue that found the consumer armed wakes it, unless a spurious
	// wake-up (a signal) had it out of the futex and between its checks
	// just then: rare, and then its own re-check sees the message. So
	// nearly all of them, and never none.
	if wakes == 0 || wakes < armedSeen/2 {
		t.Fatalf("%d of %d enqueues that found the consumer armed woke it", wakes, armedSeen)
	}
	t.Logf("%d messages, each enqueued while the consumer was parked or parking; %d of %d found it armed and woke it", n, wakes, armedSeen)
}

func childParkConsume() int {
	a, err := childArea()
	if err != nil {
		return childFail("%v", err)
	}
	r, err := AttachSPSC(a.ring())
	if err != nil {
		return childFail("attach: %v", err)
	}
	// Recheck -1: a lost wake-up must hang (and fail on the deadline
	// below), not be rescued by the bounded park.
	r.opts.waiter = futex.Waiter{Strategy: futex.Park, Recheck: -1}
	a.word(wordReady).Add(1)
	buf := make([]byte, 16)
	var next uint64
	for {
		// A lost wake-up would park forever: the deadline turns it into a
		// failure. A minute per message is not a timing check.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		n, err := r.Consumer().Dequeue(ctx, buf)
		cancel()
		if err == ErrClosed {
			break
		}
		if err != nil {
			a.count(0).Store(next)
			return childFail("message %d: %v", next, err)
		}
		if err := checkSeq(buf[:n], next); err != nil {
			return childFail("%v", err)
		}
		next++
	}
	a.count(0).Store(next)
	return 0
}
