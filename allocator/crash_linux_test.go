package allocator

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"syscall"
	"testing"
	"time"
)

func init() { testChildren["churn"] = churnChild }

var crashConfig = Config{Classes: []Class{{64, 64}, {512, 32}, {4096, 16}}}

// Control words of the crash test: the progress counters of the victim and
// the survivor.
const (
	crashVictimProgress   = 0
	crashSurvivorProgress = 1
)

// TestCrashReclaim kills a child with SIGKILL at a random point of its
// allocate/free loop, while a second child keeps allocating and freeing and
// the parent reclaims the dead child's chunks concurrently. It then checks
// that ReclaimOwner left no chunk held, claimed or being freed by the
// victim, and — once the survivor is done — that every class is whole:
// consistent lists, every chunk free, nothing in flight.
func TestCrashReclaim(t *testing.T) {
	rounds := 12
	if testing.Short() {
		rounds = 3
	}
	s, a := newSharedRegion(t, crashConfig, 2)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	var drift int64
	for round := range rounds {
		victim := uint32(100 + round)
		s.word(crashVictimProgress).Store(0)
		s.word(crashSurvivorProgress).Store(0)
		vcmd := s.command(t, "churn", fmt.Sprintf("CHURN_ID=%d", victim), "CHURN_ITERS=0",
			fmt.Sprintf("CHURN_PROGRESS=%d", crashVictimProgress))
		scmd := s.command(t, "churn", "CHURN_ID=1", "CHURN_ITERS=30000",
			fmt.Sprintf("CHURN_PROGRESS=%d", crashSurvivorProgress))
		vc, sc := startChild(t, vcmd), startChild(t, scmd)
		// Kill after a random number of operations: the count, not the
		// clock, decides, so the kill lands at a random instruction.
		target := uint64(1000 + rng.IntN(20000))
		for s.word(crashVictimProgress).Load() < target {
			if vc.exited() {
				t.Fatalf("victim exited: %v", vc.wait())
			}
			time.Sleep(50 * time.Microsecond)
		}
		if err := vcmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if err := vc.wait(); err == nil {
			t.Fatal("victim was not killed")
		}
		n, err := a.ReclaimOwner(victim)
		if err != nil {
			t.Fatalf("round %d: reclaim: %v", round, err)
		}
		for ci := range a.classes {
			c := &a.classes[ci]
			for i := uint32(0); uint64(i) < c.count; i++ {
				m := c.chunk(i)
				s := m.state.Load()
				if isAlloc(s) && m.owner.Load() == victim || !isAlloc(s) && !isFree(s) && stateID(s) == victim {
					t.Fatalf("round %d: class %d chunk %d still %s for the dead victim", round, c.size, i, stateString(s))
				}
			}
		}
		if err := sc.wait(); err != nil {
			t.Fatalf("round %d: survivor: %v", round, err)
		}
		// Quiescent now: only the parent maps the region, and ReclaimOwner
		// alone must have made every class whole.
		t.Logf("round %d: killed after %d ops, reclaimed %d chunks", round, s.word(crashVictimProgress).Load(), n)
		mustWholeLists(t, a)
		cc, _ := a.Check()
		for _, c := range cc {
			drift += max(c.Counter, -c.Counter)
		}
		// Recover, run now, must find nothing to repair; it resets the
		// in-use counters behind HighWater.
		if fixed := a.Recover(); fixed != 0 {
			t.Fatalf("round %d: Recover repaired %d chunks after ReclaimOwner", round, fixed)
		}
		mustWhole(t, a)
	}
	t.Logf("%d rounds: in-use counters were off by %d in total (HighWater only)", rounds, drift)
}

// churnChild allocates and frees chunks of every class as participant
// CHURN_ID, holding up to 24 at a time, for CHURN_ITERS iterations (0: until
// killed), adding each operation to control word CHURN_PROGRESS.
func churnChild() int {
	a, s, err := childRegion()
	if err != nil {
		fmt.Fprintln(os.Stderr, "churn:", err)
		return 1
	}
	id := uint32(envInt("CHURN_ID"))
	fail := func(op string, err error) int {
		fmt.Fprintf(os.Stderr, "churn %d: %s: %v\n", id, op, err)
		return 1
	}
	p, err := a.Handle(WithOwner(id))
	if err != nil {
		return fail("owner", err)
	}
	progress := s.word(envInt("CHURN_PROGRESS"))
	iters := envInt("CHURN_ITERS")
	rng := rand.New(rand.NewPCG(uint64(id), uint64(os.Getpid())))
	classes := p.Classes()
	var held []Ref
	for it := 0; iters == 0 || it < iters; it++ {
		if len(held) < 24 && (len(held) == 0 || rng.IntN(2) == 0) {
			c := classes[rng.IntN(len(classes))]
			r, err := p.Alloc(c.Size / 2)
			if err == nil {
				held = append(held, r)
				b, _ := p.Bytes(r)
				b[0] = byte(id)
			} else if !errors.Is(err, ErrNoMemory) {
				return fail("alloc", err)
			}
		} else {
			i := rng.IntN(len(held))
			r := held[i]
			held[i] = held[len(held)-1]
			held = held[:len(held)-1]
			var err error
			if rng.IntN(2) == 0 {
				if err = p.Retain(r); err == nil {
					progress.Add(1)
					err = p.Release(r)
				}
				if err == nil {
					err = p.Release(r)
				}
			} else {
				err = p.Free(r)
			}
			if err != nil {
				return fail("free", err)
			}
		}
		progress.Add(1)
	}
	for _, r := range held {
		if err := p.Free(r); err != nil {
			return fail("free", err)
		}
	}
	return 0
}
