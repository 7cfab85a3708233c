package shmkit_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/shmkit/shmkit"
)

func TestWaitSet(t *testing.T) {
	ctx := ctxT(t)
	var subs []*shmkit.Subscriber
	var pubs []*shmkit.Publisher
	for range 3 {
		ch, err := shmkit.Create(chanName(t), shmkit.Config{MaxMessage: 64, RingDepth: 4})
		if err != nil {
			t.Fatal(err)
		}
		defer ch.Close()
		s, _ := ch.Subscriber()
		p, _ := ch.Publisher()
		subs, pubs = append(subs, s), append(pubs, p)
	}
	ws := shmkit.NewWaitSet(subs...)
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := ws.Wait(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("nothing published: %v", err)
	}
	for _, i := range []int{2, 0, 1} {
		done := make(chan *shmkit.Subscriber, 1)
		go func() {
			s, err := ws.Wait(ctx)
			if err != nil {
				t.Error(err)
			}
			done <- s
		}()
		if err := pubs[i].Send(ctx, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		s := <-done
		if s != subs[i] {
			t.Fatalf("woke for the wrong subscription")
		}
		smp, err := s.TryReceive()
		if err != nil || smp.Bytes()[0] != byte(i) {
			t.Fatalf("receive: %v", err)
		}
		smp.Release()
	}
}
