package bench

import (
	"os"
	"testing"
)

// TestMain lets the test binary serve as the child of every cell: Run
// re-executes os.Executable() with EnvChild set.
func TestMain(m *testing.M) {
	if IsChild() {
		os.Exit(ChildMain())
	}
	os.Exit(m.Run())
}
