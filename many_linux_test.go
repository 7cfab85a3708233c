package shmkit_test

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/shmkit/shmkit"
)

func init() { extraChildren["many-subscribers"] = childManySubscribers }

// childManySubscribers joins channel CH with N subscribers, each receiving
// on its own goroutine until ErrPeerGone and checking every message (whole,
// in order per publisher slot); it prints "got <total>".
func childManySubscribers() int {
	ch, err := shmkit.Open(env("CH"))
	if err != nil {
		return fail("many: %v", err)
	}
	defer ch.Close()
	n := envInt("N", 1)
	max := ch.Config().MaxMessage
	var subs []*shmkit.Subscriber
	for range n {
		s, err := ch.Subscriber()
		if err != nil {
			return fail("many: subscriber %d: %v", len(subs), err)
		}
		subs = append(subs, s)
	}
	ctx := childCtx()
	var total atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for _, s := range subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			last := map[int]uint64{}
			for {
				smp, err := s.Receive(ctx)
				if errors.Is(err, shmkit.ErrPeerGone) {
					return
				}
				if err != nil {
					errs <- err
					return
				}
				from, seq := smp.Publisher(), smp.Seq()
				if err := verify(smp.Bytes(), from, seq, max); err != nil {
					errs <- err
					return
				}
				if seq != last[from&0xff]+1 {
					errs <- fmt.Errorf("publisher %d: message %d after %d", from, seq, last[from&0xff])
					return
				}
				last[from&0xff] = seq
				smp.Release()
				total.Add(1)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return fail("many: %v", err)
	}
	fmt.Printf("got %d\n", total.Load())
	return 0
}

// Test256SubscribersAcrossProcesses: 256 subscribers in four processes on
// one channel, a publisher process sending to all of them: each gets every
// message whole and in order (the publisher writes each once, in its log).
func Test256SubscribersAcrossProcesses(t *testing.T) {
	const procs, per, n = 4, 64, 200
	name := chanName(t)
	ch, err := shmkit.Create(name, shmkit.Config{MaxMessage: 300, RingDepth: 64, MaxSubscribers: procs * per, MaxPublishers: 2, MaxProcesses: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	var cmds []*exec.Cmd
	var outs []*strings.Builder
	for range procs {
		c, o := start(t, "many-subscribers", "CH="+name, fmt.Sprintf("N=%d", per))
		cmds, outs = append(cmds, c), append(outs, o)
	}
	waitFor(t, "256 subscribers", func() bool { return count(t, ch, "subscriber") == procs*per })
	pub, po := start(t, "publisher", "CH="+name, fmt.Sprintf("COUNT=%d", n))
	waitOK(t, pub, po)
	for i, c := range cmds {
		waitOK(t, c, outs[i])
		if got := gotN(t, outs[i]); got != per*n {
			t.Errorf("process %d: its %d subscribers got %d messages, want %d", i, per, got, per*n)
		}
	}
}
