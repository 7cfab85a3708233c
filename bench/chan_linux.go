//go:build linux

package bench

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// The in-process reference: a Go channel between two goroutines. To do
// the same work as the rings (a copy in at the sender, a copy out at the
// receiver, a bounded number of messages in flight), messages travel in
// buffers that cycle through a channel of full buffers and a channel of
// free ones, as many as the ring has slots.

var errAborted = errors.New("aborted")

type chanQueue struct {
	full, free chan []byte
	done       <-chan struct{}
}

func newChanQueue(size int, done <-chan struct{}) *chanQueue {
	k := ringSlots(size)
	q := &chanQueue{full: make(chan []byte, k), free: make(chan []byte, k), done: done}
	for range k {
		q.free <- make([]byte, size)
	}
	return q
}

func (q *chanQueue) send(msg []byte) error {
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

func (q *chanQueue) recv(buf []byte) (int, error) {
	select {
	case b := <-q.full:
		n := copy(buf, b)
		q.free <- b // never blocks: free has room for every buffer
		return n, nil
	case <-q.done:
		return 0, errAborted
	}
}

// runChan runs a cell of the Go channel reference: the "child" side is a
// goroutine of this process. CPU time is the whole process's, counted once
// (as the parent's).
func runChan(ctx context.Context, res Result, spec cellSpec, parentCPU int) Result {
	done := make(chan struct{})
	up, down := newChanQueue(spec.Size, done), newChanQueue(spec.Size, done)
	p := pace{size: spec.Size, warmup: spec.Warmup, duration: spec.Duration, minMsgs: spec.MinMsgs}
	type outcome struct {
		st  sideStats
		err error
	}
	childDone := make(chan outcome, 1)
	go func() {
		restore, err := pinThread(spec.CPU)
		if err != nil {
			childDone <- outcome{err: err}
			return
		}
		defer restore()
		var st sideStats
		if spec.pingpong() {
			st, err = pong(down, up, spec.Size)
		} else {
			st, err = produce(up, p)
		}
		childDone <- outcome{st, err}
	}()
	parentDone := make(chan outcome, 1)
	go func() {
		restore, err := pinThread(parentCPU)
		if err != nil {
			parentDone <- outcome{err: err}
			return
		}
		defer restore()
		var st sideStats
		if spec.pingpong() {
			st, err = ping(down, up, p)
		} else {
			st, err = consume(up, spec.Size)
		}
		parentDone <- outcome{st, err}
	}()
	timer := time.NewTimer(spec.Timeout)
	defer timer.Stop()
	var po, co outcome
	var got int
	for got < 2 {
		select {
		case po = <-parentDone:
			got++
			if po.err != nil {
				close(done)
				co = <-childDone
				got++
			}
		case co = <-childDone:
			got++
			if co.err != nil {
				close(done)
				po = <-parentDone
				got++
			}
		case <-timer.C:
			close(done)
			po, co = <-parentDone, <-childDone
			got = 2
			po.err = errors.Join(fmt.Errorf("cell took over %v", spec.Timeout), po.err)
		case <-ctx.Done():
			close(done)
			po, co = <-parentDone, <-childDone
			got = 2
			po.err = errors.Join(ctx.Err(), po.err)
		}
	}
	if err := errors.Join(po.err, co.err); err != nil {
		res.Error = err.Error()
		return res
	}
	if !spec.pingpong() && po.st.msgs != co.st.msgs {
		res.Error = fmt.Sprintf("producer sent %d measured messages, consumer received %d: %v", co.st.msgs, po.st.msgs, ErrCorrupt)
		return res
	}
	fill(&res, po.st, 0)
	res.Verified = po.st.verified + co.st.verified
	return res
}
