package allocator

import (
	"errors"
	"fmt"
)

// errEmpty is pop's internal answer for an empty free list; callers turn it
// into ErrNoMemory or a wait.
var errEmpty = errors.New("allocator: free list empty")

// The free list of a class is a Treiber stack threaded through the chunk
// headers. The head word packs a tag and the top chunk:
//
//	head = tag<<32 | (index+1)     (index+1 == 0: the list is empty)
//
// Every successful compare-and-swap on the head increments the tag, so a
// pop that read head h, then lost the processor while others popped and
// pushed the same top chunk back, fails its CAS because the tag differs (the
// ABA problem). docs/allocator.md gives the whole argument.

func headTop(h uint64) uint32 { return uint32(h) }

func nextHead(h uint64, top uint32) uint64 { return (h>>32+1)<<32 | uint64(top) }

// pop unlinks the top chunk and returns its index. Links are untrusted: a
// head or next link outside 1..count is ErrCorrupt when the head has not
// moved meanwhile (a moved head only means we read a link that was being
// rewritten, so we retry).
func (c *class) pop() (uint32, error) {
	for {
		h := c.head.Load()
		top := headTop(h)
		if top == 0 {
			return 0, errEmpty
		}
		if uint64(top) > c.count {
			if c.head.Load() == h {
				return 0, fmt.Errorf("class %d: free-list head %d beyond %d chunks: %w", c.size, top, c.count, ErrCorrupt)
			}
			continue
		}
		next := c.chunk(top - 1).next.Load()
		if uint64(next) > c.count {
			if c.head.Load() == h {
				return 0, fmt.Errorf("class %d: chunk %d links to %d beyond %d chunks: %w", c.size, top-1, next, c.count, ErrCorrupt)
			}
			continue
		}
		if c.head.CompareAndSwap(h, nextHead(h, next)) {
			return top - 1, nil
		}
	}
}

// push links chunk i (which the caller has just made free) onto the list
// and wakes allocators parked on the class, if any.
func (c *class) push(i uint32) {
	m := c.chunk(i)
	for {
		h := c.head.Load()
		m.next.Store(headTop(h))
		if c.head.CompareAndSwap(h, nextHead(h, i+1)) {
			break
		}
	}
	c.event.Notify()
}

// release returns chunk i, whose state the caller has just switched to free,
// to the pool.
func (c *class) release(i uint32) {
	c.inUse.Add(^uint64(0))
	c.push(i)
}
