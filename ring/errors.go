package ring

import (
	"errors"
	"os"

	"github.com/shmkit/shmkit/internal/errs"
)

// Sentinel errors. Every error a ring returns wraps one of these, sentinel
// first and detail after ("ring: corrupt: tail 9 behind head 12"); test for
// them with errors.Is.
var (
	// ErrClosed is returned to producers once the ring is closed, and to
	// consumers once it is closed and drained. It matches os.ErrClosed.
	ErrClosed = errs.New("ring: closed", os.ErrClosed)
	// ErrCorrupt means the shared state is impossible (an index behind the
	// other, a distance over the capacity, a length past the end, a header
	// whose checksum does not match): the peer is broken or hostile. A
	// state a killed participant can leave behind is never reported as
	// ErrCorrupt; see docs/ring.md.
	ErrCorrupt = errors.New("ring: corrupt")
	// ErrTooLarge is returned for a message longer than the ring's slot
	// size (or, for the byte ring, than MaxRecord).
	ErrTooLarge = errors.New("ring: message too large")
	// ErrShortBuffer is returned by a dequeue whose buffer cannot hold the
	// next message; the message stays in the ring.
	ErrShortBuffer = errors.New("ring: buffer too small for message")
	// ErrOrder is returned for calls out of order on one handle: Commit
	// without Reserve, Release without Peek, or a copying call while a
	// reservation or peek is pending.
	ErrOrder = errors.New("ring: call out of order (reserve/commit or peek/release)")
	// ErrConfig is returned by New*, Attach* and *Size for arguments or
	// regions that cannot hold a ring: a capacity that is not a power of
	// two, a region too small or not 64-byte aligned.
	ErrConfig = errors.New("ring: bad configuration")
	// ErrBadMagic is returned by Attach* when the region has no ring header
	// (wrong magic) or holds a ring of another kind.
	ErrBadMagic = errors.New("ring: bad magic")
	// ErrVersion is returned by Attach* for a ring header of another layout
	// version.
	ErrVersion = errors.New("ring: unsupported layout version")
)
