package ring_test

import (
	"context"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/shmkit/shmkit/ring"
)

func ExampleNewMPMC() {
	size, _ := ring.MPMCSize(64, 16)
	mem := mapAnon(size)
	defer unix.Munmap(mem)
	r, _ := ring.NewMPMC(mem, 64, 16)
	ctx := context.Background()

	// One handle per goroutine; any number of each.
	p, c := r.Producer(), r.Consumer()
	p.EnqueueBatch(ctx, [][]byte{[]byte("a"), []byte("b"), []byte("c")})
	bufs := [][]byte{make([]byte, 16), make([]byte, 16), make([]byte, 16)}
	n, _ := c.DequeueBatch(ctx, bufs)
	for _, b := range bufs[:n] {
		fmt.Print(string(b))
	}
	fmt.Println()
	// Output: abc
}

// A ring of 8-byte references (chunk handles, say) with claim records, so
// that a participant's death can be repaired.
func ExampleMPMC_Repair() {
	opts := []ring.Option{ring.WithClaimSlots(8)}
	size, _ := ring.MPMCSize(1024, 8, opts...)
	mem := mapAnon(size)
	defer unix.Munmap(mem)
	ctx := context.Background()

	// Each process attaches with its own owner id (a participant id).
	r, _ := ring.NewMPMC(mem, 1024, 8, append(opts, ring.WithOwner(1))...)
	p := r.Producer()
	p.EnqueueU64(ctx, 42)
	c := r.Consumer()
	v, _ := c.DequeueU64(ctx)
	fmt.Println(v)

	// Once the liveness layer knows that owner 7 died, any survivor
	// finishes what 7 left half done; messages a dead consumer had
	// claimed come back through lost.
	n, err := r.Repair(ctx, func(msg []byte) { fmt.Println("lost", msg) }, 7)
	fmt.Println(n, err)
	// Output:
	// 42
	// 0 <nil>
}
