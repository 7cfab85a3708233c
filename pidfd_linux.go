package shmkit

import (
	"errors"
	"sync"

	"golang.org/x/sys/unix"
)

// pidWatch keeps a pidfd per watched participant incarnation, so a
// liveness check is one poll system call (the pidfd turns readable when the
// process exits) instead of a read of /proc/PID/stat. The process's
// identity (pid and start time) is checked once, right after the pidfd is
// opened: from then on the pidfd names that process and no other, even if
// its pid is reused. Kernels without pidfd_open (before 5.3) fall back to
// /proc.
type pidWatch struct {
	mu  sync.Mutex
	fds map[int]pidfdEntry
}

type pidfdEntry struct {
	w  uint64 // the participant's state word the pidfd was opened for
	fd int
}

func (pw *pidWatch) alive(slot int, w uint64, pid int, start uint64) bool {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	e, ok := pw.fds[slot]
	if ok && e.w != w {
		unix.Close(e.fd)
		delete(pw.fds, slot)
		ok = false
	}
	if !ok {
		fd, err := unix.PidfdOpen(pid, 0)
		if errors.Is(err, unix.ESRCH) {
			return false
		}
		if err != nil {
			return processAlive(pid, start)
		}
		if !processAlive(pid, start) { // the pid named another process already
			unix.Close(fd)
			return false
		}
		if pw.fds == nil {
			pw.fds = map[int]pidfdEntry{}
		}
		pw.fds[slot] = pidfdEntry{w: w, fd: fd}
		return true
	}
	fds := []unix.PollFd{{Fd: int32(e.fd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, 0)
	if err != nil {
		return processAlive(pid, start)
	}
	return n == 0
}

func (pw *pidWatch) close() {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	for _, e := range pw.fds {
		unix.Close(e.fd)
	}
	pw.fds = nil
}
