package ring

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/shmkit/shmkit/futex"
)

func newTestSPSC(tb testing.TB, capacity, slotSize int) (*SPSC, []byte) {
	tb.Helper()
	size, err := SPSCSize(capacity, slotSize)
	if err != nil {
		tb.Fatal(err)
	}
	mem := alignedMem(tb, size)
	r, err := NewSPSC(mem, capacity, slotSize)
	if err != nil {
		tb.Fatal(err)
	}
	return r, mem
}

func TestSPSCSizeAndParams(t *testing.T) {
	for _, tc := range []struct{ capacity, slot, size int }{
		{1, 1, dataOffset + 32},
		{4, 8, dataOffset + 4*32},
		{8, 64, dataOffset + 8*128},
		{1024, 13, dataOffset + 1024*32},
	} {
		got, err := SPSCSize(tc.capacity, tc.slot)
		if err != nil || got != tc.size {
			t.Errorf("SPSCSize(%d, %d) = %d, %v; want %d", tc.capacity, tc.slot, got, err, tc.size)
		}
	}
	for _, tc := range []struct{ capacity, slot int }{{0, 8}, {3, 8}, {-4, 8}, {8, 0}, {8, -1}, {8, MaxSlotSize + 1}, {twice(MaxCapacity), 8}, {MaxCapacity, MaxSlotSize}} {
		if _, err := SPSCSize(tc.capacity, tc.slot); !errors.Is(err, ErrConfig) {
			t.Errorf("SPSCSize(%d, %d) error %v, want ErrConfig", tc.capacity, tc.slot, err)
		}
	}
	size, _ := SPSCSize(8, 8)
	mem := alignedMem(t, size+1)
	if _, err := NewSPSC(mem[1:], 8, 8); !errors.Is(err, ErrConfig) {
		t.Errorf("unaligned region: %v", err)
	}
	if _, err := NewSPSC(mem[:size-1], 8, 8); !errors.Is(err, ErrConfig) {
		t.Errorf("short region: %v", err)
	}
}

func TestSPSCBasic(t *testing.T) {
	r, mem := newTestSPSC(t, 4, 8)
	if r.Cap() != 4 || r.SlotSize() != 8 || r.Len() != 0 {
		t.Fatalf("cap %d slot %d len %d", r.Cap(), r.SlotSize(), r.Len())
	}
	buf := make([]byte, 8)
	if _, ok, err := r.Consumer().TryDequeue(buf); ok || err != nil {
		t.Fatalf("dequeue from empty: %v %v", ok, err)
	}
	for i := range 4 {
		if ok, err := r.Producer().TryEnqueue([]byte{byte(i), 1, 2}[:i%3+1]); !ok || err != nil {
			t.Fatalf("enqueue %d: %v %v", i, ok, err)
		}
	}
	if ok, err := r.Producer().TryEnqueue([]byte{9}); ok || err != nil {
		t.Fatalf("enqueue into full: %v %v", ok, err)
	}
	if r.Len() != 4 {
		t.Fatalf("len %d", r.Len())
	}
	if _, err := r.Producer().TryEnqueue(make([]byte, 9)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("too large: %v", err)
	}
	// A second handle attached to the same memory sees the same ring.
	c, err := AttachSPSC(mem)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Consumer().TryDequeue(buf[:0]); !errors.Is(err, ErrShortBuffer) {
		t.Fatalf("short buffer: %v", err)
	}
	for i := range 4 {
		n, ok, err := c.Consumer().TryDequeue(buf)
		if !ok || err != nil || n != i%3+1 || buf[0] != byte(i) {
			t.Fatalf("dequeue %d: n=%d ok=%v err=%v buf=%v", i, n, ok, err, buf)
		}
	}
	if _, ok, err := c.Consumer().TryDequeue(buf); ok || err != nil {
		t.Fatalf("dequeue from empty: %v %v", ok, err)
	}
	// Zero-length messages are messages.
	if ok, err := r.Producer().TryEnqueue(nil); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if n, ok, err := c.Consumer().TryDequeue(nil); !ok || err != nil || n != 0 {
		t.Fatal(n, ok, err)
	}
}

func TestSPSCBatch(t *testing.T) {
	r, _ := newTestSPSC(t, 8, 16)
	msgs := make([][]byte, 11)
	for i := range msgs {
		msgs[i] = []byte(fmt.Sprintf("m%02d", i))
	}
	n, err := r.Producer().TryEnqueueBatch(msgs)
	if n != 8 || err != nil {
		t.Fatalf("batch enqueue %d %v", n, err)
	}
	bufs := make([][]byte, 5)
	for i := range bufs {
		bufs[i] = make([]byte, 16)
	}
	got := 0
	for got < 8 {
		k, err := r.Consumer().TryDequeueBatch(bufs)
		if err != nil || k == 0 {
			t.Fatalf("batch dequeue %d %v", k, err)
		}
		for i := range k {
			if string(bufs[i]) != string(msgs[got+i]) {
				t.Fatalf("message %d = %q, want %q", got+i, bufs[i], msgs[got+i])
			}
		}
		got += k
	}
	// A message that is too large stops the batch after the ones before it.
	n, err = r.Producer().TryEnqueueBatch([][]byte{{1}, make([]byte, 17), {2}})
	if n != 1 || !errors.Is(err, ErrTooLarge) {
		t.Fatalf("batch with large message: %d %v", n, err)
	}
	// A later short buffer ends the batch early without an error.
	if _, err := r.Producer().TryEnqueueBatch([][]byte{bytes.Repeat([]byte{3}, 16)}); err != nil {
		t.Fatal(err)
	}
	small := [][]byte{make([]byte, 4), make([]byte, 4)}
	if k, err := r.Consumer().TryDequeueBatch(small); k != 1 || err != nil || !bytes.Equal(small[0], []byte{1}) {
		t.Fatalf("got %d %v %v", k, err, small[0])
	}
	if k, err := r.Consumer().TryDequeueBatch(small); k != 0 || !errors.Is(err, ErrShortBuffer) {
		t.Fatalf("got %d %v", k, err)
	}
}

func TestSPSCZeroCopy(t *testing.T) {
	r, _ := newTestSPSC(t, 4, 8)
	if err := r.Producer().Commit(1); !errors.Is(err, ErrOrder) {
		t.Fatalf("commit without reserve: %v", err)
	}
	if err := r.Consumer().Release(); !errors.Is(err, ErrOrder) {
		t.Fatalf("release without peek: %v", err)
	}
	ctx := context.Background()
	s, err := r.Producer().Reserve(ctx)
	if err != nil || len(s) != 8 {
		t.Fatal(len(s), err)
	}
	if _, err := r.Producer().Reserve(ctx); !errors.Is(err, ErrOrder) {
		t.Fatalf("double reserve: %v", err)
	}
	if _, err := r.Producer().TryEnqueue([]byte{1}); !errors.Is(err, ErrOrder) {
		t.Fatalf("enqueue while reserved: %v", err)
	}
	copy(s, "hello")
	if r.Len() != 0 {
		t.Fatal("reserved slot visible before commit")
	}
	if err := r.Producer().Commit(5); err != nil {
		t.Fatal(err)
	}
	v, err := r.Producer().ReserveBatch(ctx, 10)
	if err != nil || len(v) != 3 {
		t.Fatal(len(v), err)
	}
	for i := range v {
		v[i][0] = byte('a' + i)
	}
	if err := r.Producer().CommitBatch([]int{1, 1, 9}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("commit length over slot: %v", err)
	}
	if err := r.Producer().CommitBatch([]int{1, 1}); err != nil {
		t.Fatal(err)
	}
	if r.Len() != 3 {
		t.Fatalf("len %d", r.Len())
	}
	p, err := r.Consumer().Peek(ctx)
	if err != nil || string(p) != "hello" {
		t.Fatalf("peek %q %v", p, err)
	}
	if _, err := r.Consumer().Peek(ctx); !errors.Is(err, ErrOrder) {
		t.Fatalf("double peek: %v", err)
	}
	if err := r.Consumer().Release(); err != nil {
		t.Fatal(err)
	}
	pv, err := r.Consumer().PeekBatch(ctx, 8)
	if err != nil || len(pv) != 2 || string(pv[0]) != "a" || string(pv[1]) != "b" {
		t.Fatalf("peek batch %q %v", pv, err)
	}
	if err := r.Consumer().Release(); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := r.Consumer().TryPeek(); ok || err != nil {
		t.Fatal(ok, err)
	}
	if r.Len() != 0 {
		t.Fatalf("len %d", r.Len())
	}
}

func TestSPSCCloseDrains(t *testing.T) {
	r, _ := newTestSPSC(t, 4, 8)
	ctx := context.Background()
	for i := range 3 {
		if err := r.Producer().Enqueue(ctx, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Producer().Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Producer().Close(); err != nil {
		t.Fatal("second close:", err)
	}
	if err := r.Producer().Enqueue(ctx, []byte{9}); !errors.Is(err, ErrClosed) {
		t.Fatalf("enqueue after close: %v", err)
	}
	if _, err := r.Producer().Reserve(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("reserve after close: %v", err)
	}
	buf := make([]byte, 8)
	for i := range 3 {
		n, err := r.Consumer().Dequeue(ctx, buf)
		if err != nil || n != 1 || buf[0] != byte(i) {
			t.Fatalf("drain %d: %d %v", i, n, err)
		}
	}
	if _, err := r.Consumer().Dequeue(ctx, buf); !errors.Is(err, ErrClosed) {
		t.Fatalf("dequeue after drain: %v", err)
	}
	if _, err := r.Consumer().Peek(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("peek after drain: %v", err)
	}
	if _, err := r.Consumer().DequeueBatch(ctx, [][]byte{buf}); !errors.Is(err, ErrClosed) {
		t.Fatalf("batch after drain: %v", err)
	}
}

// parked waits until a waiter has counted itself a sleeper on e (it is in
// the futex park, or about to re-check and enter it): the observable fact
// that a blocking call is blocked. A spinning waiter has no such state.
func parked(t *testing.T, e *futex.Event, s futex.Strategy) {
	t.Helper()
	if s == futex.BusySpin || s == futex.Yield {
		return
	}
	deadline := time.Now().Add(time.Minute) // hang detector
	for e.Sleepers() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("waiter never parked")
		}
		time.Sleep(50 * time.Microsecond)
	}
}

func TestSPSCBlockingContext(t *testing.T) {
	for _, s := range []futex.Strategy{futex.SpinThenPark, futex.Park, futex.BusySpin} {
		size, _ := SPSCSize(1, 8)
		// Recheck -1: a missing wake-up must hang, not be rescued by
		// the bounded park.
		r, err := NewSPSC(alignedMem(t, size), 1, 8, WithWaiter(futex.Waiter{Strategy: s, Recheck: -1}))
		if err != nil {
			t.Fatal(err)
		}
		p, c := r.Producer(), r.Consumer()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		if _, err := c.Dequeue(ctx, make([]byte, 8)); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%v: dequeue from empty: %v", s, err)
		}
		cancel()
		if err := p.Enqueue(context.Background(), []byte{1}); err != nil {
			t.Fatal(err)
		}
		// Cancel reaches a producer blocked on a full ring.
		ctx, cancel = context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- p.Enqueue(ctx, []byte{2}) }()
		parked(t, &r.c.notFull, s)
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("%v: enqueue into full: %v", s, err)
		}
		// Close wakes a consumer parked on an empty ring.
		buf := make([]byte, 8)
		if _, err := c.Dequeue(context.Background(), buf); err != nil {
			t.Fatal(err)
		}
		go func() { _, err := c.Dequeue(context.Background(), buf); errc <- err }()
		parked(t, &r.c.notEmpty, s)
		p.Close()
		if err := <-errc; !errors.Is(err, ErrClosed) {
			t.Fatalf("%v: blocked dequeue after close: %v", s, err)
		}
	}
}

// TestSPSCClosedLaggingTail is the state a producer killed between its
// publication and a tail store used to leave, followed by a Close: the
// shared tail one behind the consumer's head. Dequeue and Peek must
// report ErrClosed at once, and a blocking call on a live ring in that state
// must end with its context.
func TestSPSCClosedLaggingTail(t *testing.T) {
	r, mem := newTestSPSC(t, 4, 8)
	p, c := r.Producer(), r.Consumer()
	if err := p.Enqueue(context.Background(), []byte{1}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 8)
	if _, err := c.Dequeue(context.Background(), buf); err != nil {
		t.Fatal(err)
	}
	setIndex(mem, offTail, 0) // one behind head 1
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := c.Dequeue(ctx, buf); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("dequeue on an open ring with a lagging tail: %v", err)
	}
	// A producer that attaches now finds its place from the seq words.
	r2, _ := AttachSPSC(mem)
	if err := r2.Producer().Close(); err != nil {
		t.Fatal(err)
	}
	setIndex(mem, offTail, 0)
	ctx, cancel = context.WithTimeout(context.Background(), time.Minute) // hang detector
	defer cancel()
	if _, err := c.Dequeue(ctx, buf); !errors.Is(err, ErrClosed) {
		t.Fatalf("dequeue: %v, want ErrClosed", err)
	}
	if _, err := c.Peek(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("peek: %v, want ErrClosed", err)
	}
	if ctx.Err() != nil {
		t.Fatal("a closed, drained ring was waited on")
	}
}

// TestSPSCGoroutines streams sequence-numbered messages between two
// goroutines through every API pair, capacity 1, 2 and 64.
func TestSPSCGoroutines(t *testing.T) {
	const n = 20000
	for _, capacity := range []int{1, 2, 64} {
		for _, mode := range []string{"copy", "batch", "zerocopy"} {
			t.Run(fmt.Sprintf("%s/cap%d", mode, capacity), func(t *testing.T) {
				r, _ := newTestSPSC(t, capacity, 16)
				ctx := context.Background()
				errc := make(chan error, 1)
				go func() { errc <- produceSeq(ctx, r, mode, 0, n) }()
				next, err := consumeSeq(ctx, r, mode, 0)
				if err != nil {
					t.Fatal(err)
				}
				if next != n {
					t.Fatalf("received %d messages, want %d", next, n)
				}
				if err := <-errc; err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

// seqMsg writes message number i: its number and a checksum-like tail so
// torn messages are detected. Messages vary in length (8 to 16 bytes).
func seqMsg(b []byte, i uint64) []byte {
	n := 8 + int(i%9)
	b = b[:n]
	binary.LittleEndian.PutUint64(b, i)
	for j := 8; j < n; j++ {
		b[j] = byte(i) ^ byte(j)
	}
	return b
}

func checkSeq(b []byte, want uint64) error {
	if len(b) != 8+int(want%9) || binary.LittleEndian.Uint64(b) != want {
		return fmt.Errorf("message %d: got % x", want, b)
	}
	for j := 8; j < len(b); j++ {
		if b[j] != byte(want)^byte(j) {
			return fmt.Errorf("message %d torn: % x", want, b)
		}
	}
	return nil
}

// produceSeq enqueues messages from..to-1 and closes the ring.
func produceSeq(ctx context.Context, r *SPSC, mode string, from, to uint64) error {
	const batch = 7
	bufs := make([][]byte, batch)
	for i := range bufs {
		bufs[i] = make([]byte, 16)
	}
	lens := make([]int, batch)
	for i := from; i < to; {
		switch mode {
		case "copy":
			if err := r.Producer().Enqueue(ctx, seqMsg(bufs[0], i)); err != nil {
				return err
			}
			i++
		case "batch":
			k := min(batch, to-i)
			msgs := make([][]byte, k)
			for j := range msgs {
				msgs[j] = seqMsg(bufs[j], i+uint64(j))
			}
			n, err := r.Producer().EnqueueBatch(ctx, msgs)
			if err != nil {
				return err
			}
			i += uint64(n)
		case "zerocopy":
			v, err := r.Producer().ReserveBatch(ctx, int(min(batch, to-i)))
			if err != nil {
				return err
			}
			for j := range v {
				lens[j] = len(seqMsg(v[j], i+uint64(j)))
			}
			if err := r.Producer().CommitBatch(lens[:len(v)]); err != nil {
				return err
			}
			i += uint64(len(v))
		}
	}
	return r.Producer().Close()
}

// consumeSeq receives messages numbered from on until the ring is closed
// and drained, and returns the number after the last one.
func consumeSeq(ctx context.Context, r *SPSC, mode string, next uint64) (uint64, error) {
	bufs := make([][]byte, 5)
	for i := range bufs {
		bufs[i] = make([]byte, 16)
	}
	for {
		switch mode {
		case "copy":
			n, err := r.Consumer().Dequeue(ctx, bufs[0][:16])
			if errors.Is(err, ErrClosed) {
				return next, nil
			}
			if err != nil {
				return next, err
			}
			if err := checkSeq(bufs[0][:n], next); err != nil {
				return next, err
			}
			next++
		case "batch":
			k, err := r.Consumer().DequeueBatch(ctx, bufs)
			if errors.Is(err, ErrClosed) {
				return next, nil
			}
			if err != nil {
				return next, err
			}
			for j := range k {
				if err := checkSeq(bufs[j], next); err != nil {
					return next, err
				}
				next++
			}
		case "zerocopy":
			v, err := r.Consumer().PeekBatch(ctx, 5)
			if errors.Is(err, ErrClosed) {
				return next, nil
			}
			if err != nil {
				return next, err
			}
			for _, m := range v {
				if err := checkSeq(m, next); err != nil {
					return next, err
				}
				next++
			}
			if err := r.Consumer().Release(); err != nil {
				return next, err
			}
		}
	}
}
