//go:build !linux

package shmkit

// pidWatch has no pidfds off Linux; see processAlive.
type pidWatch struct{}

func (pw *pidWatch) alive(slot int, w uint64, pid int, start uint64) bool {
	return processAlive(pid, start)
}

func (pw *pidWatch) close() {}
