package ring

import "github.com/shmkit/shmkit/futex"

// Option configures a ring handle; pass options to New* and Attach*.
type Option func(*options)

// options are the per-handle settings an Option sets.
type options struct {
	waiter futex.Waiter
	claims int    // MPMC claim records (WithClaimSlots)
	owner  uint32 // MPMC claim owner (WithOwner)
	view   []byte // Log: a read-only view of the region (WithReadView)
}

// WithWaiter sets how the handle's blocking calls wait for the other side
// (spin, park, ...). Without it the zero futex.Waiter is used: spin briefly,
// then park.
func WithWaiter(w futex.Waiter) Option {
	return func(o *options) { o.waiter = w }
}

// applyOptions folds opts into an options value. Every constructor and
// attach call goes through it, so it also registers the process for the
// asymmetric fence (wait.go) before the handle's first publication.
func applyOptions(opts []Option) options {
	registerFence()
	var o options
	for _, f := range opts {
		if f != nil {
			f(&o)
		}
	}
	return o
}
