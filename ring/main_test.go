package ring

import (
	"testing"

	"github.com/shmkit/shmkit/internal/proctest"
)

// TestMain runs the children that cross-process tests and benchmarks start
// (registered in init functions of the _linux_test.go files).
func TestMain(m *testing.M) { proctest.Main(m) }
