package shmkit_test

import (
	"os"
	"testing"

	"github.com/shmkit/shmkit"
	"github.com/shmkit/shmkit/segment"
)

// TestInspectRings: Inspect reports each subscriber's occupancy (messages
// sent and not yet released: unread or held, since a held sample pins its
// position), which subscriber slot is unused (closed), the pool's size
// classes and each participant's start time.
func TestInspectRings(t *testing.T) {
	name := chanName(t)
	ch, err := shmkit.Create(name, shmkit.Config{MaxMessage: 64, RingDepth: 8, MaxSubscribers: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	sub, _ := ch.Subscriber()
	pub, _ := ch.Publisher()
	for range 5 {
		if err := pub.Send(ctxT(t), []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	m, _ := sub.TryReceive()
	defer m.Release()
	_, st, err := shmkit.Inspect(name)
	if err != nil {
		t.Fatal(err)
	}
	slot := -1
	for _, p := range st.Participants {
		if p.Role == "subscriber" {
			slot = p.Slot
		}
		if want, err := segment.ProcessStart(os.Getpid()); err == nil && p.Start != want {
			t.Errorf("participant %d: start %d, want %d", p.Slot, p.Start, want)
		}
	}
	if len(st.Rings) != 2 {
		t.Fatalf("rings %+v, want 2", st.Rings)
	}
	for _, r := range st.Rings {
		switch {
		case r.Depth != 8:
			t.Errorf("ring %+v: depth", r)
		case r.Ring == slot && (r.Len != 5 || r.Closed):
			t.Errorf("subscriber's ring %+v: want 5 unreleased, open", r)
		case r.Ring != slot && (r.Len != 0 || !r.Closed):
			t.Errorf("unused ring %+v: want empty, closed", r)
		}
	}
	total := 0
	for _, c := range st.Classes {
		total += c.Total
	}
	if len(st.Classes) == 0 || total != st.Pool.Total {
		t.Errorf("classes %+v, pool %+v", st.Classes, st.Pool)
	}
}
