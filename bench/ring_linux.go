//go:build linux

package bench

// Every use of package ring in the benchmark is in this file: the ring
// transports (copying and zero-copy) and the MPMC handles of the scaling
// rows. Rings live in a Memfd segment (package segment), one region per
// direction, that the parent creates and hands to the child as descriptor
// 3.

import (
	"context"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/shmkit/shmkit/futex"
	"github.com/shmkit/shmkit/ring"
	"github.com/shmkit/shmkit/segment"
)

// ringKind is one of shmkit's rings, used copying (Enqueue/Dequeue, Write/
// Read) or zero-copy (Reserve/Commit, Peek/Release).
type ringKind struct {
	kind     string // spsc, bytering, mpmc
	zeroCopy bool
	// batch moves up to batchSize messages per call (EnqueueBatch,
	// DequeueBatch): a stream-only row, next to the OS transports' one
	// message per call.
	batch bool
}

// batchSize is the most messages a batching row moves per call.
const batchSize = 64

func init() {
	register(ringKind{kind: "spsc"})
	register(ringKind{kind: "spsc", zeroCopy: true})
	register(ringKind{kind: "spsc", batch: true})
	register(ringKind{kind: "bytering"})
	register(ringKind{kind: "bytering", zeroCopy: true})
	register(ringKind{kind: "mpmc"})
}

func (k ringKind) name() string {
	switch {
	case k.zeroCopy:
		return k.kind + "-zc"
	case k.batch:
		return k.kind + "-batch"
	}
	return k.kind
}

// streamOnly reports that a batching row has no ping-pong: one message is
// in flight at a time there.
func (k ringKind) streamOnly() bool { return k.batch }
func (ringKind) family() string     { return FamilyShmkit }
func (ringKind) waits() bool        { return true }

// ringSlots is the number of slots of a fixed-slot ring for messages of
// size bytes: about 1 MiB of slots, at least 4 and at most 1024.
func ringSlots(size int) int {
	n := 1
	for n*2*size <= 1<<20 && n < 1024 {
		n *= 2
	}
	return max(n, 4)
}

// byteRingCap is the capacity of a byte ring for messages of size bytes:
// as many records as ringSlots, a power of two, at least 64 KiB.
func byteRingCap(size int) int {
	want := max(ringSlots(size)*(size+8), 64<<10)
	n := 64
	for n < want {
		n *= 2
	}
	return n
}

// ringBytes is the bytes one ring of kind takes for messages of size bytes.
func ringBytes(kind string, size int) (int, error) {
	switch kind {
	case "spsc":
		return ring.SPSCSize(ringSlots(size), size)
	case "mpmc":
		return ring.MPMCSize(ringSlots(size), size)
	case "bytering":
		return ring.ByteRingSize(byteRingCap(size))
	}
	return 0, fmt.Errorf("%w: ring kind %q", ErrConfig, kind)
}

// A ring handle: one process's (one goroutine's) view of one ring. A
// handle is not safe for concurrent use.
type ringHandle struct {
	spsc *ring.SPSC
	byt  *ring.ByteRing
	mpmc *ring.MPMC
}

// newRing initialises (attach false) or attaches a ring of kind at mem,
// waiting with w.
func newRing(kind string, mem []byte, size int, attach bool, w futex.Waiter) (ringHandle, error) {
	var h ringHandle
	var err error
	switch kind {
	case "spsc":
		if attach {
			h.spsc, err = ring.AttachSPSC(mem)
		} else {
			h.spsc, err = ring.NewSPSC(mem, ringSlots(size), size)
		}
		if err == nil {
			h.spsc.SetWaiter(w)
		}
	case "bytering":
		if attach {
			h.byt, err = ring.AttachByteRing(mem)
		} else {
			h.byt, err = ring.NewByteRing(mem, byteRingCap(size))
		}
		if err == nil && h.byt.MaxRecord() < size {
			err = fmt.Errorf("%w: byte ring record limit %d under message size %d", ErrConfig, h.byt.MaxRecord(), size)
		}
		if err == nil {
			h.byt.SetWaiter(w)
		}
	case "mpmc":
		if attach {
			h.mpmc, err = ring.AttachMPMC(mem)
		} else {
			h.mpmc, err = ring.NewMPMC(mem, ringSlots(size), size)
		}
		if err == nil {
			h.mpmc.SetWaiter(w)
		}
	default:
		err = fmt.Errorf("%w: ring kind %q", ErrConfig, kind)
	}
	return h, err
}

// close marks the ring closed, which wakes and fails blocked calls on both
// sides: the parent's way to abort a cell.
func (h ringHandle) close() {
	switch {
	case h.spsc != nil:
		h.spsc.Close()
	case h.byt != nil:
		h.byt.Close()
	case h.mpmc != nil:
		h.mpmc.Close()
	}
}

var bg = context.Background()

// Copying ends. Messages of chunk bytes or more go through the rings'
// in-place calls so that the copy can be made in pieces (the rings' own
// Enqueue/Dequeue copy in one memmove); the MPMC ring has none, so it
// copies in one.

func (h ringHandle) write(msg []byte) error {
	switch {
	case h.spsc != nil:
		if len(msg) < chunk {
			return h.spsc.Enqueue(bg, msg)
		}
		b, err := h.spsc.Reserve(bg)
		if err != nil {
			return err
		}
		copyChunked(b, msg)
		return h.spsc.Commit(len(msg))
	case h.byt != nil:
		if len(msg) < chunk {
			return h.byt.Write(bg, msg)
		}
		b, err := h.byt.Reserve(bg, len(msg))
		if err != nil {
			return err
		}
		copyChunked(b, msg)
		return h.byt.Commit(len(msg))
	}
	return h.mpmc.Enqueue(bg, msg)
}

func (h ringHandle) read(buf []byte) (int, error) {
	switch {
	case h.spsc != nil:
		if len(buf) < chunk {
			return h.spsc.Dequeue(bg, buf)
		}
		m, err := h.spsc.Peek(bg)
		if err != nil {
			return 0, err
		}
		if len(m) > len(buf) {
			return 0, fmt.Errorf("%w: message of %d bytes, buffer of %d", ErrCorrupt, len(m), len(buf))
		}
		n := copyChunked(buf, m)
		return n, h.spsc.Release()
	case h.byt != nil:
		if len(buf) < chunk {
			return h.byt.Read(bg, buf)
		}
		m, err := h.byt.Peek(bg)
		if err != nil {
			return 0, err
		}
		if len(m) > len(buf) {
			return 0, fmt.Errorf("%w: message of %d bytes, buffer of %d", ErrCorrupt, len(m), len(buf))
		}
		n := copyChunked(buf, m)
		return n, h.byt.Release()
	}
	return h.mpmc.Dequeue(bg, buf)
}

// zcOut and zcIn are the zero-copy ends: the message is written in the
// ring slot (Reserve/Commit) and read where it lies (Peek/Release).
type zcOut struct{ h ringHandle }

func (z zcOut) buf(n int) ([]byte, error) {
	var b []byte
	var err error
	if z.h.spsc != nil {
		b, err = z.h.spsc.Reserve(bg)
	} else {
		b, err = z.h.byt.Reserve(bg, n)
	}
	if err != nil {
		return nil, err
	}
	if len(b) < n {
		return nil, fmt.Errorf("%w: reserved %d bytes, want %d", ErrCorrupt, len(b), n)
	}
	return b[:n], nil
}

func (z zcOut) send(n int) error {
	if z.h.spsc != nil {
		return z.h.spsc.Commit(n)
	}
	return z.h.byt.Commit(n)
}

func (zcOut) inPlace() bool { return true }

type zcIn struct{ h ringHandle }

func (z zcIn) next() ([]byte, error) {
	if z.h.spsc != nil {
		return z.h.spsc.Peek(bg)
	}
	return z.h.byt.Peek(bg)
}

func (z zcIn) done() error {
	if z.h.spsc != nil {
		return z.h.spsc.Release()
	}
	return z.h.byt.Release()
}

// batchOut collects messages in buffers of its own and enqueues them
// batchSize at a time (and at flush) with one EnqueueBatch call.
type batchOut struct {
	h    ringHandle
	bufs [][]byte
	k    int
}

func newBatchOut(h ringHandle, size int) *batchOut {
	b := &batchOut{h: h, bufs: make([][]byte, batchSize)}
	for i := range b.bufs {
		b.bufs[i] = make([]byte, size)
		fillPayload(b.bufs[i])
	}
	return b
}

func (b *batchOut) buf(n int) ([]byte, error) { return b.bufs[b.k][:n], nil }
func (b *batchOut) inPlace() bool             { return false }

func (b *batchOut) send(n int) error {
	b.bufs[b.k] = b.bufs[b.k][:n]
	if b.k++; b.k == len(b.bufs) {
		return b.flush()
	}
	return nil
}

func (b *batchOut) flush() error {
	k := b.k
	b.k = 0
	if k == 0 {
		return nil
	}
	_, err := b.h.spsc.EnqueueBatch(bg, b.bufs[:k])
	return err
}

// batchIn dequeues up to batchSize messages per DequeueBatch call and hands
// them out one by one.
type batchIn struct {
	h    ringHandle
	bufs [][]byte
	n, i int
}

func newBatchIn(h ringHandle, size int) *batchIn {
	b := &batchIn{h: h, bufs: make([][]byte, batchSize)}
	for i := range b.bufs {
		b.bufs[i] = make([]byte, size)
	}
	return b
}

func (b *batchIn) next() ([]byte, error) {
	if b.i == b.n {
		for i := range b.bufs[:b.n] {
			b.bufs[i] = b.bufs[i][:cap(b.bufs[i])]
		}
		n, err := b.h.spsc.DequeueBatch(bg, b.bufs)
		if err != nil {
			return nil, err
		}
		b.n, b.i = n, 0
	}
	b.i++
	return b.bufs[b.i-1], nil
}

func (b *batchIn) done() error { return nil }

// endsOf makes the ends of a side that sends on out and receives on in.
func (k ringKind) endsOf(out, in ringHandle, size int) ends {
	switch {
	case k.zeroCopy:
		return ends{out: zcOut{out}, in: zcIn{in}}
	case k.batch:
		return ends{out: newBatchOut(out, size), in: newBatchIn(in, size)}
	}
	return copyEnds(out, in, size)
}

func waiterFor(name string) (futex.Waiter, error) {
	s, err := futex.ParseStrategy(name)
	if err != nil {
		return futex.Waiter{}, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	return futex.Waiter{Strategy: s}, nil
}

// ringSegment creates a Memfd segment with one region per name, each
// holding an initialised ring of kind, and returns it, the rings' memory
// and a descriptor for the child (a duplicate, which the caller hands
// over and closes).
func ringSegment(kind string, size int, names []string, w futex.Waiter) (*segment.Segment, [][]byte, *os.File, error) {
	one, err := ringBytes(kind, size)
	if err != nil {
		return nil, nil, nil, err
	}
	pages := (one + 4095) &^ 4095
	seg, err := segment.Create(segment.Memfd, "bench-"+kind, int64(len(names)*pages+64<<10), nil)
	if err != nil {
		return nil, nil, nil, err
	}
	fail := func(err error) (*segment.Segment, [][]byte, *os.File, error) {
		return nil, nil, nil, errors.Join(err, seg.Close())
	}
	var mems [][]byte
	for _, n := range names {
		r, err := seg.AddRegion(n, segment.FourCC("RING"), int64(one), 4096)
		if err != nil {
			return fail(err)
		}
		mem, err := seg.Bytes(r.Offset, r.Length)
		if err != nil {
			return fail(err)
		}
		if _, err := newRing(kind, mem, size, false, w); err != nil {
			return fail(err)
		}
		mems = append(mems, mem)
	}
	fd, err := unix.FcntlInt(seg.File().Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return fail(fmt.Errorf("dup memfd: %w", err))
	}
	return seg, mems, os.NewFile(uintptr(fd), "memfd"), nil
}

// attachSegment is the child's side of ringSegment: it attaches the Memfd
// segment at f and returns the named regions.
func attachSegment(f *os.File, names []string) (*segment.Segment, [][]byte, error) {
	seg, err := segment.OpenMemfd(f, nil)
	f.Close()
	if err != nil {
		return nil, nil, err
	}
	var mems [][]byte
	for _, n := range names {
		mem, err := seg.RegionBytes(n)
		if err != nil {
			return nil, nil, errors.Join(err, seg.Close())
		}
		mems = append(mems, mem)
	}
	return seg, mems, nil
}

// closeRings closes the rings at mems through handles of their own: the
// parent's handles are busy in blocked calls and not safe for concurrent
// use.
func closeRings(kind string, mems [][]byte, size int) {
	for _, mem := range mems {
		if h, err := newRing(kind, mem, size, true, futex.Waiter{}); err == nil {
			h.close()
		}
	}
}

func (k ringKind) open(c *cell) (*link, error) {
	w, err := waiterFor(c.Wait)
	if err != nil {
		return nil, err
	}
	if k.zeroCopy && k.kind == "mpmc" {
		return nil, unavailable("the MPMC ring has no zero-copy calls")
	}
	seg, mems, f, err := ringSegment(k.kind, c.Size, []string{"up", "down"}, w)
	if err != nil {
		return nil, err
	}
	var hs [2]ringHandle
	for i, mem := range mems {
		if hs[i], err = newRing(k.kind, mem, c.Size, true, w); err != nil {
			f.Close()
			return nil, errors.Join(err, seg.Close())
		}
	}
	// The parent receives on up and sends on down.
	return &link{
		ends:    k.endsOf(hs[1], hs[0], c.Size),
		files:   []*os.File{f},
		abort:   func() { closeRings(k.kind, mems, c.Size) },
		release: seg.Close,
	}, nil
}

func (k ringKind) attach(c *cell, files []*os.File) (ends, error) {
	w, err := waiterFor(c.Wait)
	if err != nil {
		return ends{}, err
	}
	if len(files) != 1 {
		return ends{}, fmt.Errorf("%w: ring child needs one descriptor, has %d", ErrConfig, len(files))
	}
	_, mems, err := attachSegment(files[0], []string{"up", "down"})
	if err != nil {
		return ends{}, err
	}
	var hs [2]ringHandle
	for i, mem := range mems {
		if hs[i], err = newRing(k.kind, mem, c.Size, true, w); err != nil {
			return ends{}, err
		}
	}
	// The child sends on up and receives on down. The segment stays
	// attached until the process exits.
	return k.endsOf(hs[0], hs[1], c.Size), nil
}

// The scaling rows: one MPMC ring, many handles.

// mpmcShared is an MPMC ring in a Memfd segment, with a handle per
// goroutine.
type mpmcShared struct {
	seg  *segment.Segment
	mem  []byte
	size int
	w    futex.Waiter
}

// newMPMCShared creates the ring (parent) and the descriptor for the child.
func newMPMCShared(c *cell) (*mpmcShared, *os.File, error) {
	w, err := waiterFor(c.Wait)
	if err != nil {
		return nil, nil, err
	}
	seg, mems, f, err := ringSegment("mpmc", c.Size, []string{"queue"}, w)
	if err != nil {
		return nil, nil, err
	}
	return &mpmcShared{seg: seg, mem: mems[0], size: c.Size, w: w}, f, nil
}

// attachMPMCShared is the child's side.
func attachMPMCShared(c *cell, f *os.File) (*mpmcShared, error) {
	w, err := waiterFor(c.Wait)
	if err != nil {
		return nil, err
	}
	seg, mems, err := attachSegment(f, []string{"queue"})
	if err != nil {
		return nil, err
	}
	return &mpmcShared{seg: seg, mem: mems[0], size: c.Size, w: w}, nil
}

// handle returns a new handle (one per goroutine) as copying ends.
func (m *mpmcShared) handle() (ends, error) {
	h, err := newRing("mpmc", m.mem, m.size, true, m.w)
	if err != nil {
		return ends{}, err
	}
	return copyEnds(h, h, m.size), nil
}

// close closes the ring: blocked calls return, consumers drain and stop.
func (m *mpmcShared) close() { closeRings("mpmc", [][]byte{m.mem}, m.size) }

// isClosed reports whether err is the ring's "closed" error.
func isClosed(err error) bool { return errors.Is(err, ring.ErrClosed) }

func (m *mpmcShared) release() error { return m.seg.Close() }
