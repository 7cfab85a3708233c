package ring

import (
	"encoding/binary"
	"errors"
	"math/bits"
	"testing"
)

// allowedErr reports whether err is one a corrupt ring may legitimately
// produce from the Try calls the fuzz targets make.
func allowedErr(err error) bool {
	return err == nil || errors.Is(err, ErrCorrupt) || errors.Is(err, ErrClosed) ||
		errors.Is(err, ErrShortBuffer) || errors.Is(err, ErrTooLarge)
}

// exercise runs a bounded number of non-blocking operations of every kind on
// whatever ring mem holds. None may panic; errors must be sentinels.
func exercise(t *testing.T, mem []byte) {
	buf := make([]byte, 256)
	msg := make([]byte, 24)
	bufs := [][]byte{make([]byte, 64), make([]byte, 8), make([]byte, 256)}
	if r, err := AttachSPSC(mem); err == nil {
		for range 4 {
			_, _, err1 := r.Consumer().TryDequeue(buf)
			_, err2 := r.Consumer().TryDequeueBatch(bufs)
			_, err3 := r.Producer().TryEnqueue(msg[:min(len(msg), r.SlotSize())])
			_, err4 := r.Producer().TryEnqueueBatch([][]byte{msg[:1], msg[:2]})
			_, ok, err5 := r.Consumer().TryPeek()
			if ok {
				err5 = r.Consumer().Release()
			}
			for _, err := range []error{err1, err2, err3, err4, err5} {
				if !allowedErr(err) {
					t.Fatalf("spsc: %v", err)
				}
			}
			_ = r.Len()
		}
	}
	if r, err := AttachByteRing(mem); err == nil {
		for range 4 {
			_, _, err1 := r.Consumer().TryDequeue(buf)
			_, err2 := r.Producer().TryEnqueue(msg)
			_, ok, err3 := r.Consumer().TryPeek()
			if ok {
				err3 = r.Consumer().Release()
			}
			for _, err := range []error{err1, err2, err3} {
				if !allowedErr(err) {
					t.Fatalf("byte ring: %v", err)
				}
			}
			_ = r.Len()
		}
	}
	exerciseMPMC(t, mem, buf, bufs, msg)
}

// FuzzAttach feeds arbitrary regions to the three Attach functions, and
// runs operations on any that attach.
func FuzzAttach(f *testing.F) {
	for _, mk := range []func(mem []byte){
		func(mem []byte) { NewSPSC(mem, 4, 8) },
		func(mem []byte) { NewByteRing(mem, 64) },
		func(mem []byte) { NewMPMC(mem, 2, 8) },
	} {
		mem := alignedMem(f, 1024)
		mk(mem)
		f.Add(append([]byte(nil), mem...))
	}
	f.Add([]byte{})
	f.Add(make([]byte, dataOffset))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<16 {
			return
		}
		mem := alignedMem(t, len(data))
		copy(mem, data)
		exercise(t, mem)
	})
}

// FuzzRingState builds a valid ring of each kind, then overwrites its
// indices, closed flag and data with fuzzed values, as a hostile peer
// could, and runs operations on it.
func FuzzRingState(f *testing.F) {
	f.Add(uint8(0), uint8(2), uint16(8), uint64(0), uint64(0), false, []byte{})
	f.Add(uint8(1), uint8(6), uint16(0), uint64(3), uint64(100), true, []byte("DATA\x00\x00\x00\x00"))
	f.Add(uint8(2), uint8(1), uint16(8), uint64(1), uint64(0), false, []byte{1, 0, 0, 0, 0, 0, 0, 0, 9})
	f.Add(uint8(1), uint8(6), uint16(0), uint64(8), uint64(64), false, []byte("\x30\x00\x00\x00PAD!"))
	f.Fuzz(func(t *testing.T, kind, capLog uint8, slot uint16, head, tail uint64, closed bool, data []byte) {
		var (
			mem []byte
			err error
		)
		switch kind % 3 {
		case 0, 2:
			capacity := 1 << (capLog % 6)
			slotSize := int(slot%200) + 1
			var size int
			if kind%3 == 0 {
				size, _ = SPSCSize(capacity, slotSize)
				mem = alignedMem(t, size)
				_, err = NewSPSC(mem, capacity, slotSize)
			} else {
				size, _ = MPMCSize(capacity, slotSize)
				mem = alignedMem(t, size)
				_, err = NewMPMC(mem, capacity, slotSize)
			}
		case 1:
			capacity := MinByteRing << (capLog % 5)
			size, _ := ByteRingSize(capacity)
			mem = alignedMem(t, size)
			_, err = NewByteRing(mem, capacity)
		}
		if err != nil {
			t.Fatal(err)
		}
		copy(mem[dataOffset:], data)
		binary.LittleEndian.PutUint64(mem[offHead:], head)
		binary.LittleEndian.PutUint64(mem[offTail:], tail)
		if closed {
			mem[offClosed] = 1
		}
		exercise(t, mem)
	})
}

// FuzzDecodeRecord feeds arbitrary bytes and positions to the byte ring's
// record decoder; whatever it accepts must lie inside the buffer and the
// published bytes.
func FuzzDecodeRecord(f *testing.F) {
	rec := make([]byte, 64)
	putRecHeader(rec, 0, 5, recData)
	f.Add(rec, uint64(0), uint64(16))
	pad := make([]byte, 64)
	putRecHeader(pad, 48, 8, recPad)
	putRecHeader(pad, 0, 0, recData)
	f.Add(pad, uint64(48), uint64(24))
	f.Fuzz(func(t *testing.T, buf []byte, pos, avail uint64) {
		if len(buf) == 0 || len(buf) > 1<<16 {
			return
		}
		buf = buf[:1<<(bits.Len(uint(len(buf)))-1)] // a power of two, like the ring
		size := uint64(len(buf))
		avail = min(avail, size)
		max := size/2 - min(size/2, recHeader)
		r, err := decodeRecord(buf, pos, avail, max)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			return
		}
		if r.off+r.n > size || r.skip > avail || r.n > max || r.skip < recHeader+r.n {
			t.Fatalf("accepted record %+v at %d (avail %d) in %d bytes", r, pos, avail, size)
		}
		_ = buf[r.off : r.off+r.n]
	})
}
