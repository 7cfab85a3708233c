package shmkit_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/shmkit/shmkit"
)

type tick struct {
	Seq    uint64
	Price  float64
	Symbol [8]byte
	Flags  [3]uint16
}

type withString struct {
	ID   int
	Name string
}

func TestTyped(t *testing.T) {
	name := chanName(t)
	ch, err := shmkit.Create(name, shmkit.Config{MaxMessage: 256, RingDepth: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	ctx := ctxT(t)
	sub, _ := ch.Subscriber()
	pub, _ := ch.Publisher()
	if _, _, err := shmkit.LoanAs[withString](ctx, pub); !errors.Is(err, shmkit.ErrTypeMismatch) {
		t.Fatalf("a type with a string: %v, want ErrTypeMismatch", err)
	}
	for _, bad := range []error{
		func() error { _, _, err := shmkit.LoanAs[*tick](ctx, pub); return err }(),
		func() error { _, _, err := shmkit.LoanAs[[]byte](ctx, pub); return err }(),
		func() error { _, _, err := shmkit.LoanAs[map[int]int](ctx, pub); return err }(),
		func() error { _, _, err := shmkit.LoanAs[any](ctx, pub); return err }(),
		func() error { _, _, err := shmkit.LoanAs[struct{ A [2]*int }](ctx, pub); return err }(),
	} {
		if !errors.Is(bad, shmkit.ErrTypeMismatch) {
			t.Errorf("refused type: %v, want ErrTypeMismatch", bad)
		}
	}
	s, v, err := shmkit.LoanAs[tick](ctx, pub)
	if err != nil {
		t.Fatal(err)
	}
	*v = tick{Seq: 7, Price: 101.5, Symbol: [8]byte{'A', 'B'}, Flags: [3]uint16{1, 2, 3}}
	if err := pub.Publish(ctx, s); err != nil {
		t.Fatal(err)
	}
	smp, got, err := shmkit.ReceiveAs[tick](ctx, sub)
	if err != nil {
		t.Fatal(err)
	}
	if *got != (tick{Seq: 7, Price: 101.5, Symbol: [8]byte{'A', 'B'}, Flags: [3]uint16{1, 2, 3}}) {
		t.Fatalf("got %+v", *got)
	}
	smp.Release()
	// Another layout on the same channel: refused.
	type tick2 struct {
		Seq   uint32
		Price float64
	}
	if err := shmkit.SendAs(ctx, pub, tick2{}); !errors.Is(err, shmkit.ErrTypeMismatch) {
		t.Fatalf("another layout: %v, want ErrTypeMismatch", err)
	}
	if _, _, err := shmkit.ReceiveAs[tick2](ctx, sub); !errors.Is(err, shmkit.ErrTypeMismatch) {
		t.Fatalf("receive as another layout: %v, want ErrTypeMismatch", err)
	}
	poolWhole(t, ch)
}

// TestTypeMismatchNames: a typed call whose type differs from the one the
// channel carries names both types (the name is
// recorded in the channel beside the fingerprint, and read back here
// through a second handle on the shared memory).
func TestTypeMismatchNames(t *testing.T) {
	name := chanName(t)
	ch, err := shmkit.Create(name, shmkit.Config{MaxMessage: 64, RingDepth: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	ctx := ctxT(t)
	pub, _ := ch.Publisher()
	if err := shmkit.SendAs(ctx, pub, tick{}); err != nil {
		t.Fatal(err)
	}
	other, err := shmkit.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	p2, _ := other.Publisher()
	type quote struct {
		Seq   uint32
		Price float64
	}
	err = shmkit.SendAs(ctx, p2, quote{})
	if !errors.Is(err, shmkit.ErrTypeMismatch) || !strings.Contains(err.Error(), "shmkit_test.tick ") || !strings.Contains(err.Error(), "shmkit_test.quote ") {
		t.Fatalf("mismatch: %v, want both type names", err)
	}
}
