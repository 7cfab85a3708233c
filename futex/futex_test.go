package futex

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"
)

func TestEventLayout(t *testing.T) {
	var e Event
	if got := unsafe.Sizeof(e); got != EventSize {
		t.Fatalf("Sizeof(Event) = %d, want %d", got, EventSize)
	}
	if off := unsafe.Offsetof(e.seq); off != 0 {
		t.Fatalf("seq at %d, want 0", off)
	}
	if off := unsafe.Offsetof(e.sleepers); off != 4 {
		t.Fatalf("sleepers at %d, want 4", off)
	}
}

func TestEventAtChecks(t *testing.T) {
	buf := make([]byte, 16)
	if _, err := EventAt(buf[:7]); !errors.Is(err, ErrUnaligned) {
		t.Fatalf("short: got %v", err)
	}
	base := uintptr(unsafe.Pointer(&buf[0]))
	mis := 1
	if base%4 == 3 {
		mis = 2
	}
	if _, err := EventAt(buf[mis:]); !errors.Is(err, ErrUnaligned) {
		t.Fatalf("misaligned: got %v", err)
	}
	aligned := int((4 - base%4) % 4)
	if _, err := EventAt(buf[aligned:]); err != nil {
		t.Fatalf("aligned: %v", err)
	}
}

func TestParseStrategy(t *testing.T) {
	for s := SpinThenPark; s <= Park; s++ {
		got, err := ParseStrategy(s.String())
		if err != nil || got != s {
			t.Fatalf("ParseStrategy(%q) = %v, %v", s.String(), got, err)
		}
	}
	if _, err := ParseStrategy("nap"); err == nil {
		t.Fatal("ParseStrategy accepted nonsense")
	}
}

func TestWaitValueChanged(t *testing.T) {
	var w atomic.Uint32
	w.Store(5)
	// The word does not hold 4: Wait must return at once with nil (EAGAIN).
	if err := Wait(&w, 4, time.Hour); err != nil {
		t.Fatal(err)
	}
}

func TestWakeNobody(t *testing.T) {
	var w atomic.Uint32
	n, err := Wake(&w, 10)
	if err != nil || n != 0 {
		t.Fatalf("Wake = %d, %v", n, err)
	}
	if n, err := Wake(&w, 0); err != nil || n != 0 {
		t.Fatalf("Wake(0) = %d, %v", n, err)
	}
}

// TestWaitTimeout checks that a timed wait never returns early and reports
// ErrTimeout; how late it returns is logged, not asserted.
func TestWaitTimeout(t *testing.T) {
	var w atomic.Uint32
	for _, d := range []time.Duration{0, time.Millisecond, 20 * time.Millisecond} {
		start := time.Now()
		err := Wait(&w, 0, d)
		took := time.Since(start)
		if !errors.Is(err, ErrTimeout) {
			t.Fatalf("Wait(%v) = %v, want ErrTimeout", d, err)
		}
		if took < d {
			t.Fatalf("Wait(%v) returned after %v: early", d, took)
		}
		t.Logf("Wait(%v) took %v (late by %v)", d, took, took-d)
	}
}
