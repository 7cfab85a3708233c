package allocator

import (
	"errors"
	"sync"
	"testing"
)

// cachedIn returns the Cached count of every class.
func cachedIn(a *Allocator) []int {
	var n []int
	for _, s := range a.Stats() {
		n = append(n, s.Cached)
	}
	return n
}

func TestCacheAllocFree(t *testing.T) {
	a := newTest(t, smallConfig)
	p := withOwner(t, a, 3, WithCache(4))
	if p.CacheSize() != 4 || a.CacheSize() != 0 {
		t.Fatalf("cache sizes %d %d", p.CacheSize(), a.CacheSize())
	}
	// The first Alloc refills half a magazine: two chunks off the list, one
	// handed out, one cached.
	r, err := p.Alloc(10)
	if err != nil {
		t.Fatal(err)
	}
	if st := a.Stats()[0]; st.InUse != 1 || st.Cached != 1 || st.Free != 6 || st.HighWater != 2 {
		t.Fatalf("after one alloc: %+v", st)
	}
	if id, _ := p.Owner(r); id != 3 {
		t.Fatalf("owner %d", id)
	}
	// Free puts it in the magazine; the next Alloc takes it back (LIFO),
	// with a new generation.
	if err := p.Free(r); err != nil {
		t.Fatal(err)
	}
	wantErr(t, p.Free(r), ErrDoubleFree)
	wantErr(t, a.Free(r), ErrDoubleFree)
	_, err = a.Bytes(r)
	wantErr(t, err, ErrDoubleFree)
	r2, err := p.Alloc(20)
	if err != nil {
		t.Fatal(err)
	}
	if r2.Offset() != r.Offset() || r2.Gen() == r.Gen() {
		t.Fatalf("cache gave %v after %v", r2, r)
	}
	wantErr(t, p.Free(r), ErrBadRef)
	if l, _ := a.Len(r2); l != 20 {
		t.Fatalf("len %d", l)
	}
	// A chunk another handle frees goes to that handle's list, not into p.
	if err := a.Free(r2); err != nil {
		t.Fatal(err)
	}
	if got := cachedIn(a); got[0] != 1 || p.Cached() != 1 {
		t.Fatalf("cached %v, handle %d", got, p.Cached())
	}
	// A chunk p frees goes into p's magazine, whoever allocated it.
	r3, _ := a.Alloc(10)
	if err := p.Release(r3); err != nil {
		t.Fatal(err)
	}
	if p.Cached() != 2 || cachedIn(a)[0] != 2 {
		t.Fatalf("cached %d / %v", p.Cached(), cachedIn(a))
	}
	if _, err := a.Check(); err != nil {
		t.Fatal(err)
	}
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	if p.Cached() != 0 {
		t.Fatalf("%d cached after Flush", p.Cached())
	}
	mustWhole(t, a)
}

// TestCacheSpill fills a magazine past its size: the oldest half goes back
// to the list, the newest stay.
func TestCacheSpill(t *testing.T) {
	a := newTest(t, smallConfig)
	p := withOwner(t, a, 3, WithCache(4))
	var refs []Ref
	for range 6 {
		r, err := p.Alloc(1)
		if err != nil {
			t.Fatal(err)
		}
		refs = append(refs, r)
	}
	if st := a.Stats()[0]; st.InUse != 6 || st.Cached != 0 || st.HighWater != 6 {
		t.Fatalf("after 6 allocs: %+v", st)
	}
	// Each refill of two reserved the second chunk as it unlinked the
	// first, and left the head plain after the last.
	if h := a.classes[0].head.Load(); headIsPopping(h) {
		t.Fatalf("head %#x left popping after refills", h)
	}
	for i, r := range refs {
		if err := p.Free(r); err != nil {
			t.Fatal(err)
		}
		// 4 fit; the 5th spills two (4-2+1 = 3), the 6th fits.
		want := []int{1, 2, 3, 4, 3, 4}[i]
		if p.Cached() != want || cachedIn(a)[0] != want {
			t.Fatalf("free %d: cached %d / %v, want %d", i, p.Cached(), cachedIn(a), want)
		}
	}
	if st := a.Stats()[0]; st.Free != 4 || st.InUse != 0 {
		t.Fatalf("after frees: %+v", st)
	}
	// The most recently freed chunk comes back first.
	r, _ := p.Alloc(1)
	if r.Offset() != refs[5].Offset() {
		t.Fatalf("got %v, last freed %v", r, refs[5])
	}
	_ = p.Free(r)
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	mustWhole(t, a)
}

// TestCacheNoMemory: chunks in one handle's magazine are not another's
// to take; Alloc reports ErrNoMemory, and Flush makes them available.
func TestCacheNoMemory(t *testing.T) {
	a := newTest(t, Config{Classes: []Class{{64, 4}}})
	p := withOwner(t, a, 1, WithCache(8))
	var refs []Ref
	for range 4 {
		r, err := p.Alloc(1)
		if err != nil {
			t.Fatal(err)
		}
		refs = append(refs, r)
	}
	_, err := p.Alloc(1)
	wantErr(t, err, ErrNoMemory)
	for _, r := range refs {
		_ = p.Free(r)
	}
	_, err = a.Alloc(1)
	wantErr(t, err, ErrNoMemory)
	if st := a.Stats()[0]; st.Failed != 2 || st.Cached != 4 {
		t.Fatalf("stats %+v", st)
	}
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	r, err := a.Alloc(1)
	if err != nil {
		t.Fatal(err)
	}
	_ = a.Free(r)
	mustWhole(t, a)
}

// TestCacheReclaim: ReclaimOwner returns the chunks in a dead owner's
// magazine with the ones it held; a magazine whose chunks were taken from
// under it (here: the owner is reclaimed while its handle lives, outside
// the contract) drops those entries instead of handing a chunk out twice.
func TestCacheReclaim(t *testing.T) {
	a := newTest(t, smallConfig)
	p := withOwner(t, a, 9, WithCache(4))
	var held []Ref
	for range 5 {
		r, _ := p.Alloc(1)
		held = append(held, r)
	}
	for _, r := range held[:3] {
		_ = p.Free(r)
	}
	big, _ := p.Alloc(1000)
	st := a.Stats()
	if st[0].InUse != 2 || st[0].Cached != 4 || st[2].InUse != 1 || st[2].Cached != 0 {
		t.Fatalf("before reclaim: %+v", st)
	}
	n, err := a.ReclaimOwner(9)
	if err != nil || n != 7 {
		t.Fatalf("reclaim: %d %v", n, err)
	}
	mustWhole(t, a)
	wantErr(t, p.Free(big), ErrDoubleFree)
	// The handle's entries are stale now: it must refill, never reuse them.
	seen := map[uint64]bool{}
	var refs []Ref
	for range 8 {
		r, err := p.Alloc(1)
		if err != nil {
			t.Fatal(err)
		}
		if seen[r.Offset()] {
			t.Fatalf("chunk %v handed out twice", r)
		}
		seen[r.Offset()] = true
		refs = append(refs, r)
	}
	for _, r := range refs {
		_ = p.Free(r)
	}
	_ = p.Flush()
	mustWhole(t, a)
}

// TestCacheGoroutines runs a cached handle per goroutine over one region.
func TestCacheGoroutines(t *testing.T) {
	a := newTest(t, smallConfig)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := withOwner(t, a, uint32(g+1), WithCache(2+g))
			var held []Ref
			for i := range 20000 {
				if len(held) < 3 && i%3 != 2 {
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
					held = append(held, r)
					continue
				}
				if len(held) == 0 {
					continue
				}
				r := held[0]
				held = held[1:]
				b, _ := p.Bytes(r)
				if b = b[:cap(b)]; b[0] != byte(g) {
					t.Errorf("chunk %v shared", r)
				}
				if err := p.Release(r); err != nil {
					t.Error(err)
					return
				}
			}
			for _, r := range held {
				_ = p.Free(r)
			}
			if err := p.Flush(); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	mustWhole(t, a)
}
