package segment

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shmkit/shmkit/internal/proctest"
)

func TestMain(m *testing.M) {
	// Children are registered in init functions of the _linux_test files.
	proctest.Main(m)
}

// testName returns a segment name unique to this process and test.
func testName(t testing.TB) string {
	r := strings.NewReplacer("/", ".", " ", "_", "#", "_")
	n := fmt.Sprintf("test.%d.%s", os.Getpid(), r.Replace(t.Name()))
	if len(n) > MaxNameLen {
		n = n[:MaxNameLen]
	}
	return n
}

// nameFor returns what to pass as the name on backend b (a path for File).
func testTarget(t testing.TB, b Backend) string {
	if b == File {
		return filepath.Join(t.TempDir(), testName(t))
	}
	return testName(t)
}

// removeLater removes the segment when the test ends, if it still exists.
func removeLater(t testing.TB, b Backend, name string, opts *Options) {
	t.Cleanup(func() {
		if b == Memfd {
			return
		}
		if err := Remove(b, name, opts); err != nil && !errors.Is(err, ErrNotExist) {
			t.Errorf("cleanup: %v", err)
		}
	})
}

func mustCreate(t testing.TB, b Backend, name string, size int64, opts *Options) *Segment {
	t.Helper()
	s, err := Create(b, name, size, opts)
	if err != nil {
		t.Fatalf("Create(%v, %q, %d): %v", b, name, size, err)
	}
	removeLater(t, b, name, opts)
	t.Cleanup(func() { s.Close() })
	return s
}

var allBackends = []Backend{POSIX, SysV, File, Memfd}
