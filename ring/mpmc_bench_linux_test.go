package ring

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/shmkit/shmkit/internal/proctest"
)

func init() {
	proctest.Register("bench-mpmc-produce", benchChildMPMCProduce)
	proctest.Register("bench-mpmc-consume", benchChildMPMCConsume)
}

// BenchmarkMPMC moves b.N messages through a 4096-slot MPMC ring from P
// producer children to P consumer children (the benchmark process only
// coordinates), one Enqueue / Dequeue per message:
//
//	1to1, 2to2              64-byte messages, no claim slots
//	1to1-claims, 2to2-claims 64-byte messages, claims recorded for Repair
//	1to1-8B                 8-byte messages through Enqueue / Dequeue
//	1to1-u64                8-byte messages through EnqueueU64 / DequeueU64
//
// Compare with BenchmarkChan/64B in the same run:
//
//	go test -run '^$' -bench 'MPMC|Chan/64B' -count 5 ./ring/
func BenchmarkMPMC(b *testing.B) {
	for _, tc := range []struct {
		name     string
		pc, size int
		claims   int
		u64      bool
	}{
		{"1to1", 1, 64, 0, false},
		{"2to2", 2, 64, 0, false},
		{"1to1-claims", 1, 64, 8, false},
		{"2to2-claims", 2, 64, 8, false},
		{"1to1-8B", 1, 8, 0, false},
		{"1to1-u64", 1, 8, 0, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			const capacity = 4096
			rs, _ := MPMCSize(capacity, tc.size, WithClaimSlots(tc.claims))
			a := newSharedArea(b, rs)
			if _, err := NewMPMC(a.ring(), capacity, tc.size, WithClaimSlots(tc.claims)); err != nil {
				b.Fatal(err)
			}
			per := (b.N + tc.pc - 1) / tc.pc
			env := []string{fmt.Sprintf("RING_PER=%d", per)}
			if tc.u64 {
				env = append(env, "RING_U64=1")
			}
			for i := range tc.pc {
				a.start(b, "bench-mpmc-consume", append(env, fmt.Sprintf("RING_ID=%d", i))...)
				a.start(b, "bench-mpmc-produce", append(env, fmt.Sprintf("RING_ID=%d", i))...)
			}
			a.waitWord(b, wordReady, uint32(2*tc.pc))
			b.SetBytes(int64(tc.size))
			goBench(b, a)
			a.waitWord(b, wordDone, uint32(2*tc.pc))
			b.StopTimer()
			reportRate(b, per*tc.pc)
		})
	}
}

func benchChildMPMCProduce() int {
	a, err := childArea()
	if err != nil {
		return childFail("%v", err)
	}
	r, err := AttachMPMC(a.ring(), WithOwner(uint32(envInt("RING_ID", 0))))
	if err != nil {
		return childFail("%v", err)
	}
	p := r.Producer()
	n := envInt("RING_PER", 0)
	u64 := os.Getenv("RING_U64") != ""
	msg := make([]byte, r.SlotSize())
	ctx := context.Background()
	childReady(a)
	for i := range n {
		if u64 {
			err = p.EnqueueU64(ctx, uint64(i))
		} else {
			err = p.Enqueue(ctx, msg)
		}
		if err != nil {
			return childFail("%v", err)
		}
	}
	a.word(wordDone).Add(1)
	return 0
}

func benchChildMPMCConsume() int {
	a, err := childArea()
	if err != nil {
		return childFail("%v", err)
	}
	r, err := AttachMPMC(a.ring(), WithOwner(uint32(100+envInt("RING_ID", 0))))
	if err != nil {
		return childFail("%v", err)
	}
	c := r.Consumer()
	n := envInt("RING_PER", 0)
	u64 := os.Getenv("RING_U64") != ""
	buf := make([]byte, r.SlotSize())
	ctx := context.Background()
	var sum uint64
	childReady(a)
	// Consumers take whatever comes; together they take n each.
	for range n {
		if u64 {
			v, err := c.DequeueU64(ctx)
			if err != nil {
				return childFail("%v", err)
			}
			sum += v
		} else if _, err := c.Dequeue(ctx, buf); err != nil {
			return childFail("%v", err)
		}
	}
	a.count(envInt("RING_ID", 0)).Store(sum) // keep the values
	a.word(wordDone).Add(1)
	return 0
}
