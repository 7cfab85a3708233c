//go:build linux

package bench

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// pinThread locks the calling goroutine to its OS thread and that thread
// to cpu. The returned function restores the thread's CPU set and unlocks
// it. With cpu < 0 it does nothing: locking a goroutine to a thread
// without pinning only adds thread hand-offs (a Go channel between two
// locked goroutines wakes an OS thread per message).
func pinThread(cpu int) (restore func(), err error) {
	if cpu < 0 {
		return func() {}, nil
	}
	runtime.LockOSThread()
	var old, set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("sched_getaffinity: %w", err)
	}
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("pin to CPU %d: %v: %w", cpu, err, ErrConfig)
	}
	return func() {
		_ = unix.SchedSetaffinity(0, &old)
		runtime.UnlockOSThread()
	}, nil
}

// twoCPUs returns two distinct CPUs this process may run on, or false.
func twoCPUs() (int, int, bool) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return 0, 0, false
	}
	var got []int
	for i := 0; i < 1024 && len(got) < 2; i++ {
		if set.IsSet(i) {
			got = append(got, i)
		}
	}
	if len(got) < 2 {
		return 0, 0, false
	}
	return got[0], got[1], true
}
