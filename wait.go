package shmkit

import (
	"context"

	"github.com/shmkit/shmkit/futex"
)

func (ch *Channel) waitOn(ctx context.Context, ev interface{ Notify() bool }, cond func() bool) error {
	return ch.waiter.Wait(ctx, ev.(*futex.Event), cond)
}
