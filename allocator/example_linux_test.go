package allocator_test

import (
	"fmt"

	"github.com/shmkit/shmkit/allocator"
	"golang.org/x/sys/unix"
)

// Example lays a slab region out in anonymous memory, allocates a chunk on
// behalf of participant 7, shares it with a second holder, and frees it
// with the last Release. In production the region is a shared segment that
// other processes Attach to; a Ref is what travels between them.
func Example() {
	cfg := allocator.Config{Classes: []allocator.Class{{Size: 256, Count: 8}, {Size: 4096, Count: 4}}}
	size, err := allocator.Size(cfg)
	if err != nil {
		panic(err)
	}
	mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_SHARED)
	if err != nil {
		panic(err)
	}
	defer unix.Munmap(mem)

	a, err := allocator.New(mem, cfg)
	if err != nil {
		panic(err)
	}
	p, _ := a.Handle(allocator.WithOwner(7))
	r, err := p.Alloc(1000) // the 4096-byte class: the smallest that fits
	if err != nil {
		panic(err)
	}
	buf, _ := p.Bytes(r) // valid until the chunk is freed
	copy(buf, "hello")
	fmt.Println(len(buf), cap(buf), string(buf[:5]))

	// Another process would Attach(mem) and use r as it is.
	peer, _ := allocator.Attach(mem)
	_ = peer.Retain(r) // a second holder
	_ = p.Release(r)   // the chunk survives: one reference left
	got, _ := peer.Bytes(r)
	fmt.Println(string(got[:5]))
	_ = peer.Release(r) // the last reference: freed
	_, err = peer.Bytes(r)
	fmt.Println(err != nil)

	st := a.Stats()
	fmt.Println(st[1].Size, st[1].Free, st[1].InUse, st[1].HighWater)
	// Output:
	// 1000 4096 hello
	// hello
	// true
	// 4096 4 0 1
}

// ExampleReadStats reads the counters of a region without an Allocator,
// as `shmctl inspect` does from a read-only mapping.
func ExampleReadStats() {
	cfg := allocator.Config{Classes: []allocator.Class{{Size: 64, Count: 2}}}
	size, _ := allocator.Size(cfg)
	mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_SHARED)
	if err != nil {
		panic(err)
	}
	defer unix.Munmap(mem)
	a, _ := allocator.New(mem, cfg)
	_, _ = a.Alloc(10)
	_, _ = a.Alloc(10)
	_, err = a.Alloc(10)
	fmt.Println(err)

	st, _ := allocator.ReadStats(mem)
	fmt.Printf("%+v\n", st[0])
	// Output:
	// allocator: no free chunk in size class: alloc 10 bytes from class 64
	// {Size:64 Total:2 Free:0 InUse:2 InFlight:0 Cached:0 HighWater:2 Failed:1}
}

// ExampleWithCache gives a participant's handle a magazine: its alloc+free
// pairs stay off the shared free list, the cached chunks are marked as the
// participant's in shared memory (Stats counts them, ReclaimOwner returns
// them if the process dies), and Flush hands them back.
func ExampleWithCache() {
	cfg := allocator.Config{Classes: []allocator.Class{{Size: 64, Count: 16}}}
	size, _ := allocator.Size(cfg)
	mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_SHARED)
	if err != nil {
		panic(err)
	}
	defer unix.Munmap(mem)
	a, err := allocator.New(mem, cfg)
	if err != nil {
		panic(err)
	}
	// One handle per goroutine: a handle with a cache has no lock.
	p, err := a.Handle(allocator.WithOwner(3), allocator.WithCache(8))
	if err != nil {
		panic(err)
	}
	for range 1000 {
		r, _ := p.Alloc(48) // the first one refills half the magazine: 4 chunks
		_ = p.Free(r)       // back into the magazine
	}
	st := a.Stats()[0]
	fmt.Println(st.Free, st.Cached, st.InUse)
	_ = p.Flush()
	st = a.Stats()[0]
	fmt.Println(st.Free, st.Cached, st.InUse)
	// Output:
	// 12 4 0
	// 16 0 0
}
