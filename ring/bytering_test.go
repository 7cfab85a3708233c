package ring

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
)

func newTestByteRing(tb testing.TB, capacity int) (*ByteRing, []byte) {
	tb.Helper()
	size, err := ByteRingSize(capacity)
	if err != nil {
		tb.Fatal(err)
	}
	mem := alignedMem(tb, size)
	r, err := NewByteRing(mem, capacity)
	if err != nil {
		tb.Fatal(err)
	}
	return r, mem
}

func TestByteRingParams(t *testing.T) {
	if n, err := ByteRingSize(4096); n != dataOffset+4096 || err != nil {
		t.Fatal(n, err)
	}
	for _, c := range []int{0, 32, 100, -64, twice(MaxByteRing)} {
		if _, err := ByteRingSize(c); !errors.Is(err, ErrConfig) {
			t.Errorf("ByteRingSize(%d): %v", c, err)
		}
	}
	r, mem := newTestByteRing(t, 256)
	if r.Cap() != 256 || r.MaxRecord() != 120 {
		t.Fatal(r.Cap(), r.MaxRecord())
	}
	if _, err := AttachSPSC(mem); !errors.Is(err, ErrBadMagic) {
		t.Fatalf("attach byte ring as SPSC: %v", err)
	}
	if _, err := AttachByteRing(mem); err != nil {
		t.Fatal(err)
	}
	if err := r.Producer().Enqueue(context.Background(), make([]byte, 121)); !errors.Is(err, ErrTooLarge) {
		t.Fatal(err)
	}
}

func TestByteRingBasic(t *testing.T) {
	r, _ := newTestByteRing(t, 128)
	ctx := context.Background()
	buf := make([]byte, 64)
	if _, ok, err := r.Consumer().TryDequeue(buf); ok || err != nil {
		t.Fatal(ok, err)
	}
	// 56 bytes take 8+56 = 64: two fill the ring.
	a := bytes.Repeat([]byte{'a'}, 56)
	for range 2 {
		if ok, err := r.Producer().TryEnqueue(a); !ok || err != nil {
			t.Fatal(ok, err)
		}
	}
	if ok, err := r.Producer().TryEnqueue(nil); ok || err != nil {
		t.Fatal("record fitted into a full ring:", ok, err)
	}
	if r.Len() != 128 {
		t.Fatalf("len %d", r.Len())
	}
	if _, _, err := r.Consumer().TryDequeue(buf[:10]); !errors.Is(err, ErrShortBuffer) {
		t.Fatal(err)
	}
	for range 2 {
		n, err := r.Consumer().Dequeue(ctx, buf)
		if err != nil || !bytes.Equal(buf[:n], a) {
			t.Fatal(n, err)
		}
	}
	// An empty record takes 8 bytes: the write position moves to 8.
	if err := r.Producer().Enqueue(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if n, err := r.Consumer().Dequeue(ctx, buf); n != 0 || err != nil {
		t.Fatal(n, err)
	}
	if err := r.Producer().Enqueue(ctx, a); err != nil { // 8..72
		t.Fatal(err)
	}
	if n, err := r.Consumer().Dequeue(ctx, buf); n != 56 || err != nil {
		t.Fatal(n, err)
	}
	// The write position is now 72: a 56-byte record needs 64, only 56
	// remain before the end, so a padding record fills them and the record
	// starts at 0.
	if err := r.Producer().Enqueue(ctx, a); err != nil {
		t.Fatal(err)
	}
	if r.Len() != 56+64 {
		t.Fatalf("len with padding %d", r.Len())
	}
	p, err := r.Consumer().Peek(ctx)
	if err != nil || !bytes.Equal(p, a) || &p[0] != &r.data[8] {
		t.Fatalf("peek after padding: %q %v", p, err)
	}
	if err := r.Consumer().Release(); err != nil {
		t.Fatal(err)
	}
	if r.Len() != 0 {
		t.Fatalf("len %d", r.Len())
	}
	// Zero-copy reserve with a shorter commit, and an empty record.
	b, err := r.Producer().Reserve(ctx, 32)
	if err != nil || len(b) != 32 {
		t.Fatal(len(b), err)
	}
	if _, err := r.Producer().Reserve(ctx, 1); !errors.Is(err, ErrOrder) {
		t.Fatal(err)
	}
	copy(b, "xyz")
	if err := r.Producer().Commit(33); !errors.Is(err, ErrTooLarge) {
		t.Fatal(err)
	}
	if err := r.Producer().Commit(3); err != nil {
		t.Fatal(err)
	}
	if err := r.Producer().Enqueue(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if p, ok, err := r.Consumer().TryPeek(); !ok || err != nil || string(p) != "xyz" {
		t.Fatal(p, ok, err)
	}
	if _, _, err := r.Consumer().TryPeek(); !errors.Is(err, ErrOrder) {
		t.Fatal(err)
	}
	r.Consumer().Release()
	if n, err := r.Consumer().Dequeue(ctx, buf); n != 0 || err != nil {
		t.Fatal(n, err)
	}
	if err := r.Producer().Commit(0); !errors.Is(err, ErrOrder) {
		t.Fatal(err)
	}
	if err := r.Consumer().Release(); !errors.Is(err, ErrOrder) {
		t.Fatal(err)
	}
	r.Producer().Enqueue(ctx, []byte("last"))
	r.Producer().Close()
	if err := r.Producer().Enqueue(ctx, a); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
	if n, err := r.Consumer().Dequeue(ctx, buf); err != nil || string(buf[:n]) != "last" {
		t.Fatal(n, err)
	}
	if _, err := r.Consumer().Dequeue(ctx, buf); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
}

// byteMsg builds record i: a length that varies from 0 to max, its number
// and a pattern.
func byteMsg(b []byte, i uint64, max int) []byte {
	n := int(i*7919) % (max + 1)
	b = b[:n]
	for j := range b {
		b[j] = byte(i) + byte(j)
	}
	if n >= 8 {
		binary.LittleEndian.PutUint64(b, i)
	}
	return b
}

func checkByteMsg(b []byte, i uint64, max int) error {
	want := byteMsg(make([]byte, max), i, max)
	if !bytes.Equal(b, want) {
		return fmt.Errorf("record %d: got %d bytes % x..., want %d", i, len(b), b[:min(len(b), 12)], len(want))
	}
	return nil
}

// produceBytes writes records 0..n-1 (alternating Write and Reserve/Commit)
// and closes the ring.
func produceBytes(ctx context.Context, r *ByteRing, n uint64, max int) error {
	buf := make([]byte, max)
	for i := range n {
		m := byteMsg(buf, i, max)
		if i%2 == 0 {
			if err := r.Producer().Enqueue(ctx, m); err != nil {
				return err
			}
			continue
		}
		b, err := r.Producer().Reserve(ctx, len(m))
		if err != nil {
			return err
		}
		copy(b, m)
		if err := r.Producer().Commit(len(m)); err != nil {
			return err
		}
	}
	return r.Producer().Close()
}

// consumeBytes reads records until closed and drained and returns the count.
func consumeBytes(ctx context.Context, r *ByteRing, max int) (uint64, error) {
	buf := make([]byte, max)
	for i := uint64(0); ; i++ {
		var rec []byte
		if i%3 == 0 {
			n, err := r.Consumer().Dequeue(ctx, buf)
			if errors.Is(err, ErrClosed) {
				return i, nil
			}
			if err != nil {
				return i, err
			}
			rec = buf[:n]
		} else {
			p, err := r.Consumer().Peek(ctx)
			if errors.Is(err, ErrClosed) {
				return i, nil
			}
			if err != nil {
				return i, err
			}
			rec = p
		}
		if err := checkByteMsg(rec, i, max); err != nil {
			return i, err
		}
		if i%3 != 0 {
			if err := r.Consumer().Release(); err != nil {
				return i, err
			}
		}
	}
}

func TestByteRingGoroutines(t *testing.T) {
	for _, capacity := range []int{64, 256, 4096} {
		t.Run(fmt.Sprint(capacity), func(t *testing.T) {
			r, _ := newTestByteRing(t, capacity)
			const n = 20000
			ctx := context.Background()
			errc := make(chan error, 1)
			go func() { errc <- produceBytes(ctx, r, n, r.MaxRecord()) }()
			got, err := consumeBytes(ctx, r, r.MaxRecord())
			if err != nil {
				t.Fatal(err)
			}
			if got != n {
				t.Fatalf("got %d records, want %d", got, n)
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
		})
	}
}
