package bench

import (
	"os"
	"sync"
)

// The in-process reference: a Go channel between two goroutines. To do
// the same work as the rings (a copy in at the sender, a copy out at the
// receiver, a bounded number of messages in flight), messages travel in
// buffers that cycle through a channel of full buffers and a channel of
// free ones, about 1 MiB of them like a ring's slots.

type chanQueue struct {
	full, free chan []byte
	done       <-chan struct{}
}

func newChanQueue(size int, done <-chan struct{}) *chanQueue {
	k := 1
	for k*2*size <= 1<<20 && k < 1024 {
		k *= 2
	}
	k = max(k, 4)
	q := &chanQueue{full: make(chan []byte, k), free: make(chan []byte, k), done: done}
	for range k {
		q.free <- make([]byte, size)
	}
	return q
}

func (q *chanQueue) write(msg []byte) error {
	var b []byte
	select {
	case b = <-q.free:
	case <-q.done:
		return errAborted
	}
	b = b[:copy(b[:cap(b)], msg)]
	select {
	case q.full <- b:
		return nil
	case <-q.done:
		return errAborted
	}
}

func (q *chanQueue) read(buf []byte) (int, error) {
	select {
	case b := <-q.full:
		n := copy(buf, b)
		q.free <- b // never blocks: free has room for every buffer
		return n, nil
	case <-q.done:
		return 0, errAborted
	}
}

type chanTransport struct{}

func init() { register(chanTransport{}) }

func (chanTransport) name() string   { return "chan" }
func (chanTransport) family() string { return FamilyRef }
func (chanTransport) waits() bool    { return false }

func (chanTransport) open(c *cell) (*link, error) {
	done := make(chan struct{})
	var once sync.Once
	up, down := newChanQueue(c.Size, done), newChanQueue(c.Size, done)
	child := copyEnds(up, down, c.Size)
	return &link{
		ends:  copyEnds(down, up, c.Size),
		child: &child,
		abort: func() { once.Do(func() { close(done) }) },
	}, nil
}

func (chanTransport) attach(*cell, []*os.File) (ends, error) {
	return ends{}, unavailable("the Go channel runs in one process")
}
