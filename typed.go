package shmkit

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"reflect"
	"sync"
	"unsafe"

	"github.com/shmkit/shmkit/internal/atomicx"
	"github.com/shmkit/shmkit/internal/fourcc"
)

// Typed samples: fixed-size values without pointers, read and written in
// place in shared memory. A type is checked once (reflect) and refused if
// it holds anything that means nothing in another process: pointers,
// uintptr, unsafe.Pointer, slices, maps, strings, interfaces, channels or
// functions. The first typed call on a channel records a fingerprint of
// the type's layout (kinds, sizes, offsets, alignment) in the channel
// header; a program whose type has another layout gets ErrTypeMismatch.

var typeCache sync.Map // reflect.Type -> typeInfo

type typeInfo struct {
	fp   uint64
	size int
	name string // Go type name, recorded beside the fingerprint for error messages
	err  error
}

func typeOf[T any]() typeInfo {
	t := reflect.TypeFor[T]()
	if v, ok := typeCache.Load(t); ok {
		return v.(typeInfo)
	}
	h := fnv.New64a()
	err := describe(h, t, "")
	ti := typeInfo{size: int(t.Size()), name: t.String(), err: err}
	if err == nil {
		fmt.Fprintf(h, "size=%d align=%d", t.Size(), t.Align())
		ti.fp = h.Sum64() | 1 // never 0: 0 means untyped
	}
	typeCache.Store(t, ti)
	return ti
}

// describe writes t's layout to w, or says why t cannot live in shared
// memory.
func describe(w interface{ Write([]byte) (int, error) }, t reflect.Type, path string) error {
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		fmt.Fprintf(w, "%s:%d;", t.Kind(), t.Size())
		return nil
	case reflect.Array:
		fmt.Fprintf(w, "[%d]", t.Len())
		return describe(w, t.Elem(), path+"[]")
	case reflect.Struct:
		fmt.Fprintf(w, "struct{")
		for i := range t.NumField() {
			f := t.Field(i)
			fmt.Fprintf(w, "@%d:", f.Offset)
			if err := describe(w, f.Type, path+"."+f.Name); err != nil {
				return err
			}
		}
		fmt.Fprintf(w, "}%d;", t.Size())
		return nil
	}
	if path == "" {
		path = "the type itself"
	}
	return fmt.Errorf("%w: %v holds a %v at %s, which means nothing in another process", ErrTypeMismatch, t, t.Kind(), path)
}

// checkType records or compares the fingerprint of T in the channel.
func (ch *Channel) checkType(ti typeInfo) error {
	if ti.err != nil {
		return ti.err
	}
	if ti.size > ch.cfg.MaxMessage {
		return fmt.Errorf("%w: type of %d bytes, MaxMessage %d", ErrTooLarge, ti.size, ch.cfg.MaxMessage)
	}
	w := u64(ch.hdr, hdrTypeFP)
	if w.CompareAndSwap(0, ti.fp) {
		ch.recordTypeName(ti)
		return nil
	}
	if got := w.Load(); got != ti.fp {
		return fmt.Errorf("%w: the channel carries %s (layout %#x), this program's type is %s (layout %#x)",
			ErrTypeMismatch, ch.typeName(got), got, ti.name, ti.fp)
	}
	return nil
}

// The type-name region ("tname", typeNameSize bytes): word 0 is the
// fingerprint the name belongs to, stored last (release) by the process
// whose typed call recorded the fingerprint; the name follows, NUL padded,
// in 8-byte words written atomically. It only serves error messages.
const (
	regionTypeName = "tname"
	typeNameSize   = 256
	tnFP           = 0 // uint64 fingerprint the name is for, 0 = none yet
	tnName         = 8 // up to typeNameSize-8 bytes of the Go type name
)

var kindTypeName = fourcc.Make("TNAM")

// recordTypeName writes ti's name beside the fingerprint this process
// has just recorded (a channel without the region, from before it, has no
// name to give).
func (ch *Channel) recordTypeName(ti typeInfo) {
	if len(ch.tname) < typeNameSize {
		return
	}
	var b [typeNameSize - tnName]byte
	copy(b[:], ti.name)
	for i := 0; i < len(b); i += 8 {
		atomicx.StoreRelease64(u64(ch.tname, tnName+i), binary.LittleEndian.Uint64(b[i:]))
	}
	atomicx.StoreRelease64(u64(ch.tname, tnFP), ti.fp)
}

// typeName returns the recorded name of the type with fingerprint fp, or
// says it is unknown. The bytes come from shared memory: anything but
// printable ASCII ends the name.
func (ch *Channel) typeName(fp uint64) string {
	if len(ch.tname) < typeNameSize || atomicx.LoadAcquire64(u64(ch.tname, tnFP)) != fp {
		return "a type whose name was not recorded"
	}
	var b [typeNameSize - tnName]byte
	for i := 0; i < len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], u64(ch.tname, tnName+i).Load())
	}
	n := 0
	for n < len(b) && b[n] >= 0x20 && b[n] < 0x7f {
		n++
	}
	if n == 0 {
		return "a type whose name was not recorded"
	}
	return string(b[:n])
}

// LoanAs loans a sample that holds one T and returns it with a pointer to
// the T in shared memory (zeroed). Write through the pointer, then
// Publish the sample; the pointer is valid until Publish or Discard.
func LoanAs[T any](ctx context.Context, p *Publisher) (*Sample, *T, error) {
	ti := typeOf[T]()
	if err := p.ch.checkType(ti); err != nil {
		return nil, nil, err
	}
	s, err := p.LoanContext(ctx, ti.size)
	if err != nil {
		return nil, nil, err
	}
	b := s.Bytes()
	clear(b)
	return s, (*T)(unsafe.Pointer(unsafe.SliceData(b))), nil
}

// SendAs publishes a copy of v.
func SendAs[T any](ctx context.Context, p *Publisher, v T) error {
	s, ptr, err := LoanAs[T](ctx, p)
	if err != nil {
		return err
	}
	*ptr = v
	return p.Publish(ctx, s)
}

// ReceiveAs receives the next message as a T in shared memory, valid until
// the sample's Release; read it only (it lies in a read-only mapping on
// pub/sub: a write through the pointer faults). A message of another size is ErrTypeMismatch (and
// is released).
func ReceiveAs[T any](ctx context.Context, s *Subscriber) (*Sample, *T, error) {
	ti := typeOf[T]()
	if err := s.ch.checkType(ti); err != nil {
		return nil, nil, err
	}
	smp, err := s.Receive(ctx)
	if err != nil {
		return nil, nil, err
	}
	if smp.Len() != ti.size {
		n := smp.Len()
		_ = smp.Release()
		return nil, nil, fmt.Errorf("%w: message of %d bytes, type of %d", ErrTypeMismatch, n, ti.size)
	}
	return smp, (*T)(unsafe.Pointer(unsafe.SliceData(smp.data))), nil
}
