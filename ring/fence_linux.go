//go:build linux

package ring

import (
	"runtime"
	"sync"

	"golang.org/x/sys/unix"
)

// membarrier(2) commands (linux/membarrier.h).
const (
	membarrierGlobalExpedited         = 1 << 1
	membarrierRegisterGlobalExpedited = 1 << 2
)

// registerFence registers this process for MEMBARRIER_CMD_GLOBAL_EXPEDITED
// once, and reports whether publications may use plain release stores:
// only on amd64 (elsewhere StoreRelease is already sync/atomic's store) and
// only when the kernel accepted the registration. Every handle calls it
// before its first publication.
var registerFence = sync.OnceValue(func() bool {
	if runtime.GOARCH != "amd64" {
		return false
	}
	_, _, e := unix.Syscall(unix.SYS_MEMBARRIER, membarrierRegisterGlobalExpedited, 0, 0)
	if e != 0 {
		return false
	}
	fastPublish = true
	return true
})

// sleeperFence is the heavy half of the asymmetric fence (see wait.go):
// when it returns, every running thread of every registered process has
// executed a full memory barrier. It is called only on the way into a
// park, never on a fast path.
func sleeperFence() {
	if !fastPublish {
		return
	}
	_, _, _ = unix.Syscall(unix.SYS_MEMBARRIER, membarrierGlobalExpedited, 0, 0)
}
