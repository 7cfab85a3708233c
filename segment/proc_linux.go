package segment

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
)

// ProcessStart returns the start time of process pid in clock ticks after
// boot (field 22 of /proc/PID/stat). Together with the pid it names a
// process uniquely: a pid reused later has a different start time.
func ProcessStart(pid int) (uint64, error) {
	start, _, err := procStat(pid)
	return start, err
}

// ProcessAlive reports whether process pid, started at start (as
// ProcessStart reports it), is still running. A zombie is not alive, and
// neither is a different process that reuses the pid.
func ProcessAlive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	got, state, err := procStat(pid)
	return err == nil && got == start && state != 'Z' && state != 'X'
}

func procStat(pid int) (start uint64, state byte, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, osErr(err)
	}
	// "pid (comm) state ppid ...": comm may hold spaces and parentheses, so
	// split after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: no ')'", pid)
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 20 || len(f[0]) != 1 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	start, err = strconv.ParseUint(string(f[19]), 10, 64) // field 22
	if err != nil {
		return 0, 0, fmt.Errorf("/proc/%d/stat: start time: %w", pid, err)
	}
	return start, f[0][0], nil
}
