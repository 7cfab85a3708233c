package ring

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// TestAsymmetricFence is the store-buffer litmus test behind wait.go's
// argument, run on this machine: a publisher stores a word with publish64
// and then loads a sleeper count; a waiter increments the count, calls
// sleeperFence and loads the word. In no round may both loads miss the
// other side's store (the publisher would skip the wake and the waiter
// would sleep: a lost wake-up). Without the fence, x86 shows such rounds
// (a store waiting in the store buffer while the later load is served);
// with it there must be none. Each round starts both sides together.
func TestAsymmetricFence(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		t.Skip("needs two Ps")
	}
	registerFence()
	if !fastPublish {
		t.Skip("publications are sequentially consistent here; nothing to test")
	}
	rounds := 1000 // each round waits until both goroutines run: slow on a loaded VM
	if testing.Short() {
		rounds = 300
	}
	type pad [cacheLine]byte
	var sh struct {
		word     atomic.Uint64
		_        pad
		sleepers atomic.Uint64
		_        pad
		go1, go2 atomic.Uint64
	}
	sawSleepers := make([]uint64, rounds+1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // publisher
		defer wg.Done()
		for i := uint64(1); i <= uint64(rounds); i++ {
			sh.go1.Store(i)
			for sh.go2.Load() < i {
			}
			publish64(&sh.word, i)
			sawSleepers[i] = sh.sleepers.Load()
		}
	}()
	lost := 0
	for i := uint64(1); i <= uint64(rounds); i++ {
		sh.go2.Store(i)
		for sh.go1.Load() < i {
		}
		sh.sleepers.Add(1)
		sleeperFence()
		w := sh.word.Load()
		for sh.go1.Load() < i+1 && i < uint64(rounds) { // the publisher has finished round i
		}
		if i == uint64(rounds) {
			wg.Wait()
		}
		if w < i && sawSleepers[i] < i {
			lost++
		}
	}
	wg.Wait()
	if lost > 0 {
		t.Fatalf("%d of %d rounds lost the wake-up: neither side saw the other's store", lost, rounds)
	}
}
