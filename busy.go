package shmkit

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/shmkit/shmkit/internal/atomicx"
	"github.com/shmkit/shmkit/ring"
)

// busyMark is a handle's announcement that one of its calls is inside the
// mapping: the pub/sub fast paths (Send, ReceiveInto) set it instead of
// entering the channel's in-flight shard (two locked instructions a call).
// A handle is used by one goroutine at a time, so the mark is a plain word
// only that goroutine writes.
//
// Against a Close from another goroutine (the handle's own, or the
// Channel's, which closes every handle before it unmaps): the call stores
// the mark, then loads the handle's shut flag; Close stores shut
// (sequentially consistent), then waits until the mark is clear. That is
// Dekker's pattern; with FastMarks the call's store is a plain MOV, which a
// later load may overtake, so Close calls ring.FullFence between its store
// and its loads: every running thread of the process passes a full barrier
// during that call, so either the call's mark is visible to Close's loads
// after it, or the call's load of shut comes after the barrier and sees
// shut (the argument of ring/wait.go, "the asymmetric fence"). Without
// FastMarks the mark is a sequentially consistent store.
type busyMark struct{ w atomic.Uint32 }

var fastMarks = sync.OnceValue(ring.FastMarks)

// marksFast caches fastMarks() for the hot path (set before any handle of
// a pub/sub channel exists, by setupRings).
var marksFast atomic.Bool

func (b *busyMark) enter() {
	if marksFast.Load() && !raceEnabled {
		// A plain store: the compiler keeps it before the caller's
		// following atomic load of shut (Go's memory operations stay in
		// program order); the hardware may not, which quiesce's fence
		// covers.
		*(*uint32)(unsafe.Pointer(&b.w)) = 1
		return
	}
	b.w.Store(1)
}

func (b *busyMark) exit() {
	if raceEnabled {
		b.w.Store(0)
		return
	}
	if plainRelease {
		// A release store written inline (atomicx.StoreRelease32 is
		// this MOV behind an assembly call): x86-TSO keeps the call's
		// earlier loads and stores before it, and so does the compiler
		// (every store on one memory chain; a load of the memory a
		// store replaces is scheduled before it).
		*(*uint32)(unsafe.Pointer(&b.w)) = 0
		return
	}
	atomicx.StoreRelease32(&b.w, 0) // release: the call's accesses come before
}

// plainRelease: a plain store is a release store (amd64).
const plainRelease = runtime.GOARCH == "amd64"

// quiesce waits until no call of the handle is inside the mapping; the
// caller has stored the handle's shut flag and woken its waits.
func (b *busyMark) quiesce() {
	if marksFast.Load() && !ring.FullFence() {
		// The fence failed (a seccomp filter since the registration): a
		// plain store may still sit in a store buffer for a moment.
		time.Sleep(time.Millisecond)
	}
	for b.w.Load() != 0 {
		time.Sleep(20 * time.Microsecond)
	}
}
