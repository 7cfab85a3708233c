package ring

import (
	"fmt"

	"github.com/shmkit/shmkit/futex"
)

// Option configures a ring handle; pass options to New* and Attach*.
type Option func(*options)

// options are the per-handle settings an Option sets.
type options struct {
	waiter futex.Waiter
	claims int    // MPMC claim records (WithClaimSlots)
	owner  uint32 // MPMC claim owner (WithOwner)
	view   []byte // Log, MPMC: a read-only view of the region (WithReadView)
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

// WithReadView gives a Log or an MPMC ring a second mapping of its region,
// typically read-only (segment.Segment.MapReadOnly of the same bytes): the
// payloads readers get in place (a Log's LogRecord.Data from TryNext and
// Next, an MPMC consumer's TryPeek and Peek) are slices of view, so a
// reader's code that writes into a payload faults instead of changing
// what others see. Writers, Recover, Repair, the copying reads and the
// reader lines and turn words keep using the region passed to New* or
// Attach*. view must be at least as long as the ring's region (ErrConfig)
// and show the same memory (its header bytes must equal the region's,
// ErrConfig otherwise); it must stay mapped as long as the region. The
// SPSC and byte rings ignore it.
func WithReadView(view []byte) Option {
	return func(o *options) { o.view = view }
}

// checkView checks a WithReadView view v against a region mem of size
// bytes: long enough, and (once the header is written, inited) showing
// the same header.
func checkView(mem []byte, size uint64, v []byte, inited bool) error {
	switch {
	case v == nil:
		return nil
	case uint64(len(v)) < size:
		return fmt.Errorf("%w: read view of %d bytes, the ring needs %d", ErrConfig, len(v), size)
	case inited && string(v[:checkedBytes]) != string(mem[:checkedBytes]):
		return fmt.Errorf("%w: read view does not show the ring's region (its header differs)", ErrConfig)
	}
	return nil
}
