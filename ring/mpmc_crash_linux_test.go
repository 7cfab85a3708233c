package ring

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/shmkit/shmkit/internal/proctest"
)

// The cross-process crash test of the MPMC ring: victims, producers or
// consumers, are SIGKILLed at every step of every kind of operation (by a
// hook that only tests set) and at random moments, while a survivor
// producer and a survivor consumer keep going; after each kill the parent
// repairs the dead owner and a fresh process takes the victim's place.
// At the end every message is accounted for as docs/ring.md promises.

func init() {
	proctest.Register("mpmc-crash", childMPMCCrash)
}

const (
	mcrashCap      = 8
	mcrashClaims   = 16
	mcrashMax      = 1 << 20 // messages per logical producer, at most
	mcrashBatch    = 4
	mcrashStopWord = 5 // parent sets: the survivor producer stops
	// Result words (sharedArea.count): acknowledged messages of logical
	// producers 0 and 1 (the next sequence number to send), and the
	// progress of the current victim.
	mcrashAcked0   = 0
	mcrashAcked1   = 1
	mcrashProgress = 2
)

// mcrashMsg encodes message seq of logical producer p in 8 bytes, so that
// copying and U64 calls share the ring.
func mcrashMsg(p, seq uint64) uint64 { return p<<56 | seq }

// mcrashCounts are the delivery counters of the two logical producers.
func mcrashCounts(a *sharedArea) []atomic.Uint32 {
	size, _ := MPMCSize(mcrashCap, 8, WithClaimSlots(mcrashClaims))
	off := ringOff + (size+63)&^63
	return unsafe.Slice((*atomic.Uint32)(unsafe.Pointer(&a.mem[off])), 2*mcrashMax)
}

// countCrashMsg counts a delivered message; it reports a malformed one.
func countCrashMsg(counts []atomic.Uint32, v uint64) error {
	p, seq := v>>56, v&(1<<56-1)
	if p > 1 || seq >= mcrashMax {
		return fmt.Errorf("message %#x", v)
	}
	counts[p*mcrashMax+seq].Add(1)
	return nil
}

// childMPMCCrash runs one participant. RING_ROLE: producer or consumer;
// RING_MODE: copy, batch, u64 or zerocopy; RING_OWNER; RING_P and RING_FROM (the
// logical producer and its first sequence number), RING_TO (0: until
// stopped); RING_KILL_STEP / RING_KILL_AT: SIGKILL itself at that
// occurrence of that step.
func childMPMCCrash() int {
	a, err := childArea()
	if err != nil {
		return childFail("%v", err)
	}
	r, err := AttachMPMC(a.ring(), WithOwner(uint32(envInt("RING_OWNER", 0))))
	if err != nil {
		return childFail("attach: %v", err)
	}
	if step := mpmcStep(envInt("RING_KILL_STEP", 0)); step != 0 {
		at, seen := envInt("RING_KILL_AT", 1), 0
		mpmcHook = func(s mpmcStep) {
			if s == step {
				if seen++; seen == at {
					syscall.Kill(os.Getpid(), syscall.SIGKILL)
					for {
					}
				}
			}
		}
	}
	mode := os.Getenv("RING_MODE")
	ctx := context.Background()
	counts := mcrashCounts(a)
	if os.Getenv("RING_ROLE") == "producer" {
		p := uint64(envInt("RING_P", 0))
		seq, to := uint64(envInt("RING_FROM", 0)), uint64(envInt("RING_TO", 0))
		acked := a.count(mcrashAcked0 + int(p))
		h := r.Producer()
		bufs := make([][]byte, mcrashBatch)
		for i := range bufs {
			bufs[i] = make([]byte, 8)
		}
		for (to == 0 || seq < to) && seq < mcrashMax && a.word(mcrashStopWord).Load() == 0 {
			k := 1
			switch mode {
			case "u64":
				err = h.EnqueueU64(ctx, mcrashMsg(p, seq))
			case "zerocopy":
				var b []byte
				if b, err = h.Reserve(ctx); err == nil {
					binary.LittleEndian.PutUint64(b, mcrashMsg(p, seq))
					err = h.Commit(8)
				}
			case "batch":
				k = int(min(mcrashBatch, mcrashMax-seq))
				if to != 0 {
					k = int(min(uint64(k), to-seq))
				}
				for i := range k {
					binary.LittleEndian.PutUint64(bufs[i], mcrashMsg(p, seq+uint64(i)))
				}
				_, err = h.EnqueueBatch(ctx, bufs[:k])
			default:
				var b [8]byte
				binary.LittleEndian.PutUint64(b[:], mcrashMsg(p, seq))
				err = h.Enqueue(ctx, b[:])
			}
			if err != nil {
				return childFail("produce %d/%d: %v", p, seq, err)
			}
			seq += uint64(k)
			acked.Store(seq)
			a.count(mcrashProgress).Add(1)
			if to == 0 && seq%4 == 0 {
				// The survivor paces itself so that it outlasts
				// the test without running out of counters.
				time.Sleep(10 * time.Microsecond)
			}
		}
		return 0
	}
	h := r.Consumer()
	bufs := make([][]byte, mcrashBatch)
	for i := range bufs {
		bufs[i] = make([]byte, 8)
	}
	for {
		var vs [mcrashBatch]uint64
		k := 1
		switch mode {
		case "u64":
			vs[0], err = h.DequeueU64(ctx)
		case "zerocopy":
			var b []byte
			if b, err = h.Peek(ctx); err == nil {
				vs[0] = binary.LittleEndian.Uint64(b)
				err = h.Release()
			}
		case "batch":
			k, err = h.DequeueBatch(ctx, bufs)
			for i := range k {
				vs[i] = binary.LittleEndian.Uint64(bufs[i])
			}
		default:
			var b [8]byte
			_, err = h.Dequeue(ctx, b[:])
			vs[0] = binary.LittleEndian.Uint64(b[:])
		}
		if errors.Is(err, ErrClosed) {
			return 0
		}
		if err != nil {
			return childFail("consume: %v", err)
		}
		for _, v := range vs[:k] {
			if err := countCrashMsg(counts, v); err != nil {
				return childFail("consume: %v", err)
			}
		}
		a.count(mcrashProgress).Add(1)
	}
}

// TestMPMCCrash kills producers and consumers at every step of every
// operation kind, one by one, and at random, repairs, and checks that fresh
// processes carry the traffic to the end with every message accounted for.
func TestMPMCCrash(t *testing.T) {
	size, _ := MPMCSize(mcrashCap, 8, WithClaimSlots(mcrashClaims))
	a := newSharedArea(t, (size+63)&^63+4*2*mcrashMax)
	r, err := NewMPMC(a.ring(), mcrashCap, 8, WithClaimSlots(mcrashClaims), WithOwner(999))
	if err != nil {
		t.Fatal(err)
	}
	counts := mcrashCounts(a)
	start := func(env ...string) *exec.Cmd { return a.start(t, "mpmc-crash", env...) }
	// The survivors: logical producer 0 until stopped, and a consumer.
	sp := start("RING_ROLE=producer", "RING_MODE=copy", "RING_OWNER=1", "RING_P=0")
	sc := start("RING_ROLE=consumer", "RING_MODE=copy", "RING_OWNER=2")

	type round struct {
		producer bool
		mode     string
		step     mpmcStep // 0: a random kill
	}
	var rounds []round
	for _, mode := range []string{"copy", "batch", "u64", "zerocopy"} {
		for s := stepPutIntent; s <= stepPutPublished; s++ {
			rounds = append(rounds, round{true, mode, s})
		}
		for s := stepGetIntent; s <= stepGetFreed; s++ {
			rounds = append(rounds, round{false, mode, s})
		}
		for i := range crashRandom() { // RING_CRASH_RANDOM, as the SPSC crash tests
			rounds = append(rounds, round{i%2 == 0, mode, 0})
		}
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 9))
	var lostToRepair, consumerSlack uint64
	type span struct{ from, to uint64 }
	var inFlight []span // logical producer 1's sequence numbers a kill left undecided
	next1 := uint64(0)  // logical producer 1's next sequence number
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for i, rd := range rounds {
		owner := 1000 + i
		env := []string{"RING_MODE=" + rd.mode, fmt.Sprintf("RING_OWNER=%d", owner)}
		if rd.producer {
			env = append(env, "RING_ROLE=producer", "RING_P=1", fmt.Sprintf("RING_FROM=%d", next1))
		} else {
			env = append(env, "RING_ROLE=consumer")
		}
		at := 1 + rng.IntN(40)
		if rd.step != 0 {
			env = append(env, fmt.Sprintf("RING_KILL_STEP=%d", rd.step), fmt.Sprintf("RING_KILL_AT=%d", at))
		}
		a.count(mcrashProgress).Store(0)
		a.count(mcrashAcked1).Store(next1)
		cmd := start(env...)
		if rd.step == 0 {
			// Random kill: after a random amount of progress, at
			// whatever instruction the victim is then.
			for a.count(mcrashProgress).Load() < uint64(at) {
				if ctx.Err() != nil {
					t.Fatalf("round %d: victim made no progress", i)
				}
				time.Sleep(20 * time.Microsecond)
			}
			cmd.Process.Signal(syscall.SIGKILL)
		}
		var watchdog atomic.Bool
		timer := time.AfterFunc(time.Minute, func() { watchdog.Store(true); cmd.Process.Kill() })
		err := cmd.Wait()
		timer.Stop()
		if watchdog.Load() {
			t.Fatalf("round %d (%+v): the victim never reached its step", i, rd)
		}
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("round %d (%+v): victim ended with %v, not SIGKILL", i, rd, err)
		}
		n, err := r.Repair(ctx, func(msg []byte) {
			lostToRepair++
			if len(msg) != 8 {
				t.Errorf("lost message of %d bytes", len(msg))
				return
			}
			if err := countCrashMsg(counts, binary.LittleEndian.Uint64(msg)); err != nil {
				t.Error(err)
			}
		}, uint32(owner))
		if err != nil {
			t.Fatalf("round %d (%+v): repair: %v", i, rd, err)
		}
		slack := uint64(1)
		if rd.mode == "batch" {
			slack = mcrashBatch
		}
		if rd.producer {
			acked := a.count(mcrashAcked1).Load()
			inFlight = append(inFlight, span{acked, acked + slack})
			next1 = acked + slack
		} else if rd.step == 0 || rd.step == stepGetFreed {
			// Killed after freeing its slots and before its call
			// returned (or, at random, before it counted what it
			// got): the messages went with it. Killed before
			// freeing, Repair handed them to lost.
			consumerSlack += slack
		}
		t.Logf("round %d: %s %s killed at step %d (occurrence %d): %d slots repaired", i,
			map[bool]string{true: "producer", false: "consumer"}[rd.producer], rd.mode, rd.step, at, n)
	}
	// A fresh producer carries logical producer 1 to the end, then the
	// survivor producer stops and the ring is closed and drained.
	end1 := next1 + 2000
	waitCmd(t, start("RING_ROLE=producer", "RING_MODE=batch", "RING_OWNER=3", "RING_P=1",
		fmt.Sprintf("RING_FROM=%d", next1), fmt.Sprintf("RING_TO=%d", end1)))
	a.word(mcrashStopWord).Store(1)
	waitCmd(t, sp)
	if err := r.Producer().Close(); err != nil {
		t.Fatal(err)
	}
	waitCmd(t, sc)
	end0 := a.count(mcrashAcked0).Load()

	var missing, dups uint64
	for seq := range uint64(mcrashMax) {
		for p, end := range []uint64{end0, end1} {
			c := counts[uint64(p)*mcrashMax+seq].Load()
			if c > 1 {
				dups++
				t.Errorf("producer %d message %d delivered %d times", p, seq, c)
			}
			if seq >= end {
				if c != 0 {
					t.Errorf("producer %d message %d delivered but never sent", p, seq)
				}
				continue
			}
			undecided := false
			for _, s := range inFlight {
				undecided = undecided || p == 1 && seq >= s.from && seq < s.to
			}
			if c == 0 && !undecided {
				missing++
			}
		}
	}
	t.Logf("%d rounds; producers sent %d and %d messages; %d handed to lost by Repair; %d missing (allowed %d for consumers killed after freeing a slot)",
		len(rounds), end0, end1, lostToRepair, missing, consumerSlack)
	if missing > consumerSlack || dups != 0 {
		t.Fatalf("%d messages missing (allowed %d), %d duplicated", missing, consumerSlack, dups)
	}
	if r.Len() != 0 {
		t.Errorf("ring not drained: %d", r.Len())
	}
	for i := range r.nclaims {
		if tag := r.claimAt(i).tag.Load(); claimRole(tag) != 0 && tag&claimOwnerMask >= 1000 {
			t.Errorf("claim record %d still held by victim %d: %#x", i, tag&claimOwnerMask, tag)
		}
	}
}
