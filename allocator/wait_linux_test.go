package allocator

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/shmkit/shmkit/futex"
	"golang.org/x/sys/unix"
)

func init() { testChildren["waiter"] = waiterChild }

// Control words of the cross-process AllocContext test.
const (
	waitGot = 0 // child stores the Ref it got
)

// TestAllocContextCrossProcess parks a child in AllocContext on an empty
// class and checks that a Free in the parent wakes it with that chunk.
func TestAllocContextCrossProcess(t *testing.T) {
	s, a := newSharedRegion(t, Config{Classes: []Class{{64, 2}}}, 1)
	r1, _ := a.Alloc(1)
	r2, _ := a.Alloc(1)
	w := startChild(t, s.command(t, "waiter"))
	// The child parks at once (futex.Park): wait until it sleeps on the
	// class's event, so the Free below must wake it across processes.
	ev := a.classes[0].event
	waitFor(t, "the child to park", func() bool { return ev.Sleepers() == 1 || w.exited() })
	if w.exited() {
		t.Fatalf("waiter exited before parking: %v", w.wait())
	}
	if err := a.Free(r2); err != nil {
		t.Fatal(err)
	}
	if err := w.wait(); err != nil {
		t.Fatalf("waiter: %v", err)
	}
	if n := ev.Sleepers(); n != 0 {
		t.Fatalf("%d sleepers left after the wake", n)
	}
	got := Ref(s.word(waitGot).Load())
	if got.Offset() != r2.Offset() {
		t.Fatalf("waiter got %v, freed %v", got, r2)
	}
	_ = a.Free(r1)
	if err := a.Free(got); err != nil {
		t.Fatal(err)
	}
	if st := a.Stats()[0]; st.Failed != 0 {
		t.Fatalf("stats %+v", st)
	}
	mustWhole(t, a)
}

func waiterChild() int {
	a, s, err := childRegion(WithWaiter(futex.Waiter{Strategy: futex.Park}))
	if err != nil {
		fmt.Fprintln(os.Stderr, "waiter:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := a.AllocContext(ctx, 10)
	if err != nil {
		fmt.Fprintln(os.Stderr, "waiter:", err)
		return 1
	}
	s.word(waitGot).Store(uint64(r))
	return 0
}

// TestReadStatsReadOnly reads the counters through a second, read-only
// mapping of the region, as shmctl inspect does.
func TestReadStatsReadOnly(t *testing.T) {
	s, a := newSharedRegion(t, stressConfig, 0)
	ro, err := unix.Mmap(int(s.file.Fd()), 0, len(s.mem), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(ro)
	r, _ := a.Alloc(200)
	_, _ = a.Alloc(3000)
	st, err := ReadStats(ro)
	if err != nil {
		t.Fatal(err)
	}
	if st[1].InUse != 1 || st[3].InUse != 1 || st[1].HighWater != 1 || st[0].Free != st[0].Total {
		t.Fatalf("stats %+v", st)
	}
	_ = a.Free(r)
	if st, _ := ReadStats(ro); st[1].InUse != 0 || st[1].HighWater != 1 {
		t.Fatalf("stats after free %+v", st[1])
	}
}
