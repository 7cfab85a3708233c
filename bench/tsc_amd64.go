package bench

import (
	"os"
	"strings"
)

// rdtsc reads the time-stamp counter.
func rdtsc() int64

// haveTSC reports whether the time-stamp counter ticks at a constant rate
// whatever the CPU's power state (constant_tsc and nonstop_tsc in
// /proc/cpuinfo), so that it can time round trips.
func haveTSC() bool {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return false
	}
	s := string(b)
	return strings.Contains(s, " constant_tsc") && strings.Contains(s, " nonstop_tsc")
}
