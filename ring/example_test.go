package ring_test

import (
	"context"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/shmkit/shmkit/ring"
)

// mapAnon maps n bytes of page-aligned memory. A real program maps a shared
// segment (or a memfd) in each process instead; the ring does not care.
func mapAnon(n int) []byte {
	mem, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_ANONYMOUS)
	if err != nil {
		panic(err)
	}
	return mem
}

func ExampleNewSPSC() {
	size, err := ring.SPSCSize(1024, 64) // 1024 slots of up to 64 bytes
	if err != nil {
		panic(err)
	}
	mem := mapAnon(size)
	defer unix.Munmap(mem)

	producer, err := ring.NewSPSC(mem, 1024, 64)
	if err != nil {
		panic(err)
	}
	consumer, err := ring.AttachSPSC(mem) // in the other process
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	producer.Enqueue(ctx, []byte("hello"))
	producer.Close()

	buf := make([]byte, consumer.SlotSize())
	for {
		n, err := consumer.Dequeue(ctx, buf)
		if err != nil {
			fmt.Println(err)
			break
		}
		fmt.Printf("%s\n", buf[:n])
	}
	// Output:
	// hello
	// ring: closed
}

func ExampleSPSC_Reserve() {
	size, _ := ring.SPSCSize(16, 8)
	mem := mapAnon(size)
	defer unix.Munmap(mem)
	r, _ := ring.NewSPSC(mem, 16, 8)
	ctx := context.Background()

	slot, _ := r.Reserve(ctx) // write in place, no copy
	n := copy(slot, "in place")
	r.Commit(n)

	msg, _ := r.Peek(ctx) // read in place, valid until Release
	fmt.Printf("%s\n", msg)
	r.Release()
	// Output: in place
}

func ExampleNewByteRing() {
	size, _ := ring.ByteRingSize(4096)
	mem := mapAnon(size)
	defer unix.Munmap(mem)
	r, _ := ring.NewByteRing(mem, 4096)
	ctx := context.Background()

	for _, m := range []string{"short", "a somewhat longer record"} {
		r.Write(ctx, []byte(m))
	}
	for range 2 {
		rec, _ := r.Peek(ctx)
		fmt.Println(len(rec), string(rec))
		r.Release()
	}
	// Output:
	// 5 short
	// 24 a somewhat longer record
}
