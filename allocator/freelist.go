package allocator

import (
	"errors"
	"fmt"

	"github.com/shmkit/shmkit/internal/atomicx"
)

// errEmpty is pop's internal answer for an empty free list; callers turn it
// into ErrNoMemory or a wait.
var errEmpty = errors.New("allocator: free list empty")

// The free list of a class is a Treiber stack threaded through the chunk
// headers (next = index+1 of the chunk below, 0 = bottom). The head word is
//
//	head = tag<<33 | popping<<32 | (index+1 of the top chunk; 0 = empty)
//
// Every successful compare-and-swap on the head increments the 31-bit tag,
// so a CAS prepared from a head read before any other change fails (the ABA
// problem). The popping bit reserves the top chunk for a pop: while it is
// set, nobody links a chunk above the top, and the top chunk goes to
// whoever wins the CAS of its state from free to claimed. The three steps of
// a pop (set popping, claim, unlink) and the two of a push (link, mark free)
// can each be finished by any participant that finds them half done, so a
// participant that dies mid-way blocks nobody, and every chunk it leaves
// half moved carries its id. docs/allocator.md gives the whole argument.
const headPopping = 1 << 32

func headTop(h uint64) uint32     { return uint32(h) }
func headIsPopping(h uint64) bool { return h&headPopping != 0 }
func headTag(h uint64) uint64     { return h >> 33 }
func newHead(h uint64, top uint32, popping bool) uint64 {
	n := (headTag(h)+1)<<33 | uint64(top)
	if popping {
		n |= headPopping
	}
	return n
}

// corruptIfStill returns err when the head still reads h (so what we saw
// was not a transient view of a moving list), and nil to retry.
func (c *class) corruptIfStill(h uint64, err error) error {
	if c.head.Load() == h {
		return err
	}
	return nil
}

// unlinkTop tries to unlink claimed chunk i, the top of popping head h.
func (c *class) unlinkTop(h uint64, i uint32) error {
	next := c.chunk(i).next.Load()
	if uint64(next) > c.count {
		return c.corruptIfStill(h, fmt.Errorf("%w: class %d: chunk %d links to %d beyond %d chunks", ErrCorrupt, c.size, i, next, c.count))
	}
	c.head.CompareAndSwap(h, newHead(h, next, false))
	return nil
}

// finishUnlink returns once claimed chunk i is off the list. A claimed
// chunk is either the top of a popping head or unlinked: nothing can be
// linked above it, and only its claimer can put it back.
func (c *class) finishUnlink(i uint32) error {
	for {
		h := c.head.Load()
		if headTop(h) != i+1 || !headIsPopping(h) {
			return nil
		}
		if err := c.unlinkTop(h, i); err != nil {
			return err
		}
	}
}

// topAction is what helpTop found at the top of a head.
type topAction uint8

const (
	topMoved     topAction = iota // the head changed while we looked: retry
	topHelped                     // we finished (or tried to) someone's step: retry
	topFree                       // plain head, free top: a pop may reserve it, a push may link above it
	topClaimable                  // popping head, free top: whoever CASes the state claims it
)

// helpTop looks at the top of non-empty head h and finishes the step in
// flight there, if any. For topFree and topClaimable it returns the top
// chunk's state, read while the head still was h: a claim must CAS exactly
// that state (see topState).
func (c *class) helpTop(h uint64) (uint64, topAction, error) {
	top := headTop(h)
	if uint64(top) > c.count {
		return 0, topMoved, c.corruptIfStill(h, fmt.Errorf("%w: class %d: free-list head %d beyond %d chunks", ErrCorrupt, c.size, top, c.count))
	}
	i := top - 1
	m := c.chunk(i)
	s, ok := c.topState(h, m)
	if !ok {
		return 0, topMoved, nil
	}
	if !headIsPopping(h) {
		switch {
		case isFree(s):
			return s, topFree, nil
		case isPush(s):
			// Linked by a pusher that has not marked it free yet.
			m.state.CompareAndSwap(s, withLow(s, 0))
			return s, topHelped, nil
		}
		return 0, topMoved, c.corruptIfStill(h, fmt.Errorf("%w: class %d: chunk %d on the free list is %s", ErrCorrupt, c.size, i, stateString(s)))
	}
	switch {
	case isFree(s):
		return s, topClaimable, nil
	case isClaim(s):
		return s, topHelped, c.unlinkTop(h, i)
	}
	return 0, topMoved, c.corruptIfStill(h, fmt.Errorf("%w: class %d: chunk %d at the top of the free list is %s", ErrCorrupt, c.size, i, stateString(s)))
}

// topState reads the state of m, the top chunk of head h, and reports
// whether the head still read h afterwards. Only then is the state known to
// belong to the chunk while it sat at the top of h; and because every state
// a chunk passes through between two stays on the list carries a new
// generation, a CAS that expects this state succeeds only if the chunk has
// not moved since.
func (c *class) topState(h uint64, m *chunkMeta) (uint64, bool) {
	s := m.state.Load()
	return s, c.head.Load() == h
}

// pop claims the top chunk for participant me, unlinks it and returns its
// index; the chunk's state is then claimed by me.
//
// With more (a refill that will pop again at once), the unlink installs the
// next chunk as the top of a popping head: it reserves that chunk in the
// same compare-and-swap, so the next pop starts at the claim and a batch of
// k chunks costs 2k+1 compare-and-swaps instead of 3k. Reserving without
// first reading the chunk's state is safe because a chunk below the top is
// always free: a pusher links above a top only after seeing it free (a top
// being freed is marked free first), a claimed chunk is never below
// another, and nothing changes the state of a listed chunk that is not the
// top. A participant killed right after leaves a popping head with a free,
// unclaimed top, which is the state a kill after an ordinary reserve leaves
// (the next pop claims it, or a push takes it back).
func (c *class) pop(me uint32, more bool) (uint32, error) {
	h := c.head.Load()
	for {
		top := headTop(h)
		if top == 0 {
			return 0, errEmpty
		}
		s, act, err := c.helpTop(h)
		if err != nil {
			return 0, err
		}
		switch act {
		case topFree:
			// Reserve the top, and go on with the head we installed.
			if nh := newHead(h, top, true); c.head.CompareAndSwap(h, nh) {
				hook(stepReserved)
				h = nh
				continue
			}
		case topClaimable:
			if c.chunk(top-1).state.CompareAndSwap(s, withLow(s, lowClaim|me)) {
				hook(stepClaimed)
				// Usually nobody has moved the head: unlink under h at once.
				next := c.chunk(top - 1).next.Load()
				if uint64(next) <= c.count && c.head.CompareAndSwap(h, newHead(h, next, more && next != 0)) {
					hook(stepUnlinked)
					return top - 1, nil
				}
				err := c.finishUnlink(top - 1)
				hook(stepUnlinked)
				return top - 1, err
			}
		}
		h = c.head.Load()
	}
}

// push puts chunk i, whose state the caller has just set to being freed by
// me, on the free list, marks it free and wakes allocators parked on the
// class.
func (c *class) push(i, me uint32) error {
	err := c.pushOne(i, me)
	c.event.Notify()
	return err
}

// pushOne is push without the wake-up. Meeting a popping head whose top is not yet claimed, it takes that
// chunk too (rather than wait for a claimer that may be dead) and pushes it
// back afterwards.
func (c *class) pushOne(i, me uint32) error {
	pending := []uint32{i}
	for len(pending) > 0 {
		i := pending[len(pending)-1]
		pending = pending[:len(pending)-1]
		m := c.chunk(i)
		s0 := m.state.Load()
		if !isPush(s0) || stateID(s0) != me {
			return fmt.Errorf("%w: class %d: chunk %d to push is %s", ErrCorrupt, c.size, i, stateString(s0))
		}
		for {
			h := c.head.Load()
			if top := headTop(h); top != 0 {
				s, act, err := c.helpTop(h)
				if err != nil {
					return err
				}
				if act == topClaimable {
					t := c.chunk(top - 1)
					if t.state.CompareAndSwap(s, withLow(s, lowClaim|me)) {
						if err := c.finishUnlink(top - 1); err != nil {
							return err
						}
						t.state.Store(takenBack(s, me))
						pending = append(pending, top-1)
					}
				}
				if act != topFree {
					continue
				}
			}
			// The chunk is being freed by us and off the list: we alone
			// write its link (helpers and pops only read the links of
			// listed chunks). A release store suffices: the link CAS below
			// is itself a release (a LOCK CMPXCHG on amd64, an
			// acquire-release CAS on arm64), so a participant whose load of
			// the head (an acquire) sees our chunk on top sees this link.
			if m.next.Load() != headTop(h) {
				atomicx.StoreRelease32(&m.next, headTop(h))
			}
			if c.head.CompareAndSwap(h, newHead(h, i+1, false)) {
				hook(stepLinked)
				break
			}
		}
		// Mark it free, unless a helper already did. A compare-and-swap,
		// not a store: once linked, the chunk may already have been marked
		// free by a helper, popped and claimed by someone else.
		m.state.CompareAndSwap(s0, withLow(s0, 0))
		hook(stepPushed)
	}
	return nil
}

// release returns chunk i, whose state the caller has just switched from
// allocated to being freed by me, to the pool.
func (c *class) release(i, me uint32) error {
	c.gave(1)
	return c.push(i, me)
}

// took counts k chunks taken off the free list into in_use and raises the
// high-water mark. The counter is a separate word from the chunk states: a
// participant killed between the two leaves it off (HighWater only; Stats
// counts chunks from their states, and Recover resets the counter).
func (c *class) took(k uint64) {
	inUse := c.inUse.Add(k)
	for h := c.high.Load(); inUse > h && inUse <= c.count; h = c.high.Load() {
		if c.high.CompareAndSwap(h, inUse) {
			break
		}
	}
}

// gave counts k chunks on their way back to the free list out of in_use.
func (c *class) gave(k uint64) { c.inUse.Add(-k) }
