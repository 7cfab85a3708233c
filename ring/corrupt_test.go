package ring

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"
	"time"
)

// TestAttachValidation corrupts each header field in turn.
func TestAttachValidation(t *testing.T) {
	_, mem := newTestSPSC(t, 8, 8)
	if _, err := AttachSPSC(mem); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		off  int
		val  uint32
		want error
	}{
		{"magic", offMagic, 1, ErrBadMagic},
		{"kind", offKind, KindMPMC, ErrBadMagic},
		{"version", offVersion, 99, ErrVersion},
		{"slot size", offSlotSize, 9, ErrCorrupt},
		{"capacity", offCapacity, 16, ErrCorrupt},
		{"check", offCheck, 0, ErrCorrupt},
	} {
		bad := alignedMem(t, len(mem))
		copy(bad, mem)
		binary.LittleEndian.PutUint32(bad[tc.off:], tc.val)
		if _, err := AttachSPSC(bad); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := AttachSPSC(mem[:len(mem)-1]); !errors.Is(err, ErrConfig) {
		t.Errorf("short region: %v", err)
	}
	if _, err := AttachSPSC(mem[:10]); !errors.Is(err, ErrConfig) {
		t.Errorf("tiny region: %v", err)
	}
	if _, err := AttachByteRing(mem); !errors.Is(err, ErrBadMagic) {
		t.Errorf("SPSC as byte ring: %v", err)
	}
	if _, err := AttachMPMC(mem); !errors.Is(err, ErrBadMagic) {
		t.Errorf("SPSC as MPMC: %v", err)
	}
}

func setIndex(mem []byte, off int, v uint64) { binary.LittleEndian.PutUint64(mem[off:], v) }

// TestCorruptIndices gives each ring impossible indices and lengths; every
// call, blocking ones included, must return ErrCorrupt promptly.
func TestCorruptIndices(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	buf := make([]byte, 64)
	want := func(name string, err error) {
		t.Helper()
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}

	// SPSC: a seq word that no producer writes (neither the message's
	// index+1, nor the previous lap's, nor 0 before the first lap).
	r, mem := newTestSPSC(t, 4, 8)
	binary.LittleEndian.PutUint64(mem[dataOffset:], 77)
	_, err := r.Consumer().Dequeue(ctx, buf)
	want("spsc dequeue, impossible seq", err)
	_, err = r.Consumer().Peek(ctx)
	want("spsc peek, impossible seq", err)
	_, err = r.Consumer().DequeueBatch(ctx, [][]byte{buf})
	want("spsc dequeue batch, impossible seq", err)

	// SPSC: a head beyond the tail, seen by a producer that finds the ring
	// full, and by a consumer that attaches at it.
	r, mem = newTestSPSC(t, 4, 8)
	for range 4 {
		if err := r.Producer().Enqueue(ctx, []byte{1}); err != nil {
			t.Fatal(err)
		}
	}
	setIndex(mem, offHead, 100)
	want("spsc enqueue, head beyond tail", r.Producer().Enqueue(ctx, []byte{1}))
	// A consumer that attaches at that head cannot tell it from an empty
	// ring (its slot holds an older lap's message): it waits, and its
	// context ends the wait.
	r2, _ := AttachSPSC(mem)
	short, stop := context.WithTimeout(ctx, 20*time.Millisecond)
	_, err = r2.Consumer().Dequeue(short, buf)
	stop()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("spsc dequeue at a head beyond tail: %v, want the context's end", err)
	}

	// SPSC: a published slot whose length is over the slot size.
	r, mem = newTestSPSC(t, 4, 8)
	if err := r.Producer().Enqueue(ctx, []byte{1}); err != nil {
		t.Fatal(err)
	}
	binary.LittleEndian.PutUint32(mem[dataOffset+slotLenOff:], 9)
	_, err = r.Consumer().Dequeue(ctx, buf)
	want("spsc slot length", err)
	_, err = r.Consumer().Peek(ctx)
	want("spsc peek slot length", err)

	b, bmem := newTestByteRing(t, 128)
	setIndex(bmem, offTail, 16)
	putRecHeader(b.data, 0, 200, recData) // past the published bytes
	_, err = b.Consumer().Dequeue(ctx, buf)
	want("byte ring length", err)
	putRecHeader(b.data, 0, 1, 77) // unknown tag
	_, err = b.Consumer().Peek(ctx)
	want("byte ring tag", err)
	setIndex(bmem, offHead, 4) // unaligned, seen by a consumer that attaches
	b2, _ := AttachByteRing(bmem)
	_, err = b2.Consumer().Dequeue(ctx, buf)
	want("byte ring unaligned head", err)
	setIndex(bmem, offTail, 5)
	setIndex(bmem, offHead, 0)
	b3, _ := AttachByteRing(bmem)
	want("byte ring unaligned tail", b3.Producer().Enqueue(ctx, []byte{1}))
	setIndex(bmem, offTail, 1000)
	b4, _ := AttachByteRing(bmem)
	want("byte ring distance", b4.Producer().Enqueue(ctx, []byte{1}))

	if ctx.Err() != nil {
		t.Fatal("a corrupt ring was waited on until the deadline")
	}
}
