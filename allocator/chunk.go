package allocator

import (
	"fmt"
	"unsafe"

	"github.com/shmkit/shmkit/internal/atomicx"
)

// Bytes returns the payload of the chunk r names: length Len(r), capacity
// the chunk size of its class. The slice aliases shared memory that other
// processes see; it stays valid until the chunk is freed (by the last
// Release, a Free, or ReclaimOwner of its owner) — after that the chunk may
// be handed to another holder, and the slice must not be used. It also
// becomes invalid when the region is unmapped.
func (a *Allocator) Bytes(r Ref) ([]byte, error) {
	c, i, m, err := a.live("bytes", r)
	if err != nil {
		return nil, err
	}
	n := uint64(m.length.Load())
	if n > c.size {
		return nil, fmt.Errorf("%w: bytes %v: stored length %d exceeds chunk size %d", ErrCorrupt, r, n, c.size)
	}
	return unsafe.Slice((*byte)(c.payload(i)), c.size)[:n:c.size], nil
}

// Len returns the payload length recorded in the chunk r names.
func (a *Allocator) Len(r Ref) (int, error) {
	c, _, m, err := a.live("len", r)
	if err != nil {
		return 0, err
	}
	n := uint64(m.length.Load())
	if n > c.size {
		return 0, fmt.Errorf("%w: len %v: stored length %d exceeds chunk size %d", ErrCorrupt, r, n, c.size)
	}
	return int(n), nil
}

// Cap returns the chunk size of the class r belongs to.
func (a *Allocator) Cap(r Ref) (int, error) {
	c, _, _, err := a.live("cap", r)
	if err != nil {
		return 0, err
	}
	return int(c.size), nil
}

// SetLen records n as the payload length of the chunk r names, for readers
// in other processes. n must be within 0..Cap(r) (ErrTooLarge).
func (a *Allocator) SetLen(r Ref, n int) error {
	c, _, m, err := a.live("setlen", r)
	if err != nil {
		return err
	}
	if n < 0 || uint64(n) > c.size {
		return fmt.Errorf("%w: setlen %v to %d, chunk holds %d", ErrTooLarge, r, n, c.size)
	}
	// A release store (a plain MOV on amd64): the length is the holder's to
	// write, and a reader in another process learns the Ref through a
	// publication of its own (a ring slot), which orders this store before
	// its load.
	atomicx.StoreRelease32(&m.length, uint32(n))
	return nil
}

// Owner returns the participant recorded as the holder of the chunk r names.
func (a *Allocator) Owner(r Ref) (uint32, error) {
	_, _, m, err := a.live("owner", r)
	if err != nil {
		return 0, err
	}
	return m.owner.Load(), nil
}

// SetOwner records participant id as the holder of the chunk r names, so
// that ReclaimOwner(id) — and no longer ReclaimOwner of the previous owner —
// returns it. Call it while holding a reference, typically when a chunk is
// handed from one participant to another.
func (a *Allocator) SetOwner(r Ref, id uint32) error {
	if id > MaxOwner {
		return fmt.Errorf("%w: setowner %v to %d > %d", ErrConfig, r, id, MaxOwner)
	}
	_, _, m, err := a.live("setowner", r)
	if err != nil {
		return err
	}
	// A release store, as in SetLen: the owner field of an allocated chunk
	// is written only by its holders.
	atomicx.StoreRelease32(&m.owner, id)
	return nil
}

// RefCount returns the number of references held on the chunk r names.
func (a *Allocator) RefCount(r Ref) (int, error) {
	_, _, m, err := a.live("refcount", r)
	if err != nil {
		return 0, err
	}
	return int(stateLow(m.state.Load()) & lowIDMask), nil
}
