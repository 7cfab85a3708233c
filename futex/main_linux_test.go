package futex

import (
	"testing"

	"github.com/shmkit/shmkit/internal/proctest"
)

func TestMain(m *testing.M) {
	proctest.Register("echo", childEcho)
	proctest.Register("handoff", childHandoff)
	proctest.Register("sleeper", childSleeper)
	proctest.Main(m)
}
