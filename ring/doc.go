// Package ring provides lock-free rings in shared memory for moving
// messages between processes: an SPSC ring of fixed-size slots, an SPSC byte
// ring of variable-length records, and an MPMC ring of fixed-size slots.
//
// A ring lives in a []byte region handed to it (a segment region, an
// mmapped memfd, or ordinary memory in tests); the package never maps
// anything itself. New* initialises a region, Attach* validates the header
// of an initialised one. Each process gets its own handle.
//
// While both sides are busy a message crosses with no system call: each
// side publishes its index with one atomic store (one per batch), keeps a
// cached copy of the other side's index and reloads it only when the ring
// looks full or empty. Blocking calls wait through a futex.Waiter (spin,
// then park on a futex.Event in the region), and the other side makes the
// wake system call only when a waiter actually sleeps. Every blocking call
// takes a context.Context.
//
// Shared memory is untrusted: an impossible state (an index behind the
// other, a distance over the capacity, a length past the end) is reported
// as ErrCorrupt, never a panic or an endless loop.
//
// docs/ring.md describes the algorithms, the memory-ordering argument and
// the byte layout.
package ring
