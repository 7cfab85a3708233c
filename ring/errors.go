package ring

import "errors"

// Sentinel errors. Every error a ring returns wraps one of these with
// context; test for them with errors.Is.
var (
	// ErrClosed is returned to producers once the ring is closed, and to
	// consumers once it is closed and drained.
	ErrClosed = errors.New("ring: closed")
	// ErrCorrupt means the shared state is impossible (an index behind the
	// other, a distance over the capacity, a length past the end): the peer
	// is broken or hostile. The ring should be abandoned.
	ErrCorrupt = errors.New("ring: shared state corrupt")
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
	// ErrBadLayout is returned by New*, Attach* and *Size for parameters or
	// regions that cannot hold a ring: a capacity that is not a power of
	// two, a region too small or not 64-byte aligned, a header whose sizes
	// disagree with the region.
	ErrBadLayout = errors.New("ring: bad layout")
	// ErrNotRing is returned by Attach* when the region has no ring header
	// (wrong magic) or holds a ring of another kind.
	ErrNotRing = errors.New("ring: region does not hold a ring of this kind")
	// ErrVersion is returned by Attach* for a ring header of another layout
	// version.
	ErrVersion = errors.New("ring: unsupported layout version")
)
