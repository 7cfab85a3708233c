// Package atomicx provides the release store and acquire load that the
// shared-memory hot paths need, at the cost the hardware charges for them.
//
// sync/atomic is sequentially consistent: on amd64 its Store is an XCHG, a
// locked instruction that drains the store buffer (about 14 ns on the
// project's VM, see FACTS.md). A single-producer ring only needs release
// semantics when it publishes an index or a slot's sequence word: every
// earlier load and store of the publishing thread must be visible before
// the published word is.
//
// # The ordering argument
//
// amd64 (x86-TSO): the processor never reorders a store with an earlier
// load or an earlier store, so an ordinary MOV is a release store, and an
// ordinary MOV load is an acquire load (loads are not reordered with later
// loads or stores). What remains is the compiler: StoreRelease32/64 are
// assembly routines, which the Go compiler neither inlines nor reorders
// memory operations across, so every store the caller made before the call
// is emitted before it. LoadAcquire32/64 are sync/atomic loads, which the
// compiler intrinsifies to a plain MOV that it keeps in order with the
// memory operations after it.
//
// arm64: sync/atomic's Store is STLR and its Load is LDAR, exactly the
// release store and acquire load the ARM memory model provides; the
// intrinsics are already as cheap as the hardware allows, so this package
// uses them (no assembly).
//
// Every other architecture (386, riscv64, ...): sync/atomic, which is at
// least as strong as release/acquire.
//
// Under the race detector (-race) every architecture uses sync/atomic: the
// detector does not see an assembly store, so it would miss the
// happens-before edge a release store creates and report the data the store
// publishes as racy. The race build is slower, not differently ordered.
//
// # What this does not give
//
// A release store does not order the store with later loads (store-load
// reordering stays possible). Code that must see the other side's word
// after publishing its own (the futex sleeper handshake, Dekker-style
// flags) needs a full barrier: use sync/atomic there, never StoreRelease.
//
// The values must be naturally aligned; every word the project places in
// shared memory is, at an explicit offset (see docs/).
package atomicx
