// Package allocator is a lock-free slab allocator over a region of shared
// memory. Processes that map the same region allocate, pass and free chunks
// of it without locks and without system calls; a chunk is named by a Ref, a
// 64-bit value that fits in a ring slot and means the same in every process.
//
// The allocator never opens shared memory itself: New lays a region out in a
// []byte the caller provides (a segment, a memfd mapping, or ordinary memory
// in tests) and Attach validates one another process laid out. Size tells a
// caller how large a region a Config needs.
//
// # Handles and options
//
// New and Attach return a handle (*Allocator) configured by functional
// options: WithOwner (the participant it acts for), WithWaiter (how
// AllocContext waits) and WithCache (a per-class magazine of chunks).
// Handle makes further handles on the same region, for example one per
// goroutine. A handle with a cache serves an alloc+free pair from its
// magazine with one atomic compare-and-swap on the chunk's own header and
// no access to any shared list or counter; it belongs to one goroutine at a
// time, and Flush returns its chunks to the shared lists.
//
// # Size classes
//
// The classes are fixed when the region is created (Config; by default the
// powers of two from 64 B to 1 MiB). Alloc(n) takes a chunk from the
// smallest class that holds n bytes, and only from that class: when it is
// empty, Alloc fails with ErrNoMemory (and counts the failure) and
// AllocContext waits on the class's futex event until a chunk of that class
// is freed or its context ends. There is no silent fallback to a larger
// class.
//
// # References, reference counts and owners
//
// A chunk starts with one reference. Retain adds one (for each extra holder,
// such as each subscriber a message is delivered to), Release drops one and
// frees the chunk on the last; Free frees at once. Every Ref that arrives
// from another process is untrusted: out of range, not at a chunk boundary
// of its class, or of a stale generation is ErrBadRef, and a second free of
// the same allocation is ErrDoubleFree — reported, never applied.
//
// Each chunk records the participant that holds it (WithOwner, SetOwner),
// a chunk in a magazine records the participant whose handle caches it, and
// a chunk in the middle of an Alloc, Free, refill or Flush records the
// participant moving it. When a participant dies, ReclaimOwner(id) frees
// every chunk it held or cached and finishes every operation it died
// inside, while the others keep running. docs/allocator.md describes what a crash can leave behind,
// and Recover, which rebuilds the free lists of a corrupt region that
// nobody else is using.
//
// # Statistics
//
// Stats reports per class the free, in-use, in-flight and cached chunks
// (from the chunk states), the high-water mark and the failed allocations (shared
// counters). ReadStats does the same from a region mapped read-only,
// without an Allocator, and disturbs nobody.
//
// The byte layout, the magazine and the free-list algorithm with their
// ordering and ABA arguments, the crash semantics and measured costs are in
// docs/allocator.md.
package allocator
