package shmkit

// Test access to internals.

// SetHook sets the step hook (nil: none) and returns a function restoring
// the previous one.
func SetHook(f func(step string)) func() {
	old := hook
	hook = f
	return func() { hook = old }
}

// PoolStatsForTest returns the pool's counters.
func (ch *Channel) PoolStatsForTest() PoolStats { return ch.pool.stats() }

// PoolCheckForTest verifies a quiescent pool.
func (ch *Channel) PoolCheckForTest() error { return ch.pool.check() }

// ScanForTest runs a liveness scan now and returns how many it cleaned.
func (ch *Channel) ScanForTest() int { return ch.scan(true) }

// SleepersForTest returns how many waiters are parked on ring k's
// not-empty event.
func (ch *Channel) SleepersForTest(k int) uint32 { return ch.rings[k].notEmpty.Sleepers() }
