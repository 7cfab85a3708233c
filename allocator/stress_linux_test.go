package allocator

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/proctest"
)

// Control words of the stress test: stressMailboxes slots that pass refs
// between processes (0 = empty), then one operation count per child.
const stressMailboxes = 16

var stressConfig = Config{Classes: []Class{{64, 32}, {256, 32}, {1024, 16}, {4096, 8}}}

func init() { testChildren["stress"] = stressChild }

// stressIters is the loop count of each stress child. Each iteration is one
// to three allocator operations (alloc, free, retain+release, set owner).
func stressIters(procs int) int {
	if testing.Short() || raceEnabled {
		return 50_000 / procs
	}
	return 2_400_000 / procs
}

func TestStressCrossProcess(t *testing.T) {
	for _, procs := range []int{2, 4} {
		t.Run(fmt.Sprintf("procs=%d", procs), func(t *testing.T) {
			s, a := newSharedRegion(t, stressConfig, stressMailboxes+procs)
			iters := stressIters(procs)
			var cmds []*exec.Cmd
			for p := range procs {
				// Half the children use a magazine: chunks pass between
				// cached and uncached handles through the mailboxes.
				cmd := s.command(t, "stress", fmt.Sprintf("STRESS_ID=%d", p+1),
					fmt.Sprintf("STRESS_ITERS=%d", iters), fmt.Sprintf("STRESS_SLOT=%d", stressMailboxes+p),
					fmt.Sprintf("STRESS_CACHE=%d", []int{0, 6}[p%2]))
				proctest.Start(t, cmd)
				cmds = append(cmds, cmd)
			}
			for p, cmd := range cmds {
				if err := cmd.Wait(); err != nil {
					t.Fatalf("child %d: %v", p+1, err)
				}
			}
			var ops uint64
			for p := range procs {
				ops += s.word(stressMailboxes + p).Load()
			}
			// Chunks left in mailboxes: still stamped consistently, then freed.
			left := 0
			for i := range stressMailboxes {
				r := Ref(s.word(i).Swap(0))
				if r == 0 {
					continue
				}
				b, err := a.Bytes(r)
				if err != nil {
					t.Fatalf("mailbox %d: %v", i, err)
				}
				if _, err := readStamp(b); err != nil {
					t.Fatalf("mailbox %d: %v", i, err)
				}
				if err := a.Free(r); err != nil {
					t.Fatal(err)
				}
				left++
			}
			st := a.Stats()
			t.Logf("%d processes: %d allocator operations, %d chunks left in mailboxes; stats %+v", procs, ops, left, st)
			if ops < uint64(iters) {
				t.Fatalf("only %d operations", ops)
			}
			mustWhole(t, a)
		})
	}
}

// Stamps: the holder's token at the start, the middle and the end of the
// chunk's capacity. A chunk handed to two holders at once shows the other
// holder's token (or a mix) at the next check.
func stampOffsets(b []byte) [3]int {
	c := cap(b)
	return [3]int{0, (c / 2) &^ 7, c - 8}
}

func writeStamp(b []byte, tok uint64) {
	b = b[:cap(b)]
	for _, o := range stampOffsets(b) {
		binary.LittleEndian.PutUint64(b[o:], tok)
	}
}

func readStamp(b []byte) (uint64, error) {
	b = b[:cap(b)]
	var tok uint64
	for i, o := range stampOffsets(b) {
		v := binary.LittleEndian.Uint64(b[o:])
		if i == 0 {
			tok = v
		} else if v != tok {
			return 0, fmt.Errorf("torn stamp: %#x at 0, %#x at %d", tok, v, o)
		}
	}
	if tok == 0 {
		return 0, errors.New("chunk was never stamped")
	}
	return tok, nil
}

type heldChunk struct {
	r   Ref
	tok uint64
}

func stressChild() int {
	id := uint32(envInt("STRESS_ID"))
	p, s, err := childRegion(WithOwner(id), WithCache(envInt("STRESS_CACHE")))
	if err != nil {
		fmt.Fprintln(os.Stderr, "stress:", err)
		return 1
	}
	rng := rand.New(rand.NewPCG(uint64(id), uint64(os.Getpid())))
	classes := p.Classes()
	var held []heldChunk
	var seq, ops uint64
	fail := func(format string, args ...any) int {
		fmt.Fprintf(os.Stderr, "stress child %d: %s\n", id, fmt.Sprintf(format, args...))
		return 1
	}
	stamp := func(r Ref) error {
		b, err := p.Bytes(r)
		if err != nil {
			return err
		}
		seq++
		tok := uint64(id)<<48 | seq
		writeStamp(b, tok)
		held = append(held, heldChunk{r, tok})
		return nil
	}
	check := func(h heldChunk) error {
		b, err := p.Bytes(h.r)
		if err != nil {
			return err
		}
		got, err := readStamp(b)
		if err != nil {
			return fmt.Errorf("%v: %w", h.r, err)
		}
		if got != h.tok {
			return fmt.Errorf("%v: stamped %#x, holder stamped %#x: handed out twice", h.r, got, h.tok)
		}
		return nil
	}
	// release gives up held[i] in one of three ways.
	release := func(i int) error {
		h := held[i]
		held[i] = held[len(held)-1]
		held = held[:len(held)-1]
		if err := check(h); err != nil {
			return err
		}
		ops++
		switch rng.IntN(3) {
		case 0:
			return p.Free(h.r)
		case 1:
			ops += 2
			if err := p.Retain(h.r); err != nil {
				return err
			}
			if err := p.Release(h.r); err != nil {
				return err
			}
		}
		return p.Release(h.r)
	}
	for range envInt("STRESS_ITERS") {
		switch x := rng.IntN(16); {
		case x < 7 || len(held) == 0: // allocate
			c := classes[rng.IntN(len(classes))]
			n := c.Size - rng.IntN(c.Size/2)
			var r Ref
			var err error
			if x == 0 {
				ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
				r, err = p.AllocContext(ctx, n)
				cancel()
			} else {
				r, err = p.Alloc(n)
			}
			ops++
			if errors.Is(err, ErrNoMemory) {
				continue
			}
			if err != nil {
				return fail("alloc %d: %v", n, err)
			}
			if l, _ := p.Len(r); l != n {
				return fail("alloc %d: len %d", n, l)
			}
			if err := stamp(r); err != nil {
				return fail("stamp: %v", err)
			}
		case x < 11: // free
			if err := release(rng.IntN(len(held))); err != nil {
				return fail("release: %v", err)
			}
		case x < 13: // pass to a mailbox
			i := rng.IntN(len(held))
			h := held[i]
			if err := check(h); err != nil {
				return fail("pass: %v", err)
			}
			if s.word(rng.IntN(stressMailboxes)).CompareAndSwap(0, uint64(h.r)) {
				held[i] = held[len(held)-1]
				held = held[:len(held)-1]
			}
		default: // take from a mailbox
			r := Ref(s.word(rng.IntN(stressMailboxes)).Swap(0))
			if r == 0 {
				continue
			}
			ops++
			if err := p.SetOwner(r, id); err != nil {
				return fail("take %v: %v", r, err)
			}
			b, err := p.Bytes(r)
			if err != nil {
				return fail("take %v: %v", r, err)
			}
			if _, err := readStamp(b); err != nil {
				return fail("take %v: %v", r, err)
			}
			if err := stamp(r); err != nil {
				return fail("stamp: %v", err)
			}
		}
		for len(held) > 12 {
			if err := release(rng.IntN(len(held))); err != nil {
				return fail("release: %v", err)
			}
		}
	}
	for len(held) > 0 {
		if err := release(0); err != nil {
			return fail("release: %v", err)
		}
	}
	if err := p.Flush(); err != nil {
		return fail("flush: %v", err)
	}
	s.word(envInt("STRESS_SLOT")).Store(ops)
	return 0
}
