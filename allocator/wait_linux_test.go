package allocator

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"
)

func init() { testChildren["waiter"] = waiterChild }

// Control words of the cross-process AllocContext test.
const (
	waitStarted = 0 // child sets 1 just before AllocContext
	waitGot     = 1 // child stores the Ref it got
)

// TestAllocContextCrossProcess parks a child in AllocContext on an empty
// class and checks that a Free in the parent wakes it with that chunk.
func TestAllocContextCrossProcess(t *testing.T) {
	s, a := newSharedRegion(t, Config{Classes: []Class{{64, 2}}}, 2)
	r1, _ := a.Alloc(1)
	r2, _ := a.Alloc(1)
	w := startChild(t, s.command(t, "waiter"))
	for s.word(waitStarted).Load() == 0 && !w.exited() {
		time.Sleep(100 * time.Microsecond)
	}
	// Wait until the child sleeps on the class's event (it may also still be
	// spinning; the test passes either way, the wake-up is then not needed).
	for a.classes[0].event.Sleepers() == 0 && !w.exited() {
		time.Sleep(100 * time.Microsecond)
	}
	if err := a.Free(r2); err != nil {
		t.Fatal(err)
	}
	if err := w.wait(); err != nil {
		t.Fatalf("waiter: %v", err)
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
	a, s, err := childRegion()
	if err != nil {
		fmt.Fprintln(os.Stderr, "waiter:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s.word(waitStarted).Store(1)
	r, err := a.AllocContext(ctx, 10)
	if err != nil {
		fmt.Fprintln(os.Stderr, "waiter:", err)
		return 1
	}
	s.word(waitGot).Store(uint64(r))
	return 0
}
