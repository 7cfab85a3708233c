package procfs

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Root is the mount point of the proc file system.
const Root = "/proc"

// Stat returns process pid's start time in clock ticks after boot (field 22
// of /proc/PID/stat) and its state letter (R, S, D, Z, X, ...). A missing
// process gives an error satisfying errors.Is(err, fs.ErrNotExist).
func Stat(pid int) (start uint64, state byte, err error) {
	b, err := os.ReadFile(Root + "/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	return parseStat(pid, b)
}

func parseStat(pid int, b []byte) (start uint64, state byte, err error) {
	// "pid (comm) state ppid ...": comm may hold spaces and parentheses, so
	// split after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("%w: /proc/%d/stat: no ')'", ErrFormat, pid)
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 20 || len(f[0]) != 1 {
		return 0, 0, fmt.Errorf("%w: /proc/%d/stat: %d fields", ErrFormat, pid, len(f)+2)
	}
	start, err = strconv.ParseUint(string(f[19]), 10, 64) // field 22
	if err != nil {
		return 0, 0, fmt.Errorf("%w: /proc/%d/stat: start time: %w", ErrFormat, pid, err)
	}
	return start, f[0][0], nil
}

// StartTime returns process pid's start time (see Stat).
func StartTime(pid int) (uint64, error) {
	start, _, err := Stat(pid)
	return start, err
}

// Alive reports whether process pid, started at start (as StartTime reports
// it), is still running. A zombie is not alive, and neither is a different
// process that reuses the pid.
func Alive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	got, state, err := Stat(pid)
	return err == nil && got == start && state != 'Z' && state != 'X'
}

// ReadInt reads a file holding one integer (a /proc/sys tunable).
func ReadInt(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %s: %w", ErrFormat, path, err)
	}
	return v, nil
}

// LoadAvg returns the first three fields of /proc/loadavg ("0.52 0.30
// 0.12").
func LoadAvg() (string, error) {
	b, err := os.ReadFile(Root + "/loadavg")
	if err != nil {
		return "", err
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "", fmt.Errorf("%w: /proc/loadavg: %q", ErrFormat, b)
	}
	return strings.Join(f[:3], " "), nil
}
