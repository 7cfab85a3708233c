//go:build !linux

package procfs

import "errors"

var errNoProc = errors.New("procfs: no /proc on this system")

// Stat is unavailable off Linux.
func Stat(pid int) (uint64, byte, error) { return 0, 0, errNoProc }

// StartTime is unavailable off Linux.
func StartTime(pid int) (uint64, error) { return 0, errNoProc }

// Alive reports false off Linux: liveness cannot be checked.
func Alive(pid int, start uint64) bool { return false }

// ReadInt is unavailable off Linux.
func ReadInt(path string) (int64, error) { return 0, errNoProc }

// LoadAvg is unavailable off Linux.
func LoadAvg() (string, error) { return "", errNoProc }
