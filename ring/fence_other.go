//go:build !linux

package ring

// registerFence reports false: without membarrier(2) every publication is
// a sequentially consistent store (see wait.go).
func registerFence() bool { return false }

// sleeperFence is a no-op: publications are sequentially consistent here.
func sleeperFence() {}
