package ring

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"unsafe"

	"github.com/shmkit/shmkit/internal/proctest"
)

func init() {
	proctest.Register("mpmc-produce", childMPMCProduce)
	proctest.Register("mpmc-consume", childMPMCConsume)
}

// mpmcCounts returns the per-message delivery counters that follow the
// ring in the shared area.
func mpmcCounts(a *sharedArea, ringSize, producers, perProducer int) []atomic.Uint32 {
	off := ringOff + (ringSize+63)&^63
	return unsafe.Slice((*atomic.Uint32)(unsafe.Pointer(&a.mem[off])), producers*perProducer)
}

func mpmcEnv() (producers, perProducer, batch, id int) {
	return envInt("RING_PRODUCERS", 1), envInt("RING_NPER", 1), envInt("RING_BATCH", 1), envInt("RING_ID", 0)
}

func childMPMCProduce() int {
	a, err := childArea()
	if err != nil {
		return childFail("%v", err)
	}
	_, n, batch, id := mpmcEnv()
	r, err := AttachMPMC(a.ring(), WithOwner(uint32(id)))
	if err != nil {
		return childFail("attach: %v", err)
	}
	a.word(wordReady).Add(1)
	a.waitWordChild(wordGo, 1)
	if err := produceMPMC(context.Background(), r.Producer(), uint64(id), 0, uint64(n), batch, func(uint64) {}); err != nil {
		return childFail("produce: %v", err)
	}
	a.word(wordDone).Add(1)
	return 0
}

func childMPMCConsume() int {
	a, err := childArea()
	if err != nil {
		return childFail("%v", err)
	}
	producers, n, batch, id := mpmcEnv()
	r, err := AttachMPMC(a.ring(), WithOwner(uint32(100+id)))
	if err != nil {
		return childFail("attach: %v", err)
	}
	size, _ := MPMCSize(r.Cap(), r.SlotSize(), WithClaimSlots(r.ClaimSlots()))
	counts := mpmcCounts(a, size, producers, n)
	a.word(wordReady).Add(1)
	got, err := consumeMPMC(context.Background(), r.Consumer(), producers, batch, func(p, seq uint64) {
		if seq < uint64(n) {
			counts[int(p)*n+int(seq)].Add(1)
		}
	})
	a.count(id).Store(got)
	if err != nil {
		return childFail("consume: %v", err)
	}
	return 0
}

// runMPMCAcross runs producers and consumers as child processes over one
// MPMC ring and checks every message was delivered exactly once, in
// per-producer order (each consumer checks the order of what it sees).
func runMPMCAcross(t *testing.T, producers, consumers, capacity, batch, perProducer, claims int) {
	size, err := MPMCSize(capacity, 16, WithClaimSlots(claims))
	if err != nil {
		t.Fatal(err)
	}
	a := newSharedArea(t, (size+63)&^63+4*producers*perProducer)
	r, err := NewMPMC(a.ring(), capacity, 16, WithClaimSlots(claims))
	if err != nil {
		t.Fatal(err)
	}
	env := []string{fmt.Sprintf("RING_PRODUCERS=%d", producers), fmt.Sprintf("RING_NPER=%d", perProducer), fmt.Sprintf("RING_BATCH=%d", batch)}
	var cmds []func()
	for i := range consumers {
		cmd := a.start(t, "mpmc-consume", append(env, fmt.Sprintf("RING_ID=%d", i))...)
		cmds = append(cmds, func() { waitCmd(t, cmd) })
	}
	var pcmds []func()
	for i := range producers {
		cmd := a.start(t, "mpmc-produce", append(env, fmt.Sprintf("RING_ID=%d", i))...)
		pcmds = append(pcmds, func() { waitCmd(t, cmd) })
	}
	a.waitWord(t, wordReady, uint32(producers+consumers))
	a.word(wordGo).Store(1)
	for _, w := range pcmds {
		w()
	}
	if err := r.Producer().Close(); err != nil {
		t.Fatal(err)
	}
	for _, w := range cmds {
		w()
	}
	var total uint64
	for i := range consumers {
		total += a.count(i).Load()
	}
	if want := uint64(producers * perProducer); total != want {
		t.Errorf("consumers received %d messages, want %d", total, want)
	}
	counts := mpmcCounts(a, size, producers, perProducer)
	for i := range counts {
		if c := counts[i].Load(); c != 1 {
			t.Fatalf("producer %d message %d delivered %d times", i/perProducer, i%perProducer, c)
		}
	}
}

func TestMPMCAcrossProcesses(t *testing.T) {
	for _, tc := range []struct{ p, c, capacity, batch, n, claims int }{
		{2, 2, 1024, 1, 500_000, 0},
		{2, 2, 1024, 1, 100_000, 4}, // recording claims
		{2, 2, 256, 16, 500_000, 4},
		{4, 4, 1024, 1, 250_000, 0},
		{4, 4, 64, 8, 250_000, 8},
		{2, 2, 1, 1, 20_000, 4}, // capacity 1 and 2: every operation crosses full or empty
		{2, 2, 2, 2, 20_000, 0},
	} {
		t.Run(fmt.Sprintf("%dx%d/cap%d/batch%d/claims%d", tc.p, tc.c, tc.capacity, tc.batch, tc.claims), func(t *testing.T) {
			runMPMCAcross(t, tc.p, tc.c, tc.capacity, tc.batch, int(stressN(uint64(tc.n))), tc.claims)
		})
	}
}
