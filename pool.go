package shmkit

import (
	"fmt"

	"github.com/shmkit/shmkit/allocator"
)

// This file is the only one that uses package allocator: the pool of
// message chunks. Every chunk starts with the message header (layout.go);
// the payload follows it.

// poolClasses returns the size classes of a channel's pool: powers of two
// from 128 bytes, the last one just large enough for MaxMessage plus the
// message header. A power of two that the last class would double at most
// is left out (for 4 KiB messages the classes end 2048, 4160: a 4096 class
// beside 4160 cost a sixth more pool for nothing).
func poolClasses(c Config) []allocator.Class {
	need := (c.MaxMessage + msgHeaderSize + 63) &^ 63
	var cs []allocator.Class
	for sz := 128; ; sz *= 2 {
		if sz >= need || 2*sz > need && sz < need {
			cs = append(cs, allocator.Class{Size: need, Count: c.ChunksPerClass})
			return cs
		}
		cs = append(cs, allocator.Class{Size: sz, Count: c.ChunksPerClass})
	}
}

func poolSize(c Config) (int, error) {
	n, err := allocator.Size(allocator.Config{Classes: poolClasses(c)})
	if err != nil {
		return 0, fmt.Errorf("%w: pool: %w", ErrConfig, err)
	}
	return n, nil
}

// pool is the channel's chunk pool region. No message lives in it today
// (pub/sub messages are in the publishers' logs, a work queue's in its
// ring); it is kept, one chunk per size class by default, for messages
// passed by reference, and Stats and Inspect report it.
type pool struct {
	a *allocator.Allocator
}

func newPool(mem []byte, c Config) (*pool, error) {
	a, err := allocator.New(mem, allocator.Config{Classes: poolClasses(c)})
	if err != nil {
		return nil, fmt.Errorf("%w: pool: %w", ErrConfig, err)
	}
	return &pool{a: a}, nil
}

func attachPool(mem []byte) (*pool, error) {
	a, err := allocator.Attach(mem)
	if err != nil {
		return nil, fmt.Errorf("%w: pool: %w", ErrCorrupt, err)
	}
	return &pool{a: a}, nil
}

// PoolStats are the pool's counters, summed over its size classes.
type PoolStats struct {
	Total, Free, InUse, InFlight int
	Failed                       uint64 // loans that found their class empty
}

func (p *pool) stats() PoolStats { return sumClasses(p.a.Stats()) }

func sumClasses(cs []allocator.ClassStats) PoolStats {
	var s PoolStats
	for _, c := range cs {
		s.Total += c.Total
		s.Free += c.Free
		s.InUse += c.InUse
		s.InFlight += c.InFlight
		s.Failed += c.Failed
	}
	return s
}

// check verifies a quiescent pool (allocator.Check).
func (p *pool) check() error {
	_, err := p.a.Check()
	return err
}
