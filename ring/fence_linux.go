//go:build linux

package ring

import (
	"runtime"
	"sync"

	"golang.org/x/sys/unix"
)

// membarrier(2) commands (linux/membarrier.h).
const (
	membarrierQuery                   = 0
	membarrierGlobalExpedited         = 1 << 1
	membarrierRegisterGlobalExpedited = 1 << 2
)

// membarrier is the system call; tests replace it to make it fail.
var membarrier = func(cmd int) (uintptr, unix.Errno) {
	r, _, e := unix.Syscall(unix.SYS_MEMBARRIER, uintptr(cmd), 0, 0)
	return r, e
}

// registerFence finds out once whether this process can make the sleeper
// fence (membarrier reports MEMBARRIER_CMD_GLOBAL_EXPEDITED and accepts the
// registration: every error is checked, and any makes it false) and
// whether its publications may be plain stores (the same, on amd64; off
// amd64 StoreRelease is sync/atomic's store anyway). Every handle calls it
// (agreeFence) before its first publication or wait.
var registerFence = sync.OnceValue(func() bool {
	mask, e := membarrier(membarrierQuery)
	if e != 0 || mask&membarrierGlobalExpedited == 0 || mask&membarrierRegisterGlobalExpedited == 0 {
		return false
	}
	if _, e := membarrier(membarrierRegisterGlobalExpedited); e != 0 {
		return false
	}
	canFence.Store(true)
	fastPublish = runtime.GOARCH == "amd64"
	return true
})

// sleeperFence is the heavy half of the asymmetric fence (see wait.go):
// when it returns true, every running thread of every registered process
// has executed a full memory barrier. It is called only on the way into a
// park or for a hand-over, never on a fast path. When membarrier fails
// (a seccomp filter installed after the registration, say) it returns
// false, and this process no longer counts as one that can fence.
func sleeperFence() bool {
	if !canFence.Load() {
		return false
	}
	if _, e := membarrier(membarrierGlobalExpedited); e != 0 {
		canFence.Store(false)
		return false
	}
	return true
}
