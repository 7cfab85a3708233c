package ring

// Process-wide marks for callers outside this package that need the same
// asymmetric Dekker pattern as the rings' wake-ups (wait.go): a hot side
// that announces itself with a plain store and then loads a flag, and a
// rare side that stores the flag and then must see the announcement (the
// channel's handles against a Close from another goroutine).

// FastMarks reports whether a hot side may announce itself with a plain
// release store (atomicx.StoreRelease32) and leave the ordering of that
// store before its next load to FullFence on the rare side: this process
// can make the fence and its plain stores are release stores (amd64).
func FastMarks() bool {
	registerFence()
	return fastPublish && canFence.Load()
}

// FullFence makes every running thread of this process (and of every other
// registered process) execute a full memory barrier before it returns
// true; false when it cannot (membarrier failed).
func FullFence() bool { return sleeperFence() }
