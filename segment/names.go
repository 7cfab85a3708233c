package segment

import (
	"fmt"
	"strings"
)

// ValidName reports whether name may name a segment: 1 to MaxNameLen
// characters from [A-Za-z0-9._-], not containing "..".
func ValidName(name string) bool {
	return validChars(name, MaxNameLen) && !strings.Contains(name, "..")
}

func validChars(s string, max int) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

func checkName(name string) error {
	if !ValidName(name) {
		return fmt.Errorf("%w: %q (want 1-%d characters of [A-Za-z0-9._-], no \"..\")",
			ErrInvalidName, name, MaxNameLen)
	}
	return nil
}

func checkRegionName(name string) error {
	if !validChars(name, MaxRegionNameLen) {
		return fmt.Errorf("%w: region %q (want 1-%d characters of [A-Za-z0-9._-])",
			ErrInvalidName, name, MaxRegionNameLen)
	}
	return nil
}

// POSIXDir is where POSIX shared memory objects live on Linux, and Prefix
// starts the name of every shmkit object (/dev/shm/shmkit.NAME, the memfd
// label memfd:shmkit.NAME, the SysV key hash input), so tools can tell ours
// from others.
const (
	POSIXDir = "/dev/shm"
	Prefix   = "shmkit."
)
