package allocator

import (
	"errors"
	"testing"
	"time"
	"unsafe"
)

// alignedMem returns n zeroed bytes of ordinary memory starting at a 64-byte
// aligned address.
func alignedMem(n int) []byte {
	b := make([]byte, n+Align)
	off := (Align - int(uintptr(unsafe.Pointer(unsafe.SliceData(b)))%Align)) % Align
	return b[off : off+n : off+n]
}

// newTest lays out a region for cfg in ordinary memory.
func newTest(t testing.TB, cfg Config) *Allocator {
	t.Helper()
	n, err := Size(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(alignedMem(n), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// smallConfig has a few small classes, so tests can empty them.
var smallConfig = Config{Classes: []Class{{64, 8}, {128, 4}, {1024, 2}}}

// mustWhole fails t unless every class is consistent and entirely free,
// and the in-use counters agree.
func mustWhole(t testing.TB, a *Allocator) {
	t.Helper()
	mustWholeLists(t, a)
	for i, c := range a.classes {
		if n := int64(c.inUse.Load()); n != 0 {
			t.Fatalf("class %d: in-use counter %d with every chunk free", i, n)
		}
	}
}

// mustWholeLists is mustWhole without the in-use counters (which a
// participant killed between a state change and its counter update leaves
// off by one).
func mustWholeLists(t testing.TB, a *Allocator) {
	t.Helper()
	cc, err := a.Check()
	if err != nil {
		t.Fatalf("check: %v", err)
	}
	for i, c := range cc {
		if c.InUse != 0 || c.InFlight != 0 || c.Free != c.Total || c.Listed != c.Total {
			t.Fatalf("class %d not whole: %+v", i, c)
		}
	}
	for i, s := range a.Stats() {
		if s.InUse != 0 || s.InFlight != 0 || s.Free != s.Total {
			t.Fatalf("class %d stats not whole: %+v", i, s)
		}
	}
}

// withOwner returns a handle for participant id (known to be in range) on
// a's region, with a's other options.
func withOwner(t testing.TB, a *Allocator, id uint32, opts ...Option) *Allocator {
	t.Helper()
	p, err := a.Handle(append([]Option{WithOwner(id)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// wantErr fails t unless err wraps target.
func wantErr(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("got error %v, want %v", err, target)
	}
}

// waitFor polls cond, an observable fact of shared state or of a child's
// life, until it holds; it fails t after a minute (a hung test, not a
// timing assertion).
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited a minute for %s", what)
		}
		time.Sleep(20 * time.Microsecond)
	}
}
