package allocator

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

func init() {
	testChildren["churn"] = churnChild
	testChildren["hoard"] = hoardChild
	testChildren["steps"] = stepsChild
}

var crashConfig = Config{Classes: []Class{{64, 64}, {512, 32}, {4096, 16}}}

// Control words of the crash test: the progress counters of the victim and
// the survivor.
const (
	crashVictimProgress   = 0
	crashSurvivorProgress = 1
)

// mustNothingOf fails t if any chunk is still allocated to, cached by,
// claimed by or being freed by participant id.
func mustNothingOf(t testing.TB, a *Allocator, id uint32) {
	t.Helper()
	for ci := range a.classes {
		c := &a.classes[ci]
		for i := uint32(0); uint64(i) < c.count; i++ {
			m := c.chunk(i)
			s := m.state.Load()
			if isAlloc(s) && m.owner.Load() == id || !isAlloc(s) && !isFree(s) && stateID(s) == id {
				t.Fatalf("class %d chunk %d still %s for the dead participant %d", c.size, i, stateString(s), id)
			}
		}
	}
}

// mustKilled fails t unless err is the exit of a child killed by SIGKILL.
func mustKilled(t testing.TB, err error) {
	t.Helper()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("child was not killed: %v", err)
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child ended with %v, not SIGKILL", err)
	}
}

// mustReclaimWhole reclaims dead participant id on a quiescent region (only
// the parent maps it) and checks that the pool is whole: every chunk free
// and listed, nothing owned by id, and Recover finds nothing to repair (it
// then resets the in-use counters, which a kill between a state change and
// its counter update leaves off). It returns how many chunks ReclaimOwner
// returned.
func mustReclaimWhole(t testing.TB, a *Allocator, id uint32) int {
	t.Helper()
	n, err := a.ReclaimOwner(id)
	if err != nil {
		t.Fatalf("reclaim %d: %v", id, err)
	}
	mustNothingOf(t, a, id)
	mustWholeLists(t, a)
	if fixed := a.Recover(); fixed != 0 {
		t.Fatalf("Recover repaired %d chunks after ReclaimOwner", fixed)
	}
	mustWhole(t, a)
	return n
}

// TestCrashReclaim kills a child with SIGKILL at a random point of its
// allocate/free loop, while a second child keeps allocating and freeing and
// the parent reclaims the dead child's chunks concurrently. Victims
// alternate between a handle with a magazine and one without. It then
// checks that ReclaimOwner left no chunk held, cached, claimed or being
// freed by the victim, and — once the survivor is done — that every class
// is whole: consistent lists, every chunk free, nothing in flight.
func TestCrashReclaim(t *testing.T) {
	rounds := 12
	if testing.Short() || raceEnabled {
		rounds = 4
	}
	s, a := newSharedRegion(t, crashConfig, 2)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	var drift int64
	for round := range rounds {
		victim := uint32(100 + round)
		cache := []int{8, 0}[round%2]
		s.word(crashVictimProgress).Store(0)
		s.word(crashSurvivorProgress).Store(0)
		vcmd := s.command(t, "churn", fmt.Sprintf("CHURN_ID=%d", victim), "CHURN_ITERS=0",
			fmt.Sprintf("CHURN_PROGRESS=%d", crashVictimProgress), fmt.Sprintf("CHURN_CACHE=%d", cache))
		scmd := s.command(t, "churn", "CHURN_ID=1", "CHURN_ITERS=30000",
			fmt.Sprintf("CHURN_PROGRESS=%d", crashSurvivorProgress), "CHURN_CACHE=4")
		vc, sc := startChild(t, vcmd), startChild(t, scmd)
		// Kill after a random number of operations: the count, not the
		// clock, decides, so the kill lands at a random instruction.
		target := uint64(1000 + rng.IntN(20000))
		waitFor(t, "victim progress", func() bool { return s.word(crashVictimProgress).Load() >= target || vc.exited() })
		if vc.exited() {
			t.Fatalf("victim exited: %v", vc.wait())
		}
		if err := vcmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		mustKilled(t, vc.wait())
		// Reclaim while the survivor runs.
		n, err := a.ReclaimOwner(victim)
		if err != nil {
			t.Fatalf("round %d: reclaim: %v", round, err)
		}
		mustNothingOf(t, a, victim)
		if err := sc.wait(); err != nil {
			t.Fatalf("round %d: survivor: %v", round, err)
		}
		// Quiescent now: only the parent maps the region, and ReclaimOwner
		// alone must have made every class whole.
		t.Logf("round %d (cache %d): killed after %d ops, reclaimed %d chunks", round, cache, s.word(crashVictimProgress).Load(), n)
		mustWholeLists(t, a)
		cc, _ := a.Check()
		for _, c := range cc {
			drift += max(c.Counter, -c.Counter)
		}
		if fixed := a.Recover(); fixed != 0 {
			t.Fatalf("round %d: Recover repaired %d chunks after ReclaimOwner", round, fixed)
		}
		mustWhole(t, a)
	}
	t.Logf("%d rounds: in-use counters were off by %d in total (HighWater only)", rounds, drift)
}

// churnChild allocates and frees chunks of every class as participant
// CHURN_ID with a magazine of CHURN_CACHE chunks, holding up to 24 at a
// time, for CHURN_ITERS iterations (0: until killed), adding each operation
// to control word CHURN_PROGRESS. It flushes its magazine at the end.
func churnChild() int {
	id := uint32(envInt("CHURN_ID"))
	p, s, err := childRegion(WithOwner(id), WithCache(envInt("CHURN_CACHE")))
	if err != nil {
		fmt.Fprintln(os.Stderr, "churn:", err)
		return 1
	}
	fail := func(op string, err error) int {
		fmt.Fprintf(os.Stderr, "churn %d: %s: %v\n", id, op, err)
		return 1
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
			switch rng.IntN(4) {
			case 0:
				if err = p.Retain(r); err == nil {
					progress.Add(1)
					err = p.Release(r)
				}
				if err == nil {
					err = p.Release(r)
				}
			case 1:
				if err = p.Free(r); err == nil && rng.IntN(8) == 0 {
					err = p.Flush()
				}
			default:
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
	if err := p.Flush(); err != nil {
		return fail("flush", err)
	}
	return 0
}

// Control words of the full-cache test.
const (
	hoardReady  = 0 // child: 1 once its magazines are full
	hoardCached = 1 // child: chunks in its magazines
	hoardHeld   = 2 // child: chunks it holds allocated
)

const hoardID, hoardCache, hoardHold = 77, 8, 3

// TestCrashFullCache kills a child whose magazines are full, in every
// class, and which holds allocated chunks too: ReclaimOwner must return all
// of them, and the pool is whole afterwards.
func TestCrashFullCache(t *testing.T) {
	s, a := newSharedRegion(t, crashConfig, 3)
	cmd := s.command(t, "hoard")
	c := startChild(t, cmd)
	waitFor(t, "hoard child ready", func() bool { return s.word(hoardReady).Load() != 0 || c.exited() })
	if c.exited() {
		t.Fatalf("hoard child exited: %v", c.wait())
	}
	cached, held := int(s.word(hoardCached).Load()), int(s.word(hoardHeld).Load())
	if want := len(crashConfig.Classes) * hoardCache; cached != want {
		t.Fatalf("child reports %d cached chunks, want %d (full magazines)", cached, want)
	}
	var inUse, inCache int
	for _, st := range a.Stats() {
		inUse += st.InUse
		inCache += st.Cached
		if st.Free+st.InUse+st.Cached+st.InFlight != st.Total {
			t.Fatalf("stats do not add up: %+v", st)
		}
	}
	if inCache != cached || inUse != held {
		t.Fatalf("stats: %d cached, %d in use; child: %d cached, %d held", inCache, inUse, cached, held)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	mustKilled(t, c.wait())
	if n := mustReclaimWhole(t, a, hoardID); n != cached+held {
		t.Fatalf("reclaimed %d chunks, the child had %d cached and %d held", n, cached, held)
	}
}

// hoardChild fills a magazine of every class and holds hoardHold chunks of
// each allocated, reports the counts and waits to be killed.
func hoardChild() int {
	p, s, err := childRegion(WithOwner(hoardID), WithCache(hoardCache))
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "hoard:", err)
		return 1
	}
	if err != nil {
		return fail(err)
	}
	held := 0
	for _, c := range p.Classes() {
		for range hoardHold {
			if _, err := p.Alloc(c.Size); err != nil {
				return fail(err)
			}
			held++
		}
	}
	// Empty the magazines, then take exactly a magazine's worth of each
	// class (two refills of half) and free it: every magazine is full.
	if err := p.Flush(); err != nil {
		return fail(err)
	}
	for _, c := range p.Classes() {
		var refs []Ref
		for range hoardCache {
			r, err := p.Alloc(c.Size)
			if err != nil {
				return fail(err)
			}
			refs = append(refs, r)
		}
		for _, r := range refs {
			if err := p.Free(r); err != nil {
				return fail(err)
			}
		}
	}
	s.word(hoardCached).Store(uint64(p.Cached()))
	s.word(hoardHeld).Store(uint64(held))
	s.word(hoardReady).Store(1)
	for { // until killed (a sleeping timer keeps Go's deadlock detector quiet)
		time.Sleep(time.Hour)
	}
}

// Control words of the step-by-step crash test.
const (
	stepsCount = 0 // child: steps passed so far
	stepsLast  = 1 // child: the last step passed
	stepsKinds = 2 // child: the kind of each step, from here on (stepsMax words)
	stepsMax   = 256
)

const stepsID = 55

// TestCrashSteps kills a child at each step of its allocator calls in
// turn — every point between two shared-memory writes of a pop, a push, a
// refill, a spill, a Flush, a free into a magazine and an allocation
// without one — through the test-only step hook. After each kill the
// parent checks that the dead participant blocks nobody (it allocates and
// frees in every class before reclaiming), then that ReclaimOwner returns
// everything: every chunk free and listed, nothing owned by the dead id.
// A first run without a kill counts the steps; the test then checks that
// the kills covered every kind of step. Under the race detector (which sees
// nothing in shared memory and slows every child down) it kills only at the
// first step of each kind.
func TestCrashSteps(t *testing.T) {
	s, a := newSharedRegion(t, crashConfig, stepsKinds+stepsMax)
	other := withOwner(t, a, 1)
	run := func(killAt int) (uint64, step, error) {
		s.word(stepsCount).Store(0)
		s.word(stepsLast).Store(0)
		c := startChild(t, s.command(t, "steps", fmt.Sprintf("STEPS_KILL_AT=%d", killAt)))
		err := c.wait()
		return s.word(stepsCount).Load(), step(s.word(stepsLast).Load()), err
	}
	total, _, err := run(0)
	if err != nil {
		t.Fatalf("steps child without a kill: %v", err)
	}
	mustWhole(t, a)
	if total > stepsMax {
		t.Fatalf("%d steps, the test records %d", total, stepsMax)
	}
	var seen [numSteps]int
	for k := 1; k <= int(total); k++ {
		if kind := s.word(stepsKinds + k - 1).Load(); raceEnabled && seen[kind] > 0 {
			continue
		}
		n, last, err := run(k)
		mustKilled(t, err)
		if n != uint64(k) {
			t.Fatalf("kill at step %d: child passed %d steps", k, n)
		}
		seen[last]++
		// Nobody is blocked by the dead participant.
		for _, c := range a.Classes() {
			r, err := other.Alloc(c.Size)
			if err != nil {
				t.Fatalf("killed at step %d (%v): alloc %d: %v", k, last, c.Size, err)
			}
			if err := other.Free(r); err != nil {
				t.Fatalf("killed at step %d (%v): free: %v", k, last, err)
			}
		}
		mustReclaimWhole(t, a, stepsID)
	}
	for st := range numSteps {
		if seen[st] == 0 {
			t.Errorf("no kill at step %v", st)
		}
	}
	t.Logf("%d kills: %v", total, seen)
}

// stepsChild runs a fixed sequence of allocator calls as participant
// stepsID that passes every step kind, with a magazine of 4 and a handle
// without one, and SIGKILLs itself at step STEPS_KILL_AT (0: never).
func stepsChild() int {
	p, s, err := childRegion(WithOwner(stepsID), WithCache(4))
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "steps:", err)
		return 1
	}
	if err != nil {
		return fail(err)
	}
	plain, err := p.Handle(WithCache(0))
	if err != nil {
		return fail(err)
	}
	killAt := uint64(envInt("STEPS_KILL_AT"))
	testHook = func(st step) {
		n := s.word(stepsCount).Add(1)
		s.word(stepsLast).Store(uint64(st))
		if killAt == 0 && n <= stepsMax {
			s.word(stepsKinds + int(n) - 1).Store(uint64(st))
		}
		if n == killAt {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			for { // the signal is delivered as the system call returns
				time.Sleep(time.Hour)
			}
		}
	}
	// Magazine: three refills, a spill on the fifth free, reuse, Flush.
	var refs []Ref
	for range 6 {
		r, err := p.Alloc(10)
		if err != nil {
			return fail(err)
		}
		refs = append(refs, r)
	}
	for _, r := range refs {
		if err := p.Free(r); err != nil {
			return fail(err)
		}
	}
	r, err := p.AllocContext(context.Background(), 300)
	if err != nil {
		return fail(err)
	}
	if err := p.Retain(r); err != nil {
		return fail(err)
	}
	if err := p.Release(r); err != nil {
		return fail(err)
	}
	if err := p.Release(r); err != nil {
		return fail(err)
	}
	if err := p.Flush(); err != nil {
		return fail(err)
	}
	// Without a magazine: pop, allocate, free onto the list; and a chunk
	// allocated there freed into the magazine.
	r1, err := plain.Alloc(4000)
	if err != nil {
		return fail(err)
	}
	r2, err := plain.Alloc(4000)
	if err != nil {
		return fail(err)
	}
	if err := plain.Free(r1); err != nil {
		return fail(err)
	}
	if err := p.Free(r2); err != nil {
		return fail(err)
	}
	if err := p.Flush(); err != nil {
		return fail(err)
	}
	return 0
}
