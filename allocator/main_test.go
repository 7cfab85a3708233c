package allocator

import (
	"testing"

	"github.com/shmkit/shmkit/internal/proctest"
)

// testChildren are the child processes of the cross-process tests; the
// _linux_test.go files add theirs in init.
var testChildren = map[string]func() int{}

func TestMain(m *testing.M) {
	for name, fn := range testChildren {
		proctest.Register(name, fn)
	}
	proctest.Main(m)
}
