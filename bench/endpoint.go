package bench

// The harness sees every transport through two small interfaces. A copying
// transport sends and receives from buffers of its own (copyOut, copyIn);
// a zero-copy one hands out memory inside the transport.

// outEnd sends messages.
type outEnd interface {
	// buf returns the buffer to write the next message of n bytes into.
	// For a zero-copy transport it is memory inside the transport (a ring
	// slot), valid until send; it may hold an older message's bytes.
	buf(n int) ([]byte, error)
	// send sends the n bytes written into buf.
	send(n int) error
	// inPlace reports whether buf is transport memory (its contents do not
	// survive send) rather than a buffer of the harness's.
	inPlace() bool
}

// inEnd receives messages.
type inEnd interface {
	// next returns the next message, valid until done.
	next() ([]byte, error)
	// done hands the message back (a zero-copy transport frees it).
	done() error
}

// flusher is an outEnd that holds messages back (a batching one): the
// sender flushes it after its last message.
type flusher interface{ flush() error }

// sender is the plain interface of a copying transport's sending end.
type sender interface{ write(msg []byte) error }

// receiver is the plain interface of a copying transport's receiving end:
// it fills buf with one message and returns its length.
type receiver interface{ read(buf []byte) (int, error) }

// copyOut adapts a sender: messages are written into a buffer of the
// harness's, which the sender copies from.
type copyOut struct {
	s sender
	b []byte
}

func newCopyOut(s sender, size int) *copyOut { return &copyOut{s: s, b: make([]byte, size)} }

func (c *copyOut) buf(n int) ([]byte, error) { return c.b[:n], nil }
func (c *copyOut) send(n int) error          { return c.s.write(c.b[:n]) }
func (c *copyOut) inPlace() bool             { return false }

// copyIn adapts a receiver: messages are copied into a buffer of the
// harness's.
type copyIn struct {
	r receiver
	b []byte
}

func newCopyIn(r receiver, size int) *copyIn { return &copyIn{r: r, b: make([]byte, size)} }

func (c *copyIn) next() ([]byte, error) {
	n, err := c.r.read(c.b)
	if err != nil {
		return nil, err
	}
	return c.b[:n], nil
}
func (c *copyIn) done() error { return nil }

// copyEnds makes copying ends of a sender and a receiver (either may be
// nil).
func copyEnds(s sender, r receiver, size int) ends {
	var e ends
	if s != nil {
		e.out = newCopyOut(s, size)
	}
	if r != nil {
		e.in = newCopyIn(r, size)
	}
	return e
}

// chunk is the piece size of a copy of a large message: below the 1 MiB
// from which Go's memmove switches to non-temporal stores (which bypass
// the cache, so the reader then fetches the message from memory).
const chunk = 512 << 10

// copyChunked copies src into dst in pieces of at most chunk bytes.
func copyChunked(dst, src []byte) int {
	n := min(len(dst), len(src))
	for off := 0; off < n; off += chunk {
		copy(dst[off:min(off+chunk, n)], src[off:min(off+chunk, n)])
	}
	return n
}
