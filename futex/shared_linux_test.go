package futex

import (
	"os"
	"sync/atomic"
	"testing"
	"unsafe"

	"github.com/shmkit/shmkit/internal/proctest"
)

// The cross-process tests share one page of a memfd: the parent creates it
// and passes it to the child as fd 3 (ExtraFiles[0]).
const sharedLen = 4096

// Offsets in the shared page; each word on its own cache line.
const (
	offEvA   = 0   // Event the parent waits on
	offEvB   = 64  // Event the child waits on
	offTurn  = 128 // ping-pong turn counter
	offAck   = 192 // acknowledgement counter
	offStop  = 256 // non-zero: child must exit
	offReady = 320 // child sets 1 when running
)

type shared struct {
	mem  []byte
	file *os.File
}

func newShared(tb testing.TB) *shared {
	tb.Helper()
	mem, f := proctest.Memfd(tb, sharedLen)
	return &shared{mem: mem, file: f}
}

// childShared maps the page the parent passed as fd 3.
func childShared() (*shared, error) {
	mem, err := proctest.MapFD(3, sharedLen)
	if err != nil {
		return nil, err
	}
	return &shared{mem: mem}, nil
}

func (s *shared) u32(off int) *atomic.Uint32 {
	return (*atomic.Uint32)(unsafe.Pointer(&s.mem[off]))
}

func (s *shared) event(off int) *Event {
	ev, err := EventAt(s.mem[off:])
	if err != nil {
		panic(err)
	}
	return ev
}
