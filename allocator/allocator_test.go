package allocator

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/shmkit/shmkit/futex"
)

func TestSizeAndConfig(t *testing.T) {
	n, err := Size(Config{})
	if err != nil {
		t.Fatal(err)
	}
	// 15 classes of 16 chunks: payload 16*(2^21-64) plus metadata.
	payload := 16 * (1<<21 - 64)
	meta := headerSize + 15*classDescSize + 15*16*chunkMetaSize
	if n != payload+meta {
		t.Fatalf("Size(default) = %d, want %d", n, payload+meta)
	}
	if got := len(DefaultClasses(3)); got != 15 {
		t.Fatalf("%d default classes, want 15", got)
	}
	bad := []Config{
		{Classes: []Class{}},
		{Classes: []Class{{0, 1}}},
		{Classes: []Class{{100, 1}}},
		{Classes: []Class{{64, 0}}},
		{Classes: []Class{{128, 1}, {64, 1}}},
		{Classes: []Class{{64, 1}, {64, 1}}},
		{Classes: []Class{{MaxChunkSize + Align, 1}}},
		{Classes: []Class{{MaxChunkSize, MaxChunks}}},
		{ChunksPerClass: -1},
	}
	for _, c := range bad {
		if _, err := Size(c); !errors.Is(err, ErrConfig) {
			t.Errorf("Size(%+v) = %v, want ErrConfig", c, err)
		}
	}
}

func TestOverheadFor4KiBChunks(t *testing.T) {
	for _, count := range []int{16, 256, 4096} {
		cfg := Config{Classes: []Class{{4096, count}}}
		o, err := Overhead(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("4 KiB chunks x %d: metadata overhead %.3f%%", count, 100*o)
		if o > 0.02 {
			t.Fatalf("overhead %.3f%% > 2%%", 100*o)
		}
	}
}

func TestNewChecksRegion(t *testing.T) {
	n, _ := Size(smallConfig)
	_, err := New(alignedMem(n-1), smallConfig)
	wantErr(t, err, ErrTooSmall)
	_, err = New(alignedMem(n + 64)[1:], smallConfig)
	wantErr(t, err, ErrUnaligned)
	_, err = Attach(alignedMem(n))
	wantErr(t, err, ErrBadMagic)
}

func TestAllocBytesFree(t *testing.T) {
	a := newTest(t, smallConfig)
	for _, n := range []int{0, 1, 64, 65, 128, 129, 1024} {
		r, err := a.Alloc(n)
		if err != nil {
			t.Fatalf("alloc %d: %v", n, err)
		}
		b, err := a.Bytes(r)
		if err != nil {
			t.Fatal(err)
		}
		want := 64
		switch {
		case n > 128:
			want = 1024
		case n > 64:
			want = 128
		}
		if len(b) != n || cap(b) != want {
			t.Fatalf("alloc %d: len %d cap %d, want %d/%d", n, len(b), cap(b), n, want)
		}
		for i := range b[:cap(b)] {
			b[:cap(b)][i] = byte(i)
		}
		if err := a.SetLen(r, want); err != nil {
			t.Fatal(err)
		}
		if l, _ := a.Len(r); l != want {
			t.Fatalf("len %d, want %d", l, want)
		}
		wantErr(t, a.SetLen(r, want+1), ErrTooLarge)
		if err := a.Free(r); err != nil {
			t.Fatal(err)
		}
		wantErr(t, a.Free(r), ErrDoubleFree)
		wantErr(t, a.Release(r), ErrDoubleFree)
		_, err = a.Bytes(r)
		wantErr(t, err, ErrDoubleFree)
	}
	_, err := a.Alloc(1025)
	wantErr(t, err, ErrTooLarge)
	_, err = a.Alloc(-1)
	wantErr(t, err, ErrTooLarge)
	mustWhole(t, a)
}

func TestBadRefs(t *testing.T) {
	a := newTest(t, smallConfig)
	r, err := a.Alloc(100)
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, a.Free(0), ErrBadRef)
	wantErr(t, a.Free(makeRef(uint64(a.Size()), 0)), ErrBadRef)       // past the end
	wantErr(t, a.Free(makeRef(r.Offset()+64, r.Gen())), ErrBadRef)    // inside a 128-byte chunk
	wantErr(t, a.Free(makeRef(r.Offset(), r.Gen()+1)), ErrBadRef)     // future generation
	wantErr(t, a.Retain(makeRef(r.Offset()+128, r.Gen())), ErrBadRef) // next chunk, free
	if err := a.Free(r); err != nil {
		t.Fatal(err)
	}
	// Reallocate the same chunk (the list is LIFO): the old ref is stale.
	r2, err := a.Alloc(100)
	if err != nil {
		t.Fatal(err)
	}
	if r2.Offset() != r.Offset() || r2.Gen() == r.Gen() {
		t.Fatalf("realloc: %v after %v", r2, r)
	}
	wantErr(t, a.Free(r), ErrBadRef)
	_, err = a.Bytes(r)
	wantErr(t, err, ErrBadRef)
	if err := a.Free(r2); err != nil {
		t.Fatal(err)
	}
	mustWhole(t, a)
}

func TestNoFallbackToLargerClass(t *testing.T) {
	a := newTest(t, smallConfig)
	var refs []Ref
	for range 8 {
		r, err := a.Alloc(10)
		if err != nil {
			t.Fatal(err)
		}
		refs = append(refs, r)
	}
	_, err := a.Alloc(10)
	wantErr(t, err, ErrNoMemory)
	_, err = a.Alloc(64)
	wantErr(t, err, ErrNoMemory)
	st := a.Stats()
	if st[0].Failed != 2 || st[0].InUse != 8 || st[0].Free != 0 || st[0].HighWater != 8 || st[1].InUse != 0 {
		t.Fatalf("stats %+v", st)
	}
	seen := map[uint64]bool{}
	for _, r := range refs {
		if seen[r.Offset()] {
			t.Fatalf("chunk %v handed out twice", r)
		}
		seen[r.Offset()] = true
		if err := a.Release(r); err != nil {
			t.Fatal(err)
		}
	}
	if st := a.Stats(); st[0].HighWater != 8 {
		t.Fatalf("high water %d", st[0].HighWater)
	}
	mustWhole(t, a)
}

func TestRetainRelease(t *testing.T) {
	a := newTest(t, smallConfig)
	r, _ := a.Alloc(8)
	for range 3 {
		if err := a.Retain(r); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := a.RefCount(r); n != 4 {
		t.Fatalf("refcount %d", n)
	}
	for i := range 4 {
		if err := a.Release(r); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Bytes(r); (err == nil) != (i < 3) {
			t.Fatalf("release %d: bytes err %v", i, err)
		}
	}
	wantErr(t, a.Release(r), ErrDoubleFree)
	wantErr(t, a.Retain(r), ErrDoubleFree)
	// Free drops every reference at once.
	r, _ = a.Alloc(8)
	_ = a.Retain(r)
	if err := a.Free(r); err != nil {
		t.Fatal(err)
	}
	wantErr(t, a.Release(r), ErrDoubleFree)
	mustWhole(t, a)
}

func TestAllocContext(t *testing.T) {
	a := newTest(t, smallConfig)
	r1, _ := a.Alloc(1000)
	r2, _ := a.Alloc(1000)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	_, err := a.AllocContext(ctx, 1000)
	cancel()
	wantErr(t, err, ErrNoMemory)
	wantErr(t, err, context.DeadlineExceeded)
	if f := a.Stats()[2].Failed; f != 1 {
		t.Fatalf("failed %d", f)
	}
	// A waiter that parks at once: the test sees it asleep on the class's
	// event before the Free that must wake it.
	parker := withOwner(t, a, 2, WithWaiter(futex.Waiter{Strategy: futex.Park}))
	ev := a.classes[2].event
	got := make(chan Ref)
	go func() {
		r, err := parker.AllocContext(context.Background(), 1000)
		if err != nil {
			t.Error(err)
		}
		got <- r
	}()
	waitFor(t, "the waiter to park", func() bool { return ev.Sleepers() == 1 })
	if err := a.Free(r1); err != nil {
		t.Fatal(err)
	}
	r3 := <-got
	if n := ev.Sleepers(); n != 0 {
		t.Fatalf("%d sleepers left after the wake", n)
	}
	if r3.Offset() != r1.Offset() {
		t.Fatalf("woke with %v, freed %v", r3, r1)
	}
	_ = a.Free(r2)
	_ = a.Free(r3)
	mustWhole(t, a)
}

func TestOwnersAndReclaim(t *testing.T) {
	a := newTest(t, smallConfig)
	p1, p2 := withOwner(t, a, 1), withOwner(t, a, 2)
	if _, err := a.Handle(WithOwner(MaxOwner + 1)); !errors.Is(err, ErrConfig) {
		t.Fatalf("WithOwner(MaxOwner+1): %v", err)
	}
	if _, err := a.Handle(WithCache(-1)); !errors.Is(err, ErrConfig) {
		t.Fatalf("WithCache(-1): %v", err)
	}
	var keep []Ref
	for range 3 {
		r, _ := p1.Alloc(10)
		_ = p1.Retain(r) // references do not protect from reclaim
		r2, _ := p2.Alloc(10)
		keep = append(keep, r2)
	}
	moved, _ := p1.Alloc(500)
	if err := p1.SetOwner(moved, 2); err != nil {
		t.Fatal(err)
	}
	if id, _ := a.Owner(moved); id != 2 {
		t.Fatalf("owner %d", id)
	}
	n, err := a.ReclaimOwner(1)
	if err != nil || n != 3 {
		t.Fatalf("reclaim 1: %d, %v", n, err)
	}
	if st := a.Stats(); st[0].InUse != 3 || st[2].InUse != 1 {
		t.Fatalf("stats after reclaim %+v", st)
	}
	n, err = a.ReclaimOwner(2)
	if err != nil || n != 4 {
		t.Fatalf("reclaim 2: %d, %v", n, err)
	}
	for _, r := range keep {
		wantErr(t, p2.Free(r), ErrDoubleFree)
	}
	mustWhole(t, a)
}

func TestAttachAndReadStats(t *testing.T) {
	a := newTest(t, smallConfig)
	r, _ := a.Alloc(100)
	b, err := Attach(a.mem)
	if err != nil {
		t.Fatal(err)
	}
	bb, _ := b.Bytes(r)
	if len(bb) != 100 {
		t.Fatalf("len %d", len(bb))
	}
	st, err := ReadStats(a.mem)
	if err != nil {
		t.Fatal(err)
	}
	if st[1].InUse != 1 || st[1].Size != 128 || st[1].Total != 4 {
		t.Fatalf("stats %+v", st)
	}
	_ = b.Free(r)

	corrupt := func(off int, v byte) []byte {
		m := alignedMem(len(a.mem))
		copy(m, a.mem)
		m[off] ^= v
		return m
	}
	cases := []struct {
		off  int
		v    byte
		want error
	}{
		{hdrMagic, 1, ErrBadMagic},
		{hdrVersion, 2, ErrVersion},
		{hdrChecksum, 1, ErrCorrupt},
		{hdrChecksum + 3, 0x80, ErrCorrupt},
		{hdrClassOff + 7, 1, ErrCorrupt},
		{classTableOff + cdCount + 1, 1, ErrCorrupt},
		{hdrSize, 64, ErrCorrupt},
		{hdrClasses, 1, ErrCorrupt},
		{hdrClasses + 3, 1, ErrCorrupt},
		{hdrMetaSize, 8, ErrCorrupt},
		{hdrDescSize, 8, ErrCorrupt},
		{classTableOff + classDescSize + cdSize, 64, ErrCorrupt},
		{classTableOff + classDescSize + cdSize + 7, 1, ErrCorrupt},
		{classTableOff + cdCount, 1, ErrCorrupt},
		{classTableOff + 2*classDescSize + cdDataOff, 64, ErrCorrupt},
		{classTableOff + cdMetaOff, 64, ErrCorrupt},
	}
	for _, c := range cases {
		_, err := Attach(corrupt(c.off, c.v))
		if !errors.Is(err, c.want) {
			t.Errorf("flip %#x at %d: %v, want %v", c.v, c.off, err, c.want)
		}
	}
	// The hot words are not covered by the checksum: a region in use
	// attaches whatever its free lists and counters hold.
	for _, off := range []int{classTableOff + cdHead, classTableOff + cdInUse, classTableOff + cdFailed} {
		if _, err := Attach(corrupt(off, 1)); err != nil {
			t.Errorf("flip at hot word %d: %v", off, err)
		}
	}
	_, err = Attach(a.mem[:len(a.mem)-64])
	wantErr(t, err, ErrTooSmall)
}

func TestCorruptFreeList(t *testing.T) {
	a := newTest(t, smallConfig)
	c := &a.classes[0]
	c.chunk(0).next.Store(99) // out of range
	_, err := a.Alloc(1)
	if err == nil {
		_, err = a.Alloc(1)
	}
	wantErr(t, err, ErrCorrupt)
	if _, err := a.Check(); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("check: %v", err)
	}
	a.Recover()
	mustWhole(t, a)

	// A cycle: chunk 1 links back to chunk 0. Pops hand out 0, 1, then find
	// 0 again — in use — and report ErrCorrupt instead of a second hand-out.
	c.head.Store(1)
	c.chunk(0).next.Store(2)
	c.chunk(1).next.Store(1)
	var refs []Ref
	for range 3 {
		r, err := a.Alloc(1)
		if err != nil {
			wantErr(t, err, ErrCorrupt)
			break
		}
		refs = append(refs, r)
	}
	if len(refs) != 2 {
		t.Fatalf("%d chunks from a 2-cycle", len(refs))
	}
	for _, r := range refs {
		_ = a.Free(r)
	}
	// The popped-and-dropped chunk was pushed back by Free while the list
	// still held it: the list is a cycle again, which Check reports.
	_, err = a.Check()
	wantErr(t, err, ErrCorrupt)
	if n := a.Recover(); n == 0 {
		t.Fatal("recover relinked nothing")
	}
	mustWhole(t, a)

	// A stored length beyond the chunk.
	r, _ := a.Alloc(10)
	i := uint32((r.Offset() - c.dataOff) / c.size)
	c.chunk(i).length.Store(65)
	_, err = a.Bytes(r)
	wantErr(t, err, ErrCorrupt)
	_ = a.Free(r)
}

func TestGoroutinesHammer(t *testing.T) {
	a := newTest(t, smallConfig)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := withOwner(t, a, uint32(g+1))
			for i := range 20000 {
				r, err := p.Alloc(i % 200)
				if errors.Is(err, ErrNoMemory) {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				b, _ := p.Bytes(r)
				b = b[:cap(b)]
				b[0], b[len(b)-1] = byte(g), byte(i)
				if b[0] != byte(g) || b[len(b)-1] != byte(i) {
					t.Errorf("chunk %v shared", r)
				}
				if err := p.Release(r); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	mustWhole(t, a)
}

// TestReclaimInFlight stages, by hand, every point at which a participant
// can die inside Alloc or Free, and checks that other participants are not
// blocked and that ReclaimOwner finishes what was left.
func TestReclaimInFlight(t *testing.T) {
	const dead = 5
	a := newTest(t, smallConfig)
	c := &a.classes[0]
	other := withOwner(t, a, 6)
	top := func() uint32 { return headTop(c.head.Load()) - 1 }

	// Died after reserving the top, before claiming it: nothing is lost,
	// the next pop claims the chunk.
	c.head.Store(newHead(c.head.Load(), top()+1, true))
	if _, err := a.Check(); err != nil {
		t.Fatal(err)
	}
	r, err := other.Alloc(1)
	if err != nil {
		t.Fatal(err)
	}
	_ = other.Free(r)
	mustWhole(t, a)

	// Died after claiming the top, before unlinking it: others unlink it
	// for the dead claimer and go on.
	i := top()
	c.head.Store(newHead(c.head.Load(), i+1, true))
	c.chunk(i).state.Store(withLow(c.chunk(i).state.Load(), lowClaim|dead))
	_, err = a.Check()
	wantErr(t, err, ErrInFlight)
	r, err = other.Alloc(1)
	if err != nil || r.Offset() == c.dataOff+uint64(i)*c.size {
		t.Fatalf("alloc past a claimed chunk: %v %v", r, err)
	}
	_ = other.Free(r)
	if n, err := a.ReclaimOwner(dead); n != 1 || err != nil {
		t.Fatalf("reclaim claimed: %d %v", n, err)
	}
	mustWhole(t, a)

	// Died after unlinking, before marking the chunk allocated.
	i, err = c.pop(dead, false)
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.Check()
	wantErr(t, err, ErrInFlight)
	if n, err := a.ReclaimOwner(dead); n != 1 || err != nil {
		t.Fatalf("reclaim unlinked claim: %d %v", n, err)
	}
	mustWhole(t, a)

	// Died after marking its chunk as being freed, before linking it.
	p := withOwner(t, a, dead)
	r, _ = p.Alloc(1)
	i = uint32((r.Offset() - c.dataOff) / c.size)
	m := c.chunk(i)
	m.state.Store(freeing(m.state.Load(), dead))
	c.inUse.Add(^uint64(0))
	_, err = a.Check()
	wantErr(t, err, ErrInFlight)
	wantErr(t, p.Free(r), ErrDoubleFree)
	if n, err := a.ReclaimOwner(dead); n != 1 || err != nil {
		t.Fatalf("reclaim unlinked push: %d %v", n, err)
	}
	mustWhole(t, a)

	// Died after linking, before marking it free: the next operation on the
	// list marks it free for the dead pusher; ReclaimOwner does the same.
	for _, reclaim := range []bool{false, true} {
		r, _ = p.Alloc(1)
		i = uint32((r.Offset() - c.dataOff) / c.size)
		m = c.chunk(i)
		m.state.Store(freeing(m.state.Load(), dead))
		c.inUse.Add(^uint64(0))
		h := c.head.Load()
		m.next.Store(headTop(h))
		c.head.Store(newHead(h, i+1, false))
		_, err = a.Check()
		wantErr(t, err, ErrInFlight)
		if reclaim {
			if n, err := a.ReclaimOwner(dead); n != 1 || err != nil {
				t.Fatalf("reclaim linked push: %d %v", n, err)
			}
		} else {
			r2, err := other.Alloc(1)
			if err != nil || r2.Offset() != r.Offset() {
				t.Fatalf("alloc after a linked push: %v %v", r2, err)
			}
			_ = other.Free(r2)
		}
		mustWhole(t, a)
	}

	// A pusher that meets a reserved but unclaimed top takes that chunk
	// and pushes it back after its own.
	r, _ = other.Alloc(1)
	c.head.Store(newHead(c.head.Load(), headTop(c.head.Load()), true))
	if err := other.Free(r); err != nil {
		t.Fatal(err)
	}
	mustWhole(t, a)
}

func TestRefCountLimit(t *testing.T) {
	a := newTest(t, smallConfig)
	r, _ := a.Alloc(1)
	c, i, _ := a.resolve("test", r)
	m := c.chunk(i)
	m.state.Store(withLow(m.state.Load(), MaxRefCount))
	wantErr(t, a.Retain(r), ErrRefCount)
	if err := a.Release(r); err != nil {
		t.Fatal(err)
	}
	if n, _ := a.RefCount(r); n != MaxRefCount-1 {
		t.Fatalf("refcount %d", n)
	}
	if err := a.Free(r); err != nil {
		t.Fatal(err)
	}
	mustWhole(t, a)
}
