package segment

import "github.com/shmkit/shmkit/internal/procfs"

// ProcessStart returns the start time of process pid in clock ticks after
// boot (field 22 of /proc/PID/stat). Together with the pid it names a
// process uniquely: a pid reused later has a different start time.
func ProcessStart(pid int) (uint64, error) {
	start, err := procfs.StartTime(pid)
	if err != nil {
		return 0, osErr(err)
	}
	return start, nil
}

// ProcessAlive reports whether process pid, started at start (as
// ProcessStart reports it), is still running. A zombie is not alive, and
// neither is a different process that reuses the pid.
func ProcessAlive(pid int, start uint64) bool { return procfs.Alive(pid, start) }
