package ring

import (
	"errors"
	"runtime/debug"
	"testing"
	"unsafe"

	"github.com/shmkit/shmkit/internal/memfd"
	"github.com/shmkit/shmkit/internal/proctest"
)

// TestLogReadView: with WithReadView, the records a reader takes in place
// are slices of the read-only view (a write into one faults), while the
// writer, the copying reads and Release go on through the writable
// mapping; a view that is too short or shows other memory is refused.
func TestLogReadView(t *testing.T) {
	const capacity, readers = 4096, 2
	size, err := LogSize(capacity, readers)
	if err != nil {
		t.Fatal(err)
	}
	mem, f := proctest.Memfd(t, size)
	ro, err := memfd.Map(f, size, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = memfd.Unmap(ro) })

	if _, err := NewLog(mem, capacity, readers, LogBlock, WithReadView(ro[:size-1])); !errors.Is(err, ErrConfig) {
		t.Fatalf("NewLog with a short view: %v, want ErrConfig", err)
	}
	other := alignedMem(t, size)
	if _, err := NewLog(mem, capacity, readers, LogBlock, WithReadView(other)); !errors.Is(err, ErrConfig) {
		t.Fatalf("NewLog with a view of other memory: %v, want ErrConfig", err)
	}
	wl, err := NewLog(mem, capacity, readers, LogBlock, WithReadView(ro))
	if err != nil {
		t.Fatal(err)
	}
	rl, err := AttachLog(mem, WithReadView(ro)) // another process's handle
	if err != nil {
		t.Fatal(err)
	}
	if _, err := AttachLog(mem, WithReadView(other)); !errors.Is(err, ErrConfig) {
		t.Fatalf("AttachLog with a view of other memory: %v, want ErrConfig", err)
	}
	zc, err := rl.Join(1)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := wl.Join(2)
	if err != nil {
		t.Fatal(err)
	}
	inView := func(b []byte) bool {
		p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
		lo := uintptr(unsafe.Pointer(&ro[0]))
		return p >= lo && p+uintptr(len(b)) <= lo+uintptr(len(ro))
	}
	w := wl.Writer()
	buf := make([]byte, 256)
	for i := range uint64(200) { // several laps of the 4 KiB log
		msg := logMsg(i, 200)
		if ok, err := w.Append(msg, 7); !ok || err != nil {
			t.Fatalf("Append %d: %v %v", i, ok, err)
		}
		rec, ok, err := zc.TryNext()
		if !ok || err != nil {
			t.Fatalf("TryNext %d: %v %v", i, ok, err)
		}
		if !inView(rec.Data) {
			t.Fatalf("message %d: the payload is not in the read-only view", i)
		}
		if j, err := checkLogMsg(rec.Data, 200); err != nil || j != i {
			t.Fatalf("message %d read in place: %d, %v", i, j, err)
		}
		if i == 3 {
			if !writeFaults(rec.Data) {
				t.Fatal("a write into a payload taken in place did not fault")
			}
		}
		if err := zc.Release(rec.End); err != nil {
			t.Fatal(err)
		}
		got, ok, err := cp.TryRead(buf)
		if !ok || err != nil {
			t.Fatalf("TryRead %d: %v %v", i, ok, err)
		}
		if j, err := checkLogMsg(got.Data, 200); err != nil || j != i {
			t.Fatalf("message %d copied: %d, %v", i, j, err)
		}
	}
}

// writeFaults reports whether a write into b faults (restoring the byte
// if it did not).
func writeFaults(b []byte) (faulted bool) {
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			if _, ok := r.(interface{ Addr() uintptr }); !ok {
				panic(r)
			}
			faulted = true
		}
	}()
	v := b[0]
	b[0] = v + 1
	b[0] = v
	return false
}

// TestMPMCReadView: with WithReadView, the messages TryPeek returns are
// slices of the read-only view (a write into one faults), while the
// producers, TryDequeue and Release go on through the writable mapping; a
// short view, or one of other memory, is refused.
func TestMPMCReadView(t *testing.T) {
	const capacity, slot = 8, 64
	size, err := MPMCSize(capacity, slot, WithClaimSlots(2))
	if err != nil {
		t.Fatal(err)
	}
	mem, f := proctest.Memfd(t, size)
	ro, err := memfd.Map(f, size, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = memfd.Unmap(ro) })
	if _, err := NewMPMC(mem, capacity, slot, WithClaimSlots(2), WithReadView(ro[:size-1])); !errors.Is(err, ErrConfig) {
		t.Fatalf("NewMPMC with a short view: %v, want ErrConfig", err)
	}
	w, err := NewMPMC(mem, capacity, slot, WithClaimSlots(2))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := AttachMPMC(mem, WithReadView(alignedMem(t, size))); !errors.Is(err, ErrConfig) {
		t.Fatalf("AttachMPMC with a view of other memory: %v, want ErrConfig", err)
	}
	r, err := AttachMPMC(mem, WithReadView(ro)) // another process's handle
	if err != nil {
		t.Fatal(err)
	}
	p, c := w.Producer(), r.Consumer()
	lo, hi := uintptr(unsafe.Pointer(&ro[0])), uintptr(unsafe.Pointer(&ro[0]))+uintptr(len(ro))
	for i := range 3 * capacity { // several laps
		if ok, err := p.TryEnqueue([]byte{byte(i), 1, 2, 3}); !ok || err != nil {
			t.Fatalf("enqueue %d: %v %v", i, ok, err)
		}
		b, ok, err := c.TryPeek()
		if !ok || err != nil || len(b) != 4 || b[0] != byte(i) {
			t.Fatalf("peek %d: %v %v %x", i, ok, err, b)
		}
		if a := uintptr(unsafe.Pointer(&b[0])); a < lo || a+4 > hi {
			t.Fatalf("message %d: the payload is not in the read-only view", i)
		}
		if i == 3 && !writeFaults(b) {
			t.Fatal("a write into a peeked payload did not fault")
		}
		if err := c.Release(); err != nil {
			t.Fatal(err)
		}
	}
}
