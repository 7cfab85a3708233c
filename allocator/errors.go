package allocator

import "errors"

// Sentinel errors. Every error the package returns wraps one of them (with
// %w, sentinel first and detail after: "allocator: corrupt region: class 64:
// ..."), so callers test with errors.Is.
var (
	// ErrConfig reports a bad argument: an invalid Config (no classes, a
	// size that is not a positive multiple of 64, sizes not strictly
	// ascending, a count out of range, a region that would exceed the limits
	// of a Ref), a participant id above MaxOwner, or a negative cache size.
	ErrConfig = errors.New("allocator: invalid configuration")
	// ErrTooSmall reports a region shorter than the layout needs.
	ErrTooSmall = errors.New("allocator: region too small")
	// ErrUnaligned reports a region that does not start at a 64-byte
	// aligned address (8-byte aligned for ReadStats).
	ErrUnaligned = errors.New("allocator: region not aligned")
	// ErrBadMagic reports a region that does not start with KindSlab: not a
	// slab region.
	ErrBadMagic = errors.New("allocator: bad magic")
	// ErrVersion reports a layout version this code does not know.
	ErrVersion = errors.New("allocator: unsupported layout version")
	// ErrCorrupt reports shared state that breaks the layout's invariants:
	// a header whose checksum does not match, a class table that does not
	// describe a valid layout, a free-list link out of range, a chunk on a
	// free list that is in use, or a stored length larger than its chunk.
	ErrCorrupt = errors.New("allocator: corrupt region")
	// ErrBadRef reports a reference that does not name a live chunk: its
	// offset is outside every class, not at a chunk boundary of its class,
	// or its generation is stale (the chunk was freed since).
	ErrBadRef = errors.New("allocator: bad reference")
	// ErrDoubleFree reports a Free or Release of a chunk that is already
	// free (and not yet handed out again). Nothing is changed.
	ErrDoubleFree = errors.New("allocator: double free")
	// ErrNoMemory reports that the size class that fits the request has no
	// free chunk. The allocator never falls back to another class.
	ErrNoMemory = errors.New("allocator: no free chunk in size class")
	// ErrTooLarge reports a request larger than the largest class, or a
	// length larger than the chunk (SetLen), or a negative size.
	ErrTooLarge = errors.New("allocator: size larger than the chunk")
	// ErrInFlight reports, from Check, chunks left in the middle of an
	// Alloc, a Free, a refill or a Flush (claimed, or being freed) while the
	// pool should be quiescent: their participant died inside the call.
	// ReclaimOwner of that participant finishes them.
	ErrInFlight = errors.New("allocator: chunks left mid-operation")
	// ErrRefCount reports a Retain beyond MaxRefCount references.
	ErrRefCount = errors.New("allocator: reference count overflow")
)
