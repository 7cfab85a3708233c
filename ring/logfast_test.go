package ring

import (
	"errors"
	"testing"
)

// TestLogShortBufferKeepsPending: a reader that learned of dropped
// messages from an aborted claim's padding, then met a message longer
// than its buffer, still reports the drops with that message when it
// reads it again (restore undoes the read, pending included).
func TestLogShortBufferKeepsPending(t *testing.T) {
	l, _ := newTestLog(t, 1024, 1, LogDropNewest)
	w := l.Writer()
	r, err := l.Join(1)
	if err != nil {
		t.Fatal(err)
	}
	w.Drop() // message 0: dropped, counted missed
	if _, ok, err := w.TryClaim(10); !ok || err != nil {
		t.Fatalf("TryClaim: %v %v", ok, err)
	}
	if err := w.Abort(); err != nil { // message 1: aborted, not counted
		t.Fatal(err)
	}
	buf := make([]byte, 200)
	if _, ok, err := r.TryRead(buf); ok || err != nil {
		t.Fatalf("TryRead over the padding alone: %v %v", ok, err)
	}
	if ok, err := w.TryWrite(make([]byte, 100)); !ok || err != nil {
		t.Fatalf("TryWrite: %v %v", ok, err)
	}
	if _, ok, err := r.TryRead(buf[:10]); ok || !errors.Is(err, ErrShortBuffer) {
		t.Fatalf("TryRead into 10 bytes: %v %v, want ErrShortBuffer", ok, err)
	}
	n, _, _, missed, ok, err := r.CopyNext(buf)
	if !ok || err != nil || n != 100 || missed != 1 {
		t.Fatalf("CopyNext: %d bytes, missed %d, %v %v; want 100 bytes, missed 1", n, missed, ok, err)
	}
	if r.Missed() != 1 {
		t.Fatalf("Missed() = %d, want 1", r.Missed())
	}
}

// FuzzLogCopy: the copying fast path (CopyFast inside CopyNext, under a
// policy that takes it) and the batch read, over arbitrary bytes in the
// data area: never a panic, never more than MaxRecord or the buffer.
func FuzzLogCopy(f *testing.F) {
	f.Add([]byte{}, uint64(0), uint64(0), uint16(64))
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 64, 0, 0, 0, 1, 0}, uint64(0), uint64(0), uint16(64))
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 200, 0, 0, 0, 0, 1, 0, 0, 1, 0}, uint64(0), uint64(3), uint16(8))
	f.Fuzz(func(t *testing.T, data []byte, start, seq uint64, bufLen uint16) {
		l, mem := newTestLog(t, 1024, 1, LogBlock)
		copy(mem[len(mem)-1024:], data)
		r, _ := l.Join(1)
		start &^= 31
		r.next, r.last, r.published, r.seq, r.synced = start, start, start, seq, true
		r.setQuick()
		l.c.tail.Store(start + 1024)
		buf := make([]byte, bufLen)
		for range 50 {
			n, _, _, _, ok, err := r.CopyNext(buf)
			if err != nil || !ok {
				break
			}
			if n > l.MaxRecord() || n > len(buf) {
				t.Fatalf("copied %d bytes (record limit %d, buffer %d)", n, l.MaxRecord(), len(buf))
			}
		}
		r.next, r.last, r.seq = start, start, seq
		r.setQuick()
		bufs := [][]byte{buf, make([]byte, 512), buf}
		if n, _ := r.TryReadBatch(bufs, nil); n > len(bufs) {
			t.Fatalf("batch of %d", n)
		}
	})
}
