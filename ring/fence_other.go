//go:build !linux

package ring

// registerFence reports false: without membarrier(2) every publication is
// a sequentially consistent store and every ring this process joins is
// raised to strict mode (see wait.go).
func registerFence() bool { return false }

// sleeperFence reports false: this process cannot fence.
func sleeperFence() bool { return false }
