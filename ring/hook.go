package ring

// step names a point inside a ring operation between two stores to shared
// memory: the places where a killed process leaves the most to recover
// from. The crash tests kill a child at each of them in turn.
type step uint8

const (
	stepProducerWritten   step = iota + 1 // slot (or record) written, not yet published
	stepProducerPublished                 // published, consumer not yet woken
	stepProducerNotified                  // consumer woken, call not yet returned
	stepConsumerCopied                    // message read, its room not yet handed back
	stepConsumerReleased                  // room handed back, producer not yet woken
	stepProducerClaimed                   // log: claim published (tail stored), nothing written
	stepProducerPadded                    // log: padding to the lap's end published, the record not yet claimed
	stepLast                              // number of steps + 1
)

// killHook, when non-nil, is called at every step. Production code never
// sets it; only tests do (crash_linux_test.go), which is why it is a
// package variable and not an environment setting.
var killHook func(step)

// hook calls killHook at step s. With killHook nil it costs one load and a
// predictable branch.
func hook(s step) {
	if killHook != nil {
		killHook(s)
	}
}
