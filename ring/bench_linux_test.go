package ring

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/shmkit/shmkit/futex"
	"github.com/shmkit/shmkit/internal/proctest"
)

// Benchmarks. Every ring benchmark is cross-process: the parent (the
// benchmark) is one side, a re-executed child the other, sharing a memfd.
// The child's start-up is excluded: the timer is reset once the child has
// attached and the parent has released it. Each reports msgs/s; the Chan
// and PingPong benchmarks are the references measured in the same run.
//
//	go test -run '^$' -bench 'SPSC|ByteRing|MPMC|Chan|PingPong' ./ring/

func init() {
	proctest.Register("bench-spsc", benchChildSPSC)
	proctest.Register("bench-byte", benchChildByte)
	proctest.Register("bench-echo-ring", benchChildEchoRing)
	proctest.Register("bench-echo-atomic", benchChildEchoAtomic)
	proctest.Register("bench-echo-socket", benchChildEchoSocket)
}

// startBench starts child name for b.N operations and returns once it has
// attached; the caller then calls goBench.
func startBench(b *testing.B, a *sharedArea, children int, name string, env ...string) {
	b.Helper()
	for i := range children {
		a.start(b, name, append(env, fmt.Sprintf("RING_N=%d", b.N), fmt.Sprintf("RING_ID=%d", i))...)
	}
	a.waitWord(b, wordReady, uint32(children))
}

// goBench resets the timer and releases the children.
func goBench(b *testing.B, a *sharedArea) {
	b.ReportAllocs()
	b.ResetTimer()
	a.word(wordGo).Store(1)
}

// childStart attaches the child's area, reports ready and waits for go.
func childReady(a *sharedArea) {
	a.word(wordReady).Add(1)
	for a.word(wordGo).Load() == 0 {
	}
}

func reportRate(b *testing.B, msgs int) {
	b.ReportMetric(float64(msgs)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkSPSC streams b.N messages from the benchmark process to a child
// through a 4096-slot SPSC ring, one message per call or 64 per batch.
func BenchmarkSPSC(b *testing.B) {
	for _, size := range []int{8, 64} {
		for _, batch := range []int{1, 64} {
			name := fmt.Sprintf("%dB/unbatched", size)
			if batch > 1 {
				name = fmt.Sprintf("%dB/batch%d", size, batch)
			}
			b.Run(name, func(b *testing.B) { benchSPSC(b, size, batch) })
		}
	}
	b.Run("64B/zerocopy-batch64", benchSPSCZeroCopy)
}

// benchSPSCZeroCopy streams 64-byte messages written in place
// (ReserveBatch/CommitBatch of up to 64) and read in place by the child
// (PeekBatch/Release, reading each message's first and last word).
func benchSPSCZeroCopy(b *testing.B) {
	const capacity, size, batch = 4096, 64, 64
	rs, _ := SPSCSize(capacity, size)
	a := newSharedArea(b, rs)
	r, err := NewSPSC(a.ring(), capacity, size)
	if err != nil {
		b.Fatal(err)
	}
	p := r.Producer()
	startBench(b, a, 1, "bench-spsc", fmt.Sprintf("RING_BATCH=%d", batch), "RING_ZEROCOPY=1")
	msg := make([]byte, size)
	lens := make([]int, batch)
	for i := range lens {
		lens[i] = size
	}
	ctx := context.Background()
	b.SetBytes(size)
	goBench(b, a)
	for sent := 0; sent < b.N; {
		v, err := p.ReserveBatch(ctx, min(batch, b.N-sent))
		if err != nil {
			b.Fatal(err)
		}
		for _, s := range v {
			copy(s, msg)
		}
		if err := p.CommitBatch(lens[:len(v)]); err != nil {
			b.Fatal(err)
		}
		sent += len(v)
	}
	a.spinWord(wordDone, 1)
	b.StopTimer()
	reportRate(b, b.N)
}

func benchSPSC(b *testing.B, size, batch int) {
	const capacity = 4096
	rs, _ := SPSCSize(capacity, size)
	a := newSharedArea(b, rs)
	r, err := NewSPSC(a.ring(), capacity, size)
	if err != nil {
		b.Fatal(err)
	}
	p := r.Producer()
	startBench(b, a, 1, "bench-spsc", fmt.Sprintf("RING_BATCH=%d", batch))
	msg := make([]byte, size)
	msgs := make([][]byte, batch)
	for i := range msgs {
		msgs[i] = msg
	}
	ctx := context.Background()
	b.SetBytes(int64(size))
	goBench(b, a)
	for sent := 0; sent < b.N; {
		if batch == 1 {
			if err := p.Enqueue(ctx, msg); err != nil {
				b.Fatal(err)
			}
			sent++
			continue
		}
		n, err := p.EnqueueBatch(ctx, msgs[:min(batch, b.N-sent)])
		if err != nil {
			b.Fatal(err)
		}
		sent += n
	}
	a.spinWord(wordDone, 1)
	b.StopTimer()
	reportRate(b, b.N)
}

func benchChildSPSC() int {
	a, err := childArea()
	if err != nil {
		return childFail("%v", err)
	}
	r, err := AttachSPSC(a.ring())
	if err != nil {
		return childFail("%v", err)
	}
	c := r.Consumer()
	n, batch := envInt("RING_N", 0), envInt("RING_BATCH", 1)
	bufs := make([][]byte, batch)
	for i := range bufs {
		bufs[i] = make([]byte, r.SlotSize())
	}
	ctx := context.Background()
	zerocopy := os.Getenv("RING_ZEROCOPY") != ""
	var sum uint64
	childReady(a)
	for got := 0; got < n; {
		if zerocopy {
			v, err := c.PeekBatch(ctx, min(batch, n-got))
			if err != nil {
				return childFail("%v", err)
			}
			for _, m := range v {
				sum += uint64(m[0]) + uint64(m[len(m)-1])
			}
			if err := c.Release(); err != nil {
				return childFail("%v", err)
			}
			got += len(v)
			continue
		}
		if batch == 1 {
			if _, err := c.Dequeue(ctx, bufs[0]); err != nil {
				return childFail("%v", err)
			}
			got++
			continue
		}
		k, err := c.DequeueBatch(ctx, bufs[:min(batch, n-got)])
		if err != nil {
			return childFail("%v", err)
		}
		got += k
	}
	a.count(0).Store(sum) // keep the reads
	a.word(wordDone).Add(1)
	return 0
}

// BenchmarkByteRing streams b.N records of 64 B and 4 KiB through a 1 MiB
// byte ring to a child: Write on this side, Peek/Release on the other.
func BenchmarkByteRing(b *testing.B) {
	for _, size := range []int{64, 4096} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			const capacity = 1 << 20
			rs, _ := ByteRingSize(capacity)
			a := newSharedArea(b, rs)
			r, err := NewByteRing(a.ring(), capacity)
			if err != nil {
				b.Fatal(err)
			}
			p := r.Producer()
			startBench(b, a, 1, "bench-byte")
			msg := make([]byte, size)
			ctx := context.Background()
			b.SetBytes(int64(size))
			goBench(b, a)
			for range b.N {
				if err := p.Enqueue(ctx, msg); err != nil {
					b.Fatal(err)
				}
			}
			a.spinWord(wordDone, 1)
			b.StopTimer()
			reportRate(b, b.N)
		})
	}
}

func benchChildByte() int {
	a, err := childArea()
	if err != nil {
		return childFail("%v", err)
	}
	r, err := AttachByteRing(a.ring())
	if err != nil {
		return childFail("%v", err)
	}
	c := r.Consumer()
	n := envInt("RING_N", 0)
	ctx := context.Background()
	childReady(a)
	for range n {
		if _, err := c.Peek(ctx); err != nil {
			return childFail("%v", err)
		}
		if err := c.Release(); err != nil {
			return childFail("%v", err)
		}
	}
	a.word(wordDone).Add(1)
	return 0
}

// BenchmarkChan is the reference for streaming: b.N values sent through a
// Go buffered channel (capacity 4096) from one goroutine to another.
func BenchmarkChan(b *testing.B) {
	b.Run("8B", func(b *testing.B) { benchChan[[8]byte](b, 8) })
	b.Run("64B", func(b *testing.B) { benchChan[[64]byte](b, 64) })
}

func benchChan[T any](b *testing.B, size int) {
	ch := make(chan T, 4096)
	done := make(chan struct{})
	go func() {
		for range b.N {
			<-ch
		}
		close(done)
	}()
	var v T
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		ch <- v
	}
	<-done
	b.StopTimer()
	reportRate(b, b.N)
}

// BenchmarkPingPong measures an 8-byte round trip to a child process and
// back: over two SPSC rings (16 slots of 8 bytes each way) with a spinning,
// a spin-then-park and a parking waiter, and, as references, over one bare
// atomic word (the hardware's cross-core limit) and over a Unix stream
// socket pair.
func BenchmarkPingPong(b *testing.B) {
	for _, s := range []futex.Strategy{futex.BusySpin, futex.SpinThenPark, futex.Park} {
		b.Run("ring-"+s.String(), func(b *testing.B) { benchPingPongRing(b, s) })
	}
	b.Run("atomic", benchPingPongAtomic)
	b.Run("unix-socket", benchPingPongSocket)
}

// pingRings lays out the two rings of a ping-pong in one area.
func pingRings(mem []byte) (ping, pong []byte) {
	rs, _ := SPSCSize(16, 8)
	rs = (rs + 63) &^ 63
	return mem[:rs], mem[rs:]
}

func benchPingPongRing(b *testing.B, s futex.Strategy) {
	rs, _ := SPSCSize(16, 8)
	a := newSharedArea(b, 2*((rs+63)&^63))
	pingMem, pongMem := pingRings(a.ring())
	w := WithWaiter(futex.Waiter{Strategy: s})
	ping, err := NewSPSC(pingMem, 16, 8, w)
	if err != nil {
		b.Fatal(err)
	}
	pong, err := NewSPSC(pongMem, 16, 8, w)
	if err != nil {
		b.Fatal(err)
	}
	pp, pc := ping.Producer(), pong.Consumer()
	startBench(b, a, 1, "bench-echo-ring", "RING_WAIT="+s.String())
	msg := make([]byte, 8)
	ctx := context.Background()
	goBench(b, a)
	for range b.N {
		if err := pp.Enqueue(ctx, msg); err != nil {
			b.Fatal(err)
		}
		if _, err := pc.Dequeue(ctx, msg); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportRate(b, b.N)
}

func benchChildEchoRing() int {
	a, err := childArea()
	if err != nil {
		return childFail("%v", err)
	}
	pingMem, pongMem := pingRings(a.ring())
	s, err := futex.ParseStrategy(os.Getenv("RING_WAIT"))
	if err != nil {
		return childFail("%v", err)
	}
	w := WithWaiter(futex.Waiter{Strategy: s})
	ping, err := AttachSPSC(pingMem, w)
	if err != nil {
		return childFail("%v", err)
	}
	pong, err := AttachSPSC(pongMem, w)
	if err != nil {
		return childFail("%v", err)
	}
	pc, pp := ping.Consumer(), pong.Producer()
	n := envInt("RING_N", 0)
	buf := make([]byte, 8)
	ctx := context.Background()
	childReady(a)
	for range n {
		k, err := pc.Dequeue(ctx, buf)
		if err != nil {
			return childFail("%v", err)
		}
		if err := pp.Enqueue(ctx, buf[:k]); err != nil {
			return childFail("%v", err)
		}
	}
	return 0
}

// pingWord is the word of the bare atomic ping-pong, on a line of its own.
func pingWord(a *sharedArea) *atomic.Uint64 {
	return (*atomic.Uint64)(unsafe.Pointer(&a.mem[ringOff]))
}

func benchPingPongAtomic(b *testing.B) {
	a := newSharedArea(b, 64)
	w := pingWord(a)
	startBench(b, a, 1, "bench-echo-atomic")
	goBench(b, a)
	for i := range uint64(b.N) {
		w.Store(2*i + 1)
		for w.Load() != 2*i+2 {
		}
	}
	b.StopTimer()
	reportRate(b, b.N)
}

func benchChildEchoAtomic() int {
	a, err := childArea()
	if err != nil {
		return childFail("%v", err)
	}
	w := pingWord(a)
	n := uint64(envInt("RING_N", 0))
	childReady(a)
	for i := range n {
		for w.Load() != 2*i+1 {
		}
		w.Store(2*i + 2)
	}
	return 0
}

func benchPingPongSocket(b *testing.B) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	mine, theirs := os.NewFile(uintptr(fds[0]), "sock0"), os.NewFile(uintptr(fds[1]), "sock1")
	defer mine.Close()
	a := newSharedArea(b, 64)
	cmd := proctest.Command(b, "bench-echo-socket", fmt.Sprintf("RING_N=%d", b.N))
	cmd.ExtraFiles = []*os.File{a.f, theirs}
	proctest.Start(b, cmd)
	theirs.Close()
	a.waitWord(b, wordReady, 1)
	msg := make([]byte, 8)
	goBench(b, a)
	for range b.N {
		if err := writeFull(fds[0], msg); err != nil {
			b.Fatal(err)
		}
		if err := readFull(fds[0], msg); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportRate(b, b.N)
}

func benchChildEchoSocket() int {
	a, err := childArea()
	if err != nil {
		return childFail("%v", err)
	}
	const fd = 4
	n := envInt("RING_N", 0)
	msg := make([]byte, 8)
	childReady(a)
	for range n {
		if err := readFull(fd, msg); err != nil {
			return childFail("%v", err)
		}
		if err := writeFull(fd, msg); err != nil {
			return childFail("%v", err)
		}
	}
	return 0
}

func readFull(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Read(fd, b)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return errors.New("socket closed")
		}
		b = b[n:]
	}
	return nil
}

func writeFull(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}
