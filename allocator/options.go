package allocator

import (
	"fmt"

	"github.com/shmkit/shmkit/futex"
)

// Option configures a handle: pass options to New, Attach or Handle.
type Option func(*options)

type options struct {
	owner  uint32
	waiter futex.Waiter
	cache  int
}

// WithOwner makes the handle act on behalf of participant id (0..MaxOwner,
// else ErrConfig; 0 by default): chunks it allocates record id as their
// owner, and chunks it is moving or caching carry id, so ReclaimOwner(id)
// can return all of them if the participant dies. Give each live
// participant its own id.
func WithOwner(id uint32) Option { return func(o *options) { o.owner = id } }

// WithWaiter makes AllocContext wait with w (the zero Waiter, the default,
// spins briefly and then parks on a futex).
func WithWaiter(w futex.Waiter) Option { return func(o *options) { o.waiter = w } }

// WithCache gives the handle a magazine of up to n chunks per size class
// (0, the default, means none; negative is ErrConfig). Free puts chunks in
// it and Alloc takes them from it without touching the shared free list;
// refills take and spills return n/2 chunks at a time (at least one).
// Cached chunks are marked in their headers as cached by the handle's
// owner, so ReclaimOwner of that owner returns them; Flush returns them
// while the handle lives.
//
// A handle with a cache belongs to one goroutine at a time (the magazine is
// process-local state without a lock); give each goroutine its own with
// Handle. A handle without a cache may be shared by goroutines.
func WithCache(n int) Option { return func(o *options) { o.cache = n } }

func (o *options) apply(opts []Option) error {
	for _, f := range opts {
		f(o)
	}
	if o.owner > MaxOwner {
		return fmt.Errorf("%w: owner %d > %d", ErrConfig, o.owner, MaxOwner)
	}
	if o.cache < 0 || o.cache > MaxChunks {
		return fmt.Errorf("%w: cache of %d chunks", ErrConfig, o.cache)
	}
	return nil
}
