package ring

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

func newTestMPMC(tb testing.TB, capacity, slotSize int) (*MPMC, []byte) {
	tb.Helper()
	size, err := MPMCSize(capacity, slotSize)
	if err != nil {
		tb.Fatal(err)
	}
	mem := alignedMem(tb, size)
	r, err := NewMPMC(mem, capacity, slotSize)
	if err != nil {
		tb.Fatal(err)
	}
	return r, mem
}

func TestMPMCBasic(t *testing.T) {
	if n, err := MPMCSize(8, 64); n != dataOffset+8*80 || err != nil {
		t.Fatal(n, err)
	}
	for _, c := range []int{0, 3, -1} {
		if _, err := MPMCSize(c, 8); !errors.Is(err, ErrConfig) {
			t.Error(c, err)
		}
	}
	r, mem := newTestMPMC(t, 4, 8)
	buf := make([]byte, 8)
	if _, ok, err := r.TryDequeue(buf); ok || err != nil {
		t.Fatal(ok, err)
	}
	for i := range 4 {
		if ok, err := r.TryEnqueue([]byte{byte(i), 7}[:1+i%2]); !ok || err != nil {
			t.Fatal(i, ok, err)
		}
	}
	if ok, err := r.TryEnqueue([]byte{1}); ok || err != nil {
		t.Fatal("enqueue into full:", ok, err)
	}
	if _, err := r.TryEnqueue(make([]byte, 9)); !errors.Is(err, ErrTooLarge) {
		t.Fatal(err)
	}
	if r.Len() != 4 || r.Cap() != 4 || r.SlotSize() != 8 {
		t.Fatal(r.Len(), r.Cap(), r.SlotSize())
	}
	c, err := AttachMPMC(mem)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.TryDequeue(buf[:0]); !errors.Is(err, ErrShortBuffer) {
		t.Fatal(err)
	}
	for i := range 4 {
		n, ok, err := c.TryDequeue(buf)
		if !ok || err != nil || n != 1+i%2 || buf[0] != byte(i) {
			t.Fatal(i, n, ok, err)
		}
	}
	// Batches wrap around the ring.
	msgs := [][]byte{{1}, {2}, {3}, {4}, {5}, {6}}
	if n, err := r.TryEnqueueBatch(msgs); n != 4 || err != nil {
		t.Fatal(n, err)
	}
	bufs := [][]byte{make([]byte, 8), make([]byte, 8), make([]byte, 8)}
	if n, err := c.TryDequeueBatch(bufs); n != 3 || err != nil || bufs[2][0] != 3 {
		t.Fatal(n, err)
	}
	if n, err := r.EnqueueBatch(context.Background(), msgs[4:]); n != 2 || err != nil {
		t.Fatal(n, err)
	}
	r.Close()
	if err := r.Enqueue(context.Background(), []byte{1}); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
	for _, want := range []byte{4, 5, 6} {
		if n, err := c.Dequeue(context.Background(), buf); n != 1 || err != nil || buf[0] != want {
			t.Fatal(n, err, buf[0], want)
		}
	}
	if _, err := c.Dequeue(context.Background(), buf); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
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

// produceMPMC enqueues messages 0..n-1 of producer p, in batches of batch.
func produceMPMC(ctx context.Context, r *MPMC, p, n uint64, batch int) error {
	bufs := make([][]byte, batch)
	msgs := make([][]byte, batch)
	for i := range bufs {
		bufs[i] = make([]byte, 16)
	}
	for seq := uint64(0); seq < n; {
		k := int(min(uint64(batch), n-seq))
		for j := range k {
			msgs[j] = mpmcMsg(bufs[j], p, seq+uint64(j))
		}
		done, err := r.EnqueueBatch(ctx, msgs[:k])
		if err != nil {
			return err
		}
		seq += uint64(done)
	}
	return nil
}

// consumeMPMC dequeues until closed and drained, checking per-producer
// order, and calls seen for every message.
func consumeMPMC(ctx context.Context, r *MPMC, producers int, batch int, seen func(p, seq uint64)) (uint64, error) {
	next := make([]uint64, producers) // lowest sequence number still allowed
	bufs := make([][]byte, batch)
	for i := range bufs {
		bufs[i] = make([]byte, 16)
	}
	var count uint64
	for {
		k, err := r.DequeueBatch(ctx, bufs)
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
	for _, tc := range []struct{ prod, cons, capacity, batch int }{
		{1, 1, 1, 1}, {2, 2, 2, 1}, {4, 4, 8, 3}, {3, 2, 64, 16},
	} {
		t.Run(fmt.Sprintf("%dx%d/cap%d/batch%d", tc.prod, tc.cons, tc.capacity, tc.batch), func(t *testing.T) {
			r, _ := newTestMPMC(t, tc.capacity, 16)
			const n = 5000
			counts := make([]atomic.Uint32, tc.prod*n)
			ctx := context.Background()
			var wg, pwg sync.WaitGroup
			errc := make(chan error, tc.prod+tc.cons)
			for p := range tc.prod {
				pwg.Add(1)
				go func() {
					defer pwg.Done()
					errc <- produceMPMC(ctx, r, uint64(p), n, tc.batch)
				}()
			}
			for range tc.cons {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, err := consumeMPMC(ctx, r, tc.prod, tc.batch, func(p, seq uint64) {
						if seq < n {
							counts[int(p)*n+int(seq)].Add(1)
						}
					})
					errc <- err
				}()
			}
			pwg.Wait()
			r.Close()
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
