package ring

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/shmkit/shmkit/internal/layoutdoc"
)

func newTestMPMC(tb testing.TB, capacity, slotSize int, opts ...Option) (*MPMC, []byte) {
	tb.Helper()
	size, err := MPMCSize(capacity, slotSize, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	mem := alignedMem(tb, size)
	r, err := NewMPMC(mem, capacity, slotSize, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	return r, mem
}

// TestMPMCLayout holds docs/ring.md's MPMC tables to the code's constants,
// and checks the stride and region size rules.
func TestMPMCLayout(t *testing.T) {
	var cl mpmcClaim
	layoutdoc.Check(t, "../docs/ring.md", "mpmc_slot", []layoutdoc.Field{
		{Name: "turn", Offset: mpmcTurnOff, Size: 8},
		{Name: "len", Offset: mpmcLenOff, Size: 4},
		{Name: "reserved", Offset: mpmcResvOff, Size: mpmcSlotHeader - mpmcResvOff},
		{Name: "payload", Offset: mpmcSlotHeader, Size: -1},
	})
	layoutdoc.Check(t, "../docs/ring.md", "mpmc_claim", []layoutdoc.Field{
		{Name: "tag", Offset: mpmcClaimTagOff, Size: int(unsafe.Sizeof(cl.tag))},
		{Name: "intent", Offset: mpmcClaimIntentOff, Size: int(unsafe.Sizeof(cl.intent))},
		{Name: "reserved", Offset: mpmcClaimIntentOff + 8, Size: mpmcClaimSize - mpmcClaimIntentOff - 8},
	})
	if o := unsafe.Offsetof(cl.tag); o != mpmcClaimTagOff {
		t.Errorf("claim tag at %d", o)
	}
	if o := unsafe.Offsetof(cl.intent); o != mpmcClaimIntentOff {
		t.Errorf("claim intent at %d", o)
	}
	if s := unsafe.Sizeof(cl); s != mpmcClaimSize || s%cacheLine != 0 {
		t.Errorf("claim record of %d bytes", s)
	}
	for _, tc := range []struct{ slot, stride int }{{1, 64}, {8, 64}, {48, 64}, {49, 128}, {64, 128}, {112, 128}, {113, 192}} {
		if s := mpmcStride(uint64(tc.slot)); s != uint64(tc.stride) {
			t.Errorf("slot size %d: stride %d, want %d", tc.slot, s, tc.stride)
		}
	}
	if n, err := MPMCSize(8, 64, WithClaimSlots(3)); n != dataOffset+8*128+3*mpmcClaimSize || err != nil {
		t.Fatal(n, err)
	}
	for _, c := range []int{-1, MaxClaimSlots + 1} {
		if _, err := MPMCSize(8, 8, WithClaimSlots(c)); !errors.Is(err, ErrConfig) {
			t.Errorf("%d claim slots: %v", c, err)
		}
	}
}

func TestMPMCBasic(t *testing.T) {
	for _, c := range []int{0, 3, -1} {
		if _, err := MPMCSize(c, 8); !errors.Is(err, ErrConfig) {
			t.Error(c, err)
		}
	}
	for _, claims := range []int{0, 4} {
		t.Run(fmt.Sprintf("claims%d", claims), func(t *testing.T) {
			r, mem := newTestMPMC(t, 4, 8, WithClaimSlots(claims))
			p, c0 := r.Producer(), r.Consumer()
			buf := make([]byte, 8)
			if _, ok, err := c0.TryDequeue(buf); ok || err != nil {
				t.Fatal(ok, err)
			}
			for i := range 4 {
				if ok, err := p.TryEnqueue([]byte{byte(i), 7}[:1+i%2]); !ok || err != nil {
					t.Fatal(i, ok, err)
				}
			}
			if ok, err := p.TryEnqueue([]byte{1}); ok || err != nil {
				t.Fatal("enqueue into full:", ok, err)
			}
			if _, err := p.TryEnqueue(make([]byte, 9)); !errors.Is(err, ErrTooLarge) {
				t.Fatal(err)
			}
			if r.Len() != 4 || r.Cap() != 4 || r.SlotSize() != 8 || r.ClaimSlots() != claims {
				t.Fatal(r.Len(), r.Cap(), r.SlotSize(), r.ClaimSlots())
			}
			a, err := AttachMPMC(mem)
			if err != nil {
				t.Fatal(err)
			}
			if a.ClaimSlots() != claims {
				t.Fatal(a.ClaimSlots())
			}
			c := a.Consumer()
			// A buffer too short for the next message leaves it in place.
			if _, _, err := c.TryDequeue(buf[:0]); !errors.Is(err, ErrShortBuffer) {
				t.Fatal(err)
			}
			for i := range 4 {
				n, ok, err := c.TryDequeue(buf[:2])
				if !ok || err != nil || n != 1+i%2 || buf[0] != byte(i) {
					t.Fatal(i, n, ok, err)
				}
			}
			// Batches wrap around the ring.
			msgs := [][]byte{{1}, {2}, {3}, {4}, {5}, {6}}
			if n, err := p.TryEnqueueBatch(msgs); n != 4 || err != nil {
				t.Fatal(n, err)
			}
			bufs := [][]byte{make([]byte, 8), make([]byte, 8), make([]byte, 8)}
			if n, err := c.TryDequeueBatch(bufs); n != 3 || err != nil || bufs[2][0] != 3 {
				t.Fatal(n, err)
			}
			if n, err := p.EnqueueBatch(context.Background(), msgs[4:]); n != 2 || err != nil {
				t.Fatal(n, err)
			}
			// 8-byte fast path, mixed with copying calls.
			if _, ok, err := c.TryDequeueU64(); ok || !errors.Is(err, ErrCorrupt) {
				t.Fatal("1-byte message as U64:", ok, err) // message {4} consumed
			}
			if err := p.EnqueueU64(context.Background(), 0x0102030405060708); err != nil {
				t.Fatal(err)
			}
			p.Close()
			if !r.Closed() || !a.Closed() {
				t.Fatal("not closed")
			}
			if err := p.Enqueue(context.Background(), []byte{1}); !errors.Is(err, ErrClosed) {
				t.Fatal(err)
			}
			if ok, err := p.TryEnqueueU64(1); ok || !errors.Is(err, ErrClosed) {
				t.Fatal(ok, err)
			}
			for _, want := range []byte{5, 6} {
				if n, err := c.Dequeue(context.Background(), buf); n != 1 || err != nil || buf[0] != want {
					t.Fatal(n, err, buf[0], want)
				}
			}
			if v, err := c.DequeueU64(context.Background()); v != 0x0102030405060708 || err != nil {
				t.Fatalf("%#x %v", v, err)
			}
			if _, err := c.Dequeue(context.Background(), buf); !errors.Is(err, ErrClosed) {
				t.Fatal(err)
			}
			if _, err := c.DequeueBatch(context.Background(), bufs); !errors.Is(err, ErrClosed) {
				t.Fatal(err)
			}
			if _, err := c.DequeueU64(context.Background()); !errors.Is(err, ErrClosed) {
				t.Fatal(err)
			}
			p.Detach()
			c.Detach()
			c0.Detach()
		})
	}
}

// TestMPMCZeroCopy checks Reserve/Commit and Peek/Release and their order
// rules.
func TestMPMCZeroCopy(t *testing.T) {
	ctx := context.Background()
	r, _ := newTestMPMC(t, 2, 8, WithClaimSlots(2))
	p, c := r.Producer(), r.Consumer()
	if err := p.Commit(1); !errors.Is(err, ErrOrder) {
		t.Fatal(err)
	}
	if err := c.Release(); !errors.Is(err, ErrOrder) {
		t.Fatal(err)
	}
	b, err := p.Reserve(ctx)
	if err != nil || len(b) != 8 {
		t.Fatal(len(b), err)
	}
	copy(b, "hello")
	if _, err := p.TryEnqueue([]byte{1}); !errors.Is(err, ErrOrder) {
		t.Fatal("enqueue while reserved:", err)
	}
	if err := p.Detach(); !errors.Is(err, ErrOrder) {
		t.Fatal("detach while reserved:", err)
	}
	if err := p.Commit(9); !errors.Is(err, ErrTooLarge) {
		t.Fatal(err)
	}
	if _, ok, err := c.TryPeek(); ok || err != nil {
		t.Fatal("peek of an uncommitted reservation:", ok, err)
	}
	if err := p.Commit(5); err != nil {
		t.Fatal(err)
	}
	if err := p.Enqueue(ctx, []byte("next")); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := p.TryReserve(); ok || err != nil {
		t.Fatal("reserve in a full ring:", ok, err)
	}
	m, err := c.Peek(ctx)
	if err != nil || string(m) != "hello" {
		t.Fatalf("%q %v", m, err)
	}
	if _, _, err := c.TryDequeue(make([]byte, 8)); !errors.Is(err, ErrOrder) {
		t.Fatal("dequeue while peeked:", err)
	}
	if err := c.Release(); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := p.TryReserve(); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if _, _, err := p.TryReserve(); !errors.Is(err, ErrOrder) {
		t.Fatal("second reservation:", err)
	}
	if err := p.Commit(0); err != nil {
		t.Fatal(err)
	}
	p.Close()
	if m, err := c.Peek(ctx); err != nil || string(m) != "next" {
		t.Fatalf("%q %v", m, err)
	}
	c.Release()
	if m, err := c.Peek(ctx); err != nil || len(m) != 0 {
		t.Fatalf("%q %v", m, err)
	}
	c.Release()
	if _, err := c.Peek(ctx); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
	if _, err := p.Reserve(ctx); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
	if p.Detach() != nil || c.Detach() != nil {
		t.Fatal("detach")
	}
}

// TestMPMCClaimSlots checks that handles take claim records lazily, give
// them back with Detach, and fail with ErrConfig when none is free.
func TestMPMCClaimSlots(t *testing.T) {
	r, _ := newTestMPMC(t, 4, 8, WithClaimSlots(2), WithOwner(7))
	p1, p2, c := r.Producer(), r.Producer(), r.Consumer()
	if ok, err := p1.TryEnqueue([]byte{1}); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if ok, err := p2.TryEnqueue([]byte{2}); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if _, _, err := c.TryDequeue(make([]byte, 8)); !errors.Is(err, ErrConfig) {
		t.Fatal("third handle on two claim slots:", err)
	}
	for i := range 2 {
		if tag := r.claimAt(i).tag.Load(); tag&claimOwnerMask != 7 || claimRole(tag) != roleProducer {
			t.Fatalf("record %d tag %#x", i, tag)
		}
	}
	p1.Detach()
	if n, ok, err := c.TryDequeue(make([]byte, 8)); !ok || err != nil || n != 1 {
		t.Fatal(n, ok, err)
	}
	if _, err := r.Repair(context.Background(), nil, 7); err != nil {
		t.Fatal(err)
	}
	if _, err := (&MPMC{}).Repair(context.Background(), nil, 1); !errors.Is(err, ErrConfig) {
		t.Fatal(err)
	}
}

// TestMPMCCorrupt makes the shared state impossible in ways a hostile peer
// could, and checks that every call reports ErrCorrupt instead of waiting.
func TestMPMCCorrupt(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	want := func(name string, err error) {
		t.Helper()
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
	m, _ := newTestMPMC(t, 4, 8)
	p, c := m.Producer(), m.Consumer()
	buf := make([]byte, 8)
	m.turn(0).Store(99) // turn far ahead, index unmoved
	want("enqueue", p.Enqueue(ctx, []byte{1}))
	_, err := c.Dequeue(ctx, buf)
	want("dequeue", err)
	_, err = c.DequeueU64(ctx)
	want("dequeue u64", err)
	_, err = p.EnqueueBatch(ctx, [][]byte{{1}})
	want("enqueue batch", err)
	_, err = c.DequeueBatch(ctx, [][]byte{buf})
	want("dequeue batch", err)
	m.turn(0).Store(1) // published, length too large
	slotLen(m.slot(0)).Store(100)
	_, err = c.Dequeue(ctx, buf)
	want("length", err)
	if m.turn(0).Load() != 4 {
		t.Error("the corrupt slot was not freed")
	}
	if ctx.Err() != nil {
		t.Fatal("a corrupt ring was waited on until the deadline")
	}
}

// exerciseMPMC runs non-blocking MPMC operations on whatever mem holds (the
// fuzz targets' helper).
func exerciseMPMC(t *testing.T, mem, buf []byte, bufs [][]byte, msg []byte) {
	r, err := AttachMPMC(mem)
	if err != nil {
		return
	}
	p, c := r.Producer(), r.Consumer()
	for range 4 {
		_, _, err1 := c.TryDequeue(buf)
		_, err2 := c.TryDequeueBatch(bufs)
		_, err3 := p.TryEnqueue(msg[:min(len(msg), r.SlotSize())])
		_, err4 := p.TryEnqueueBatch([][]byte{msg[:1], msg[:2], msg[:3]})
		_, _, err5 := c.TryDequeueU64()
		_, err6 := p.TryEnqueueU64(3)
		for _, err := range []error{err1, err2, err3, err4, err5, err6} {
			// ErrConfig: hostile claim records leave no free one.
			if !allowedErr(err) && !errors.Is(err, ErrConfig) {
				t.Fatalf("mpmc: %v", err)
			}
		}
		_ = r.Len()
	}
}

// mpmcMsg is message seq of producer p; it repeats both in a pattern so a
// torn slot is seen.
func mpmcMsg(b []byte, p, seq uint64) []byte {
	b = b[:16]
	binary.LittleEndian.PutUint64(b, p)
	binary.LittleEndian.PutUint64(b[8:], seq^(p<<48))
	return b
}

func parseMPMCMsg(b []byte) (p, seq uint64, err error) {
	if len(b) != 16 {
		return 0, 0, fmt.Errorf("message of %d bytes", len(b))
	}
	p = binary.LittleEndian.Uint64(b)
	seq = binary.LittleEndian.Uint64(b[8:]) ^ (p << 48)
	if seq>>48 != 0 {
		return 0, 0, fmt.Errorf("torn message % x", b)
	}
	return p, seq, nil
}

// produceMPMC enqueues messages from..n-1 of producer p, in batches of
// batch, and calls acked after each enqueue returns.
func produceMPMC(ctx context.Context, h *MPMCProducer, p, from, n uint64, batch int, acked func(uint64)) error {
	bufs := make([][]byte, batch)
	msgs := make([][]byte, batch)
	for i := range bufs {
		bufs[i] = make([]byte, 16)
	}
	for seq := from; seq < n; {
		if batch == 1 {
			if err := h.Enqueue(ctx, mpmcMsg(bufs[0], p, seq)); err != nil {
				return err
			}
			seq++
			acked(seq)
			continue
		}
		k := int(min(uint64(batch), n-seq))
		for j := range k {
			msgs[j] = mpmcMsg(bufs[j], p, seq+uint64(j))
		}
		done, err := h.EnqueueBatch(ctx, msgs[:k])
		seq += uint64(done)
		acked(seq)
		if err != nil {
			return err
		}
	}
	return nil
}

// consumeMPMC dequeues until closed and drained, checking per-producer
// order, and calls seen for every message.
func consumeMPMC(ctx context.Context, h *MPMCConsumer, producers int, batch int, seen func(p, seq uint64)) (uint64, error) {
	next := make([]uint64, producers) // lowest sequence number still allowed
	bufs := make([][]byte, batch)
	for i := range bufs {
		bufs[i] = make([]byte, 16)
	}
	var count uint64
	for {
		var k int
		var err error
		if batch == 1 {
			var n int
			n, err = h.Dequeue(ctx, bufs[0][:16])
			bufs[0] = bufs[0][:n]
			k = 1
		} else {
			k, err = h.DequeueBatch(ctx, bufs)
		}
		if errors.Is(err, ErrClosed) {
			return count, nil
		}
		if err != nil {
			return count, err
		}
		for _, b := range bufs[:k] {
			p, seq, err := parseMPMCMsg(b)
			if err != nil {
				return count, err
			}
			if p >= uint64(producers) {
				return count, fmt.Errorf("message from producer %d", p)
			}
			if seq < next[p] {
				return count, fmt.Errorf("producer %d: message %d after %d", p, seq, next[p]-1)
			}
			next[p] = seq + 1
			seen(p, seq)
			count++
		}
	}
}

func TestMPMCGoroutines(t *testing.T) {
	for _, tc := range []struct{ prod, cons, capacity, batch, claims int }{
		{1, 1, 1, 1, 0}, {2, 2, 2, 1, 4}, {4, 4, 8, 3, 8}, {3, 2, 64, 16, 0}, {2, 3, 16, 1, 5},
	} {
		t.Run(fmt.Sprintf("%dx%d/cap%d/batch%d/claims%d", tc.prod, tc.cons, tc.capacity, tc.batch, tc.claims), func(t *testing.T) {
			r, _ := newTestMPMC(t, tc.capacity, 16, WithClaimSlots(tc.claims))
			const n = 5000
			counts := make([]atomic.Uint32, tc.prod*n)
			ctx := context.Background()
			var wg, pwg sync.WaitGroup
			errc := make(chan error, tc.prod+tc.cons)
			for p := range tc.prod {
				pwg.Add(1)
				go func() {
					defer pwg.Done()
					h := r.Producer()
					defer h.Detach()
					errc <- produceMPMC(ctx, h, uint64(p), 0, n, tc.batch, func(uint64) {})
				}()
			}
			for range tc.cons {
				wg.Add(1)
				go func() {
					defer wg.Done()
					h := r.Consumer()
					defer h.Detach()
					_, err := consumeMPMC(ctx, h, tc.prod, tc.batch, func(p, seq uint64) {
						if seq < n {
							counts[int(p)*n+int(seq)].Add(1)
						}
					})
					errc <- err
				}()
			}
			pwg.Wait()
			r.Producer().Close()
			wg.Wait()
			close(errc)
			for err := range errc {
				if err != nil {
					t.Fatal(err)
				}
			}
			for i := range counts {
				if c := counts[i].Load(); c != 1 {
					t.Fatalf("producer %d message %d delivered %d times", i/n, i%n, c)
				}
			}
		})
	}
}

// errDie is the panic the in-process crash test's hook throws: unwinding
// out of an MPMC operation at a step leaves the shared state exactly as a
// SIGKILL there would (no deferred code of the ring runs).
type errDie struct{}

// dieAt runs op with the hook set to panic at the nth occurrence of step,
// and reports whether it died there.
func dieAt(step mpmcStep, nth int, op func()) (died bool) {
	seen := 0
	mpmcHook = func(s mpmcStep) {
		if s == step {
			seen++
			if seen == nth {
				panic(errDie{})
			}
		}
	}
	defer func() {
		mpmcHook = nil
		if v := recover(); v != nil {
			if _, ok := v.(errDie); !ok {
				panic(v)
			}
			died = true
		}
	}()
	op()
	return false
}

// TestMPMCRepairSteps abandons a producer or consumer at every step of
// every kind of operation (as if its process were killed there), checks
// that the ring is stalled or not as expected, repairs the dead owner and
// checks that traffic goes on with the in-flight message accounted for as
// docs/ring.md says: a producer's is delivered if it died after storing
// the turn and lost before; a consumer's is handed to lost if it died
// between claiming and freeing.
func TestMPMCRepairSteps(t *testing.T) {
	type op struct {
		name    string
		produce bool
		run     func(p *MPMCProducer, c *MPMCConsumer, v byte)
	}
	ctx := context.Background()
	ops := []op{
		{"Enqueue", true, func(p *MPMCProducer, c *MPMCConsumer, v byte) { p.Enqueue(ctx, []byte{v}) }},
		{"EnqueueU64", true, func(p *MPMCProducer, c *MPMCConsumer, v byte) { p.EnqueueU64(ctx, uint64(v)) }},
		{"EnqueueBatch", true, func(p *MPMCProducer, c *MPMCConsumer, v byte) { p.EnqueueBatch(ctx, [][]byte{{v}}) }},
		{"Reserve+Commit", true, func(p *MPMCProducer, c *MPMCConsumer, v byte) {
			b, _ := p.Reserve(ctx)
			b[0] = v
			p.Commit(1)
		}},
		{"Dequeue", false, func(p *MPMCProducer, c *MPMCConsumer, v byte) { c.Dequeue(ctx, make([]byte, 8)) }},
		{"Peek+Release", false, func(p *MPMCProducer, c *MPMCConsumer, v byte) {
			c.Peek(ctx)
			c.Release()
		}},
		{"DequeueU64", false, func(p *MPMCProducer, c *MPMCConsumer, v byte) { c.DequeueU64(ctx) }},
		{"DequeueBatch", false, func(p *MPMCProducer, c *MPMCConsumer, v byte) { c.DequeueBatch(ctx, [][]byte{make([]byte, 8)}) }},
	}
	for _, o := range ops {
		first, last := stepPutIntent, stepPutPublished
		if !o.produce {
			first, last = stepGetIntent, stepGetFreed
		}
		for step := first; step <= last; step++ {
			t.Run(fmt.Sprintf("%s/step%d", o.name, step), func(t *testing.T) {
				const victim, survivor = 9, 1
				r, mem := newTestMPMC(t, 4, 8, WithClaimSlots(4), WithOwner(survivor))
				dead, err := AttachMPMC(mem, WithOwner(victim))
				if err != nil {
					t.Fatal(err)
				}
				sp, sc := r.Producer(), r.Consumer()
				// Three messages in, one out, so the victim works
				// at a position that is not the first of the ring.
				for _, v := range []byte{1, 2, 3} {
					if err := sp.Enqueue(ctx, []byte{v}); err != nil {
						t.Fatal(err)
					}
				}
				buf := make([]byte, 8)
				if n, err := sc.Dequeue(ctx, buf); n != 1 || buf[0] != 1 || err != nil {
					t.Fatal(n, buf[0], err)
				}
				vp, vc := dead.Producer(), dead.Consumer()
				if !dieAt(step, 1, func() { o.run(vp, vc, 4) }) {
					t.Fatal("the victim did not reach the step")
				}
				var lost [][]byte
				n, err := r.Repair(ctx, func(m []byte) { lost = append(lost, append([]byte(nil), m...)) }, victim)
				if err != nil {
					t.Fatal(err)
				}
				// What must arrive now, in order.
				var want []byte
				switch {
				case o.produce:
					want = []byte{2, 3}
					if step == stepPutPublished {
						want = append(want, 4)
					}
					if wantN := map[bool]int{true: 1, false: 0}[step == stepPutClaimed || step == stepPutWritten]; n != wantN {
						t.Errorf("repaired %d slots, want %d", n, wantN)
					}
				default:
					want = []byte{3}
					if step == stepGetIntent {
						want = []byte{2, 3}
					}
					if step == stepGetClaimed || step == stepGetCopied {
						if n != 1 || len(lost) != 1 || len(lost[0]) != 1 || lost[0][0] != 2 {
							t.Errorf("repaired %d, lost %v; want message 2 handed to lost", n, lost)
						}
					} else if n != 0 || len(lost) != 0 {
						t.Errorf("repaired %d, lost %v; want nothing", n, lost)
					}
				}
				// The survivor's traffic goes on past the repaired
				// position, several laps, and drains after Close.
				for v := byte(10); v < 20; v++ {
					if err := sp.Enqueue(ctx, []byte{v}); err != nil {
						t.Fatal(err)
					}
					want = append(want, v)
					tctx, cancel := context.WithTimeout(ctx, time.Minute)
					n, err := sc.Dequeue(tctx, buf)
					cancel()
					if err != nil || buf[0] != want[0] || n != 1 && !(n == 8 && want[0] == 4) {
						t.Fatalf("after repair: got %d (%v, %d bytes), want %d", buf[0], err, n, want[0])
					}
					want = want[1:]
				}
				sp.Close()
				for {
					tctx, cancel := context.WithTimeout(ctx, time.Minute)
					n, err := sc.Dequeue(tctx, buf)
					cancel()
					if errors.Is(err, ErrClosed) {
						break
					}
					if err != nil || len(want) == 0 || buf[0] != want[0] || n != 1 && !(n == 8 && want[0] == 4) {
						t.Fatalf("draining: got %d (%v), want %v", buf[0], err, want)
					}
					want = want[1:]
				}
				if len(want) != 0 {
					t.Fatalf("never received %v", want)
				}
				for i := range r.nclaims {
					if tag := r.claimAt(i).tag.Load(); tag&claimOwnerMask == victim && claimRole(tag) != 0 {
						t.Fatalf("claim record %d still held by the victim: %#x", i, tag)
					}
				}
			})
		}
	}
}

// TestMPMCRepairWaitsForLive checks that Repair does not touch a position
// that a live handle has claimed, even when a dead record also covers it
// (the dead one lost the compare-and-swap), and that it waits for an
// unrepaired dead owner's record instead of guessing.
func TestMPMCRepairWaitsForLive(t *testing.T) {
	r, mem := newTestMPMC(t, 4, 8, WithClaimSlots(4), WithOwner(1))
	dead, _ := AttachMPMC(mem, WithOwner(2))
	other, _ := AttachMPMC(mem, WithOwner(3))
	ctx := context.Background()
	// Owner 2 records an intent for position 0, then "dies" before its
	// compare-and-swap; owner 3 claims position 0 and "dies" before
	// writing: both records cover position 0.
	if !dieAt(stepPutIntent, 1, func() { dead.Producer().Enqueue(ctx, []byte{1}) }) {
		t.Fatal("no intent")
	}
	if !dieAt(stepPutClaimed, 1, func() { other.Producer().Enqueue(ctx, []byte{2}) }) {
		t.Fatal("no claim")
	}
	// Repairing owner 2 alone cannot tell who claimed position 0.
	tctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	n, err := r.Repair(tctx, nil, 2)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || n != 0 {
		t.Fatalf("repair of owner 2 alone: %d, %v", n, err)
	}
	if r.turn(0).Load() != 0 {
		t.Fatal("position 0 touched")
	}
	// Once owner 3 is known dead too, position 0 is tombstoned, and the
	// record owner 2's repair left marked dead is finished with it.
	if n, err := r.Repair(ctx, nil, 3); n != 1 || err != nil {
		t.Fatal(n, err)
	}
	if held := r.ClaimsHeld(); held != 0 {
		t.Fatalf("%d claim records taken after owner 3's repair, want 0 (owner 2's left over)", held)
	}
	if n, err := r.Repair(ctx, nil, 2); n != 0 || err != nil {
		t.Fatal(n, err)
	}
	p, c := r.Producer(), r.Consumer()
	if err := p.Enqueue(ctx, []byte{7}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 8)
	if n, err := c.Dequeue(ctx, buf); n != 1 || buf[0] != 7 || err != nil {
		t.Fatal(n, buf[0], err)
	}
	// A live handle between intent and claim keeps its position.
	live := r.Producer()
	if !dieAt(stepPutIntent, 1, func() { live.Enqueue(ctx, []byte{8}) }) {
		t.Fatal("no intent")
	}
	if n, err := r.Repair(ctx, nil, 2, 3); n != 0 || err != nil {
		t.Fatal(n, err)
	}
}

// BenchmarkMPMCLocal is one goroutine enqueuing and dequeuing in turn: the
// instruction cost of a message with no cache line crossing cores.
func BenchmarkMPMCLocal(b *testing.B) {
	for _, claims := range []int{0, 4} {
		b.Run(fmt.Sprintf("64B/claims%d", claims), func(b *testing.B) {
			r, _ := newTestMPMC(b, 64, 64, WithClaimSlots(claims))
			p, c := r.Producer(), r.Consumer()
			msg, buf := make([]byte, 64), make([]byte, 64)
			for range b.N {
				p.TryEnqueue(msg)
				c.TryDequeue(buf)
			}
		})
	}
	b.Run("u64", func(b *testing.B) {
		r, _ := newTestMPMC(b, 64, 8)
		p, c := r.Producer(), r.Consumer()
		for i := range b.N {
			p.TryEnqueueU64(uint64(i))
			c.TryDequeueU64()
		}
	})
}

// FuzzMPMCRepair runs Repair and operations on a ring whose indices, turns
// and claim records a hostile peer wrote: no panic, no endless wait (the
// context bounds Repair), only sentinel errors.
func FuzzMPMCRepair(f *testing.F) {
	f.Add(uint64(3), uint64(1), []byte{0, 0, 0, 0, 0, 0, 0, 0}, []byte{9, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, uint8(9))
	f.Add(uint64(1<<63|2), uint64(0), []byte{1, 0, 0, 0, 0, 0, 0, 0, 8}, []byte{2, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff}, uint8(2))
	f.Fuzz(func(t *testing.T, tail, head uint64, slots, claims []byte, owner uint8) {
		r, mem := newTestMPMC(t, 4, 8, WithClaimSlots(3))
		copy(mem[dataOffset:dataOffset+4*r.stride], slots)
		for i := 0; i < len(claims) && i/16 < 3; i += 16 {
			copy(mem[dataOffset+4*r.stride+i/16*mpmcClaimSize:], claims[i:min(i+16, len(claims))])
		}
		binary.LittleEndian.PutUint64(mem[offTail:], tail)
		binary.LittleEndian.PutUint64(mem[offHead:], head)
		// An ended context: Repair makes one pass and reports whether
		// it had to wait.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := r.Repair(ctx, func([]byte) {}, uint32(owner), 1, 2); err != nil && !errors.Is(err, context.Canceled) {
			t.Fatal(err)
		}
		exerciseMPMC(t, mem, make([]byte, 8), [][]byte{make([]byte, 8), make([]byte, 2)}, make([]byte, 8))
	})
}

// TestMPMCRepairUnderTraffic abandons claims of "dead" handles (a claim
// made and never finished, exactly what a kill leaves) in the middle of
// live traffic, and repairs them while producers and consumers go on:
// Repair must never take a live handle's position, and every message must
// be delivered once or, if a dead consumer held it, handed to lost once.
func TestMPMCRepairUnderTraffic(t *testing.T) {
	const producers, consumers, n = 2, 2, 20000
	r, mem := newTestMPMC(t, 8, 16, WithClaimSlots(producers+consumers+2), WithOwner(1))
	counts := make([]atomic.Uint32, producers*n)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var pwg, cwg sync.WaitGroup
	errc := make(chan error, producers+consumers+1)
	for p := range producers {
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			errc <- produceMPMC(ctx, r.Producer(), uint64(p), 0, n, 1, func(uint64) {})
		}()
	}
	count := func(p, seq uint64) {
		if p < producers && seq < n {
			counts[p*n+seq].Add(1)
		}
	}
	for range consumers {
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			_, err := consumeMPMC(ctx, r.Consumer(), producers, 1, count)
			errc <- err
		}()
	}
	// The killer: a fresh owner each time claims one position, as a
	// producer or a consumer, and "dies"; then it repairs that owner.
	stop := make(chan struct{})
	var kwg sync.WaitGroup
	var deadClaims, repaired, lost int
	kwg.Add(1)
	go func() {
		defer kwg.Done()
		for owner := uint32(100); ; owner++ {
			select {
			case <-stop:
				return
			default:
			}
			dead, err := AttachMPMC(mem, WithOwner(owner))
			if err != nil {
				errc <- err
				return
			}
			role := uint64(roleProducer)
			if owner%2 == 1 {
				role = roleConsumer
			}
			cl, err := dead.acquireClaim(role)
			if err != nil {
				errc <- err
				return
			}
			var ok bool
			if role == roleProducer {
				_, ok, err = dead.claimPut(cl)
			} else {
				_, _, ok, err = dead.claimGet(cl, 16)
			}
			if err != nil && !errors.Is(err, ErrClosed) {
				errc <- err
				return
			}
			if ok {
				deadClaims++
			}
			k, err := r.Repair(ctx, func(msg []byte) {
				lost++
				p, seq, err := parseMPMCMsg(msg)
				if err != nil {
					t.Error(err)
					return
				}
				count(p, seq)
			}, owner)
			if err != nil {
				errc <- err
				return
			}
			repaired += k
			runtime.Gosched()
		}
	}()
	pwg.Wait()
	close(stop)
	kwg.Wait()
	r.Producer().Close()
	cwg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Fatal(err)
		}
	}
	if repaired != deadClaims {
		t.Errorf("%d dead claims, %d repaired", deadClaims, repaired)
	}
	for i := range counts {
		if c := counts[i].Load(); c != 1 {
			t.Fatalf("producer %d message %d delivered %d times", i/n, i%n, c)
		}
	}
	t.Logf("%d dead claims repaired under traffic, %d messages handed to lost", repaired, lost)
}

// TestMPMCAbort: an aborted reservation is a tombstone the consumers skip,
// the messages around it arrive in order, the slot is reused on the next
// lap, and Abort without a reservation is ErrOrder.
func TestMPMCAbort(t *testing.T) {
	r, _ := newTestMPMC(t, 4, 16, WithClaimSlots(2))
	p, c := r.Producer(), r.Consumer()
	if err := p.Abort(); !errors.Is(err, ErrOrder) {
		t.Fatalf("abort without reserve: %v", err)
	}
	buf := make([]byte, 16)
	for lap := range 3 {
		if ok, err := p.TryEnqueue([]byte{byte(lap), 1}); !ok || err != nil {
			t.Fatal(ok, err)
		}
		b, ok, err := p.TryReserve()
		if !ok || err != nil {
			t.Fatal(ok, err)
		}
		b[0] = 0xee
		if err := p.Abort(); err != nil {
			t.Fatal(err)
		}
		if ok, err := p.TryEnqueue([]byte{byte(lap), 2}); !ok || err != nil {
			t.Fatal(ok, err)
		}
		if !r.CanGet() {
			t.Fatal("CanGet false with two messages queued")
		}
		for want := byte(1); want <= 2; want++ {
			n, ok, err := c.TryDequeue(buf)
			if !ok || err != nil || n != 2 || buf[0] != byte(lap) || buf[1] != want {
				t.Fatalf("lap %d: got %v %v %v %x, want message %d", lap, n, ok, err, buf[:n], want)
			}
		}
		if _, ok, err := c.TryDequeue(buf); ok || err != nil {
			t.Fatalf("lap %d: the aborted slot was delivered (%v, %v)", lap, ok, err)
		}
		if r.Len() != 0 || !r.CanPut() {
			t.Fatalf("lap %d: Len %d, CanPut %v after draining", lap, r.Len(), r.CanPut())
		}
	}
}

// TestMPMCHeadClosedBit: a dequeue index with the closed bit set (only a
// hostile peer writes it) is ErrCorrupt for every consumer call, not a
// compare-and-swap loop that never ends (FuzzQueue found the hang).
func TestMPMCHeadClosedBit(t *testing.T) {
	r, _ := newTestMPMC(t, 4, 16, WithClaimSlots(2))
	p, c := r.Producer(), r.Consumer()
	for range 2 {
		if ok, err := p.TryEnqueue([]byte("x")); !ok || err != nil {
			t.Fatal(ok, err)
		}
	}
	r.c.head.Or(mpmcClosed)
	buf := make([]byte, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, _, err := c.TryDequeue(buf); !errors.Is(err, ErrCorrupt) {
			t.Errorf("TryDequeue: %v, want ErrCorrupt", err)
		}
		if _, _, err := c.TryPeek(); !errors.Is(err, ErrCorrupt) {
			t.Errorf("TryPeek: %v, want ErrCorrupt", err)
		}
		if _, err := c.TryDequeueBatch([][]byte{buf, buf}); !errors.Is(err, ErrCorrupt) {
			t.Errorf("TryDequeueBatch: %v, want ErrCorrupt", err)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a consumer call looped on the corrupt dequeue index")
	}
}
