//go:build linux

package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// The scaling rows: one MPMC ring, Senders producer goroutines in the
// child, Receivers consumer goroutines in the parent, each with a handle of
// its own. A message carries its producer's id and sequence number; every
// consumer checks that each producer's sequence numbers rise in what it
// receives, the tail stamp of every message and the checksum of a sample,
// and the parent checks that it received, per producer, exactly what the
// child reports having sent. The window runs from the first message any
// consumer takes to the last.

// runScaling runs one scaling cell.
func runScaling(ctx context.Context, c cell) Result {
	res := Result{Transport: fmt.Sprintf("mpmc/%dx%d", c.Senders, c.Receivers), Family: FamilyShmkit,
		Workload: Scaling, Size: c.Size, Wait: c.Wait, Senders: c.Senders, Receivers: c.Receivers}
	m, f, err := newMPMCShared(&c)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	defer m.release()
	c.Files = 1
	var got [idMask + 1]atomic.Int64 // messages received per producer
	pst, rep, err := runWithChild(ctx, c, []*os.File{f}, m.close, func() (sideStats, error) {
		return scaleConsume(&c, m, &got)
	})
	if err != nil {
		res.Error = err.Error()
		return res
	}
	if len(rep.PerSender) != c.Senders {
		res.Error = fmt.Sprintf("%v: child reports %d producers, want %d", ErrCorrupt, len(rep.PerSender), c.Senders)
		return res
	}
	for id, sent := range rep.PerSender {
		if g := got[id].Load(); g != sent {
			res.Error = fmt.Sprintf("%v: producer %d sent %d messages, consumers received %d", ErrCorrupt, id, sent, g)
			return res
		}
	}
	fill(&res, pst, time.Duration(rep.CPUNs))
	res.Summed = pst.summed + rep.Summed
	return res
}

// scaleConsume runs the consumers until every producer's last message has
// been taken and the ring is drained.
func scaleConsume(c *cell, m *mpmcShared, got *[idMask + 1]atomic.Int64) (sideStats, error) {
	var (
		wg          sync.WaitGroup
		lasts       atomic.Int64
		first, last atomic.Int64
		summed      atomic.Int64
		errOnce     sync.Once
		firstErr    error
	)
	fail := func(err error) {
		errOnce.Do(func() { firstErr = err })
		m.close()
	}
	cpu0 := processCPU()
	for range c.Receivers {
		e, err := m.handle()
		if err != nil {
			return sideStats{}, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var prev [idMask + 1]int64
			for i := range prev {
				prev[i] = -1
			}
			var n int64
			for {
				msg, err := e.in.next()
				if err != nil {
					if isClosed(err) {
						return
					}
					fail(fmt.Errorf("receive: %w", err))
					return
				}
				now := nanotime()
				first.CompareAndSwap(0, now)
				if len(msg) < MinSize {
					fail(fmt.Errorf("%w: message of %d bytes", ErrCorrupt, len(msg)))
					return
				}
				w := binary.LittleEndian.Uint64(msg)
				id, seq := int(w>>idShift&idMask), w&seqMask
				if id >= c.Senders || int64(seq) <= prev[id] {
					fail(fmt.Errorf("%w: producer %d message %d after %d (or no such producer)", ErrCorrupt, id, seq, prev[id]))
					return
				}
				sum := sampled(seq, false)
				if _, err := verify(msg, c.Size, id, seq, sum); err != nil {
					fail(err)
					return
				}
				if sum {
					summed.Add(1)
				}
				prev[id] = int64(seq)
				got[id].Add(1)
				n++
				if w&flagLast != 0 {
					last.Store(now)
					if int(lasts.Add(1)) == c.Senders {
						m.close() // the others drain what is left and stop
					}
				}
			}
		}()
	}
	wg.Wait()
	var st sideStats
	for i := range got {
		st.msgs += got[i].Load()
	}
	st.elapsed = time.Duration(last.Load() - first.Load())
	st.cpu = processCPU() - cpu0
	st.summed = summed.Load()
	if firstErr == nil && int(lasts.Load()) != c.Senders {
		firstErr = fmt.Errorf("%w: %d of %d producers' last messages arrived", ErrCorrupt, lasts.Load(), c.Senders)
	}
	return st, firstErr
}

// scaleChild runs the producers of a scaling cell.
func scaleChild(c *cell) (sideStats, []int64, error) {
	if c.Senders < 1 || c.Senders > idMask+1 {
		return sideStats{}, nil, fmt.Errorf("%w: %d producers", ErrConfig, c.Senders)
	}
	files := childFiles(1)
	m, err := attachMPMCShared(c, files[0])
	if err != nil {
		return sideStats{}, nil, err
	}
	per := make([]int64, c.Senders)
	errs := make([]error, c.Senders)
	var summed atomic.Int64
	var wg sync.WaitGroup
	cpu0 := processCPU()
	for i := range c.Senders {
		e, err := m.handle()
		if err != nil {
			return sideStats{}, nil, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := paceOf(c)
			p.id, p.warmup, p.duration = i, time.Nanosecond, c.Warmup+c.Duration
			pr := newProducer(e.out, p)
			errs[i] = runRole(pr)
			per[i] = int64(pr.seq)
			summed.Add(pr.st.summed)
		}()
	}
	wg.Wait()
	st := sideStats{cpu: processCPU() - cpu0, summed: summed.Load()}
	for i, err := range errs {
		st.msgs += per[i]
		if err != nil {
			return st, per, fmt.Errorf("producer %d: %w", i, err)
		}
	}
	return st, per, nil
}
