package allocator

// step names a point between two shared-memory writes of a multi-step
// operation: the crash tests stop a child process at each one in turn.
type step uint8

const (
	stepReserved  step = iota // pop: popping bit set on the head, top not yet claimed
	stepClaimed               // pop: top claimed, not yet unlinked
	stepUnlinked              // pop: claimed chunk off the list, not yet allocated or cached
	stepAllocated             // alloc without a cache: chunk allocated, in_use not yet counted
	stepCached                // refill: chunk marked cached, not yet in the magazine
	stepRefilled              // refill: batch in the magazine, in_use not yet counted
	stepFreeing               // free or spill: chunk marked being freed, not yet linked
	stepLinked                // push: chunk linked, not yet marked free
	stepPushed                // push: chunk marked free, wake-up not yet sent
	stepToCache               // free into a cache: chunk marked cached, not yet in the magazine
	numSteps
)

var stepNames = [numSteps]string{
	stepReserved: "reserved", stepClaimed: "claimed", stepUnlinked: "unlinked",
	stepAllocated: "allocated", stepCached: "cached", stepRefilled: "refilled",
	stepFreeing: "freeing", stepLinked: "linked", stepPushed: "pushed", stepToCache: "to-cache",
}

func (s step) String() string {
	if s < numSteps {
		return stepNames[s]
	}
	return "step?"
}

// testHook, when set, is called at every step. Only tests set it (it is
// unexported and no environment variable reaches it); it must be set before
// the handles it should see are used.
var testHook func(step)

func hook(s step) {
	if testHook != nil {
		testHook(s)
	}
}
