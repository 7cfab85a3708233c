//go:build !linux

package main

import (
	"fmt"
	"runtime"
)

// runChecks has nothing to check off Linux: shmkit's backends are Linux's.
func runChecks() []finding {
	return []finding{{Check: "os", Severity: sevFail,
		Finding: fmt.Sprintf("this is %s: shmkit's segments, futexes and liveness checks need Linux", runtime.GOOS),
		Fix:     "run on Linux"}}
}
