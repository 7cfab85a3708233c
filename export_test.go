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
// On a pub/sub channel: parked on any publisher log's not-empty event.
func (ch *Channel) SleepersForTest(k int) uint32 {
	if ch.logs != nil {
		var n uint32
		for _, l := range ch.logs {
			n += l.NotEmpty().Sleepers()
		}
		return n
	}
	return ch.wq.NotEmpty().Sleepers()
}

// TapActiveForTest returns the channel's tap active word (0: no tap
// attached, or no tap ring).
func (ch *Channel) TapActiveForTest() uint64 {
	if ch.tap == nil {
		return 0
	}
	return ch.tap.active.Load()
}

// CreateWithoutTapForTest creates a channel as a shmkit from before taps
// did: without the "tap" region.
func CreateWithoutTapForTest(name string, cfg Config) (*Channel, error) {
	noTapRegion.Store(true)
	defer noTapRegion.Store(false)
	return Create(name, cfg)
}

// JoinedSleepersForTest returns how many waiters (WaitFor) are parked on
// the channel's joined event.
func (ch *Channel) JoinedSleepersForTest() uint32 { return ch.joinedEv().Sleepers() }

// RaceEnabled reports a -race build.
const RaceEnabled = raceEnabled

// QueueWholeForTest reports what a work queue still holds: messages
// queued and claim records taken (both 0 once every participant left or
// was cleaned up).
func (ch *Channel) QueueWholeForTest() (queued, claims int) {
	return ch.wq.Len(), ch.wq.ClaimsHeld()
}
