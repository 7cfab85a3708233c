package bench

import (
	"os"
	"testing"
)

// TestMain lets the test binary serve as the child of every cell: Run
// re-executes os.Executable() as a child registered with internal/reexec.
// The tests' own children (crashChild) are registered here too.
func TestMain(m *testing.M) {
	registerTestChildren()
	if IsChild() {
		os.Exit(ChildMain())
	}
	os.Exit(m.Run())
}
