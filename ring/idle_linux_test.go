package ring

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/proctest"
)

func init() { proctest.Register("idle-consume", childIdleConsume) }

// cpuTicks returns the user+system CPU time of process pid in clock ticks
// (from /proc/PID/stat).
func cpuTicks(t *testing.T, pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the ")" that ends the command name: state is field 3,
	// utime 14 and stime 15.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	ut, err1 := strconv.Atoi(f[11])
	st, err2 := strconv.Atoi(f[12])
	if err1 != nil || err2 != nil {
		t.Fatalf("parse %s: %v %v", b, err1, err2)
	}
	return ut + st
}

// TestParkedConsumerIdle checks that a consumer blocked in Dequeue with the
// default waiter burns no CPU once parked: over 300 ms of idling it may use
// at most 3 clock ticks (30 ms at the usual 100 Hz; a spinning consumer
// would use the whole 300 ms). The bound is a factor of ten, not a timing
// check, and the test logs what it saw.
func TestParkedConsumerIdle(t *testing.T) {
	size, _ := SPSCSize(4, 8)
	a := newSharedArea(t, size)
	r, err := NewSPSC(a.ring(), 4, 8)
	if err != nil {
		t.Fatal(err)
	}
	cmd := a.start(t, "idle-consume")
	a.waitWord(t, wordReady, 1)
	// A waiter counts itself a sleeper only in the park, after its spin
	// phase: from here on the consumer is parked (or about to be).
	for r.c.notEmpty.Sleepers() == 0 {
		time.Sleep(time.Millisecond) // polling an observable fact
	}
	before := cpuTicks(t, cmd.Process.Pid)
	time.Sleep(300 * time.Millisecond)
	after := cpuTicks(t, cmd.Process.Pid)
	if err := r.Producer().Enqueue(context.Background(), []byte("wake")); err != nil {
		t.Fatal(err)
	}
	waitCmd(t, cmd)
	t.Logf("parked consumer used %d clock ticks in 300 ms idle", after-before)
	if after-before > 3 {
		t.Errorf("parked consumer used %d clock ticks of CPU in 300 ms idle", after-before)
	}
}

func childIdleConsume() int {
	a, err := childArea()
	if err != nil {
		return childFail("%v", err)
	}
	r, err := AttachSPSC(a.ring())
	if err != nil {
		return childFail("%v", err)
	}
	a.word(wordReady).Add(1)
	buf := make([]byte, 8)
	n, err := r.Consumer().Dequeue(context.Background(), buf)
	if err != nil || string(buf[:n]) != "wake" {
		return childFail("dequeue: %q %v", buf[:n], err)
	}
	return 0
}
