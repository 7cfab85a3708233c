package ring

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/shmkit/shmkit/futex"
	"github.com/shmkit/shmkit/internal/proctest"
)

func init() {
	proctest.Register("spsc-consume", childSPSCConsume)
}

// childSPSCConsume attaches to the SPSC ring in the shared area, receives
// sequence-numbered messages in RING_MODE until the ring is closed and
// drained, checks each and stores the count in result word 0.
func childSPSCConsume() int {
	a, err := childArea()
	if err != nil {
		return childFail("%v", err)
	}
	r, err := AttachSPSC(a.ring())
	if err != nil {
		return childFail("attach: %v", err)
	}
	if s, err := futex.ParseStrategy(os.Getenv("RING_WAIT")); err == nil {
		r.opts.waiter = futex.Waiter{Strategy: s}
	}
	a.word(wordReady).Add(1)
	next, err := consumeSeq(context.Background(), r, os.Getenv("RING_MODE"), 0)
	a.count(0).Store(next)
	if err != nil {
		return childFail("consume: %v", err)
	}
	a.word(wordDone).Add(1)
	return 0
}

// runSPSCAcross streams n sequence-numbered messages from this process to a
// child consumer through a ring of the given capacity and checks that all
// arrive, complete and in order.
func runSPSCAcross(t *testing.T, mode string, capacity int, n uint64) {
	size, err := SPSCSize(capacity, 16)
	if err != nil {
		t.Fatal(err)
	}
	a := newSharedArea(t, size)
	r, err := NewSPSC(a.ring(), capacity, 16)
	if err != nil {
		t.Fatal(err)
	}
	cmd := a.start(t, "spsc-consume", "RING_MODE="+mode)
	if err := produceSeq(context.Background(), r, mode, 0, n); err != nil {
		t.Fatal(err)
	}
	waitCmd(t, cmd)
	if got := a.count(0).Load(); got != n {
		t.Fatalf("consumer received %d messages, want %d", got, n)
	}
}

func TestSPSCAcrossProcesses(t *testing.T) {
	for _, mode := range []string{"copy", "batch", "zerocopy"} {
		for _, capacity := range []int{1, 2, 1024} {
			t.Run(fmt.Sprintf("%s/cap%d", mode, capacity), func(t *testing.T) {
				runSPSCAcross(t, mode, capacity, 20000)
			})
		}
	}
}
