package shmkit_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/shmkit/shmkit"
	"github.com/shmkit/shmkit/internal/proctest"
)

func init() { extraChildren["tapper"] = childTapper }

// childTapper attaches a tap to CH, says "ready" and waits for stdin to
// close (or for its SIGKILL).
func childTapper() int {
	tp, err := shmkit.OpenTap(env("CH"))
	if err != nil {
		return fail("tapper: %v", err)
	}
	defer tp.Close()
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

// TestTapCrossProcess: a publisher process sends while a tap in this
// process reads: every record the tap reports is whole (content checked
// against the pattern of its seq), ids and seqs match, received + missed
// accounts for every message; the subscriber process receives every
// message (the tap holds nothing up). Then a second publisher process
// sends more than TapSlots messages while the tap does not read: the tap
// gets the last TapSlots, with the rest counted as missed.
func TestTapCrossProcess(t *testing.T) {
	name := chanName(t)
	const max, snap, slots = 300, 96, 256
	ch, err := shmkit.Create(name, shmkit.Config{MaxMessage: max, RingDepth: 64, TapSlots: slots, TapSnap: snap})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	sub := proctest.Command(t, "subscriber", "CH="+name)
	sub.Stdout = nil
	out, err := sub.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	proctest.Start(t, sub)
	waitFor(t, "the subscriber to join", func() bool { st, _ := ch.Stats(); return st.Count("subscriber") == 1 })
	tap, err := shmkit.OpenTap(name)
	if err != nil {
		t.Fatal(err)
	}
	defer tap.Close()

	const count = 20000
	pub := proctest.Command(t, "publisher", "CH="+name, fmt.Sprint("COUNT=", count))
	proctest.Start(t, pub)
	ctx := ctxT(t)
	var last uint64
	from := -1
	got, missed := uint64(0), uint64(0)
	for got+missed < count {
		r, err := tap.Receive(ctx)
		if err != nil {
			t.Fatalf("after %d received, %d missed: %v", got, missed, err)
		}
		checkRecord(t, r, max, snap)
		if from == -1 {
			from = r.Publisher
		}
		if r.Publisher != from || r.Seq != last+1+r.Missed {
			t.Fatalf("tap: publisher %#x message %d after %d, missed %d", r.Publisher, r.Seq, last, r.Missed)
		}
		last = r.Seq
		got++
		missed += r.Missed
	}
	if err := pub.Wait(); err != nil {
		t.Fatal("publisher:", err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	if err := sub.Wait(); err != nil || line != fmt.Sprintf("got %d\n", count) {
		t.Fatalf("subscriber: %q, %v", line, err)
	}
	st := tap.Stats()
	t.Logf("tap received %d, missed %d of %d", st.Received, st.Missed, count)
	if st.Received != got || st.Missed != missed || got == 0 {
		t.Fatalf("tap stats %+v; counted %d received, %d missed", st, got, missed)
	}

	// Paused: a publisher sends 3000 while the tap does not read.
	const more = 3000
	pub2 := proctest.Command(t, "publisher", "CH="+name, fmt.Sprint("COUNT=", more))
	proctest.Start(t, pub2)
	if err := pub2.Wait(); err != nil {
		t.Fatal("publisher:", err)
	}
	r, err := tap.Receive(ctx)
	// The second publisher takes the first one's slot and continues its
	// numbering.
	if err != nil || r.Missed != more-slots || r.Seq != count+more-slots+1 || r.Publisher == from {
		t.Fatalf("after a pause: message %d of publisher %#x, missed %d, %v; want message %d missed %d",
			r.Seq, r.Publisher, r.Missed, err, count+more-slots+1, more-slots)
	}
	checkRecord(t, r, max, snap)
	for range slots - 1 {
		r, err := tap.Receive(ctx)
		if err != nil || r.Missed != 0 {
			t.Fatalf("%v, missed %d", err, r.Missed)
		}
		checkRecord(t, r, max, snap)
	}
	if r, err := tap.TryReceive(); !errors.Is(err, shmkit.ErrWouldBlock) {
		t.Fatalf("after the last: %+v, %v", r, err)
	}
}

// TestTapKilled: a SIGKILLed tap leaves its bit in the active word until
// the next liveness scan of a participant, which clears its entry and the
// bit, so publishers stop copying.
func TestTapKilled(t *testing.T) {
	name := chanName(t)
	ch, err := shmkit.Create(name, shmkit.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	cmd := proctest.Command(t, "tapper", "CH="+name)
	cmd.Stdout = nil
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	proctest.Start(t, cmd)
	if line, _ := bufio.NewReader(out).ReadString('\n'); line != "ready\n" {
		t.Fatalf("tapper: %q", line)
	}
	if ch.TapActiveForTest() == 0 {
		t.Fatal("active word 0 with a tap attached")
	}
	st, err := ch.Stats()
	if err != nil || len(st.Taps) != 1 || st.Taps[0].PID != cmd.Process.Pid || !st.Taps[0].Active {
		t.Fatalf("taps %+v, %v", st.Taps, err)
	}
	if n := ch.ScanForTest(); n != 0 || ch.TapActiveForTest() == 0 {
		t.Fatalf("a scan cleaned %d with the tap alive", n)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("tapper: %v", err)
	}
	// The scan that runs next on the publishing path (or this forced one).
	waitFor(t, "the active word to go back to 0", func() bool { ch.ScanForTest(); return ch.TapActiveForTest() == 0 })
	if st, err := ch.Stats(); err != nil || len(st.Taps) != 0 {
		t.Fatalf("after the scan: taps %+v, %v", st.Taps, err)
	}
	// The entry is free again.
	for range shmkit.MaxTaps {
		tp, err := shmkit.OpenTap(name)
		if err != nil {
			t.Fatal(err)
		}
		defer tp.Close()
	}
}

// TestTapPublisherKilledInCopy: a publisher SIGKILLed between claiming a
// tap slot and finishing its copy leaves the slot WRITING; its cleaner
// marks it abandoned, so the tap counts that message missed and later
// publishers use the slot again (a slot left WRITING would lose one
// message a lap for ever).
func TestTapPublisherKilledInCopy(t *testing.T) {
	name := chanName(t)
	const slots = 16
	ch, tap := tappedChannel(t, name, shmkit.Config{MaxMessage: 300, TapSlots: slots})
	cmd := proctest.Command(t, "publisher", "CH="+name, "COUNT=100", "KILL_AT=tap.copy", "KILL_N=5")
	proctest.Start(t, cmd)
	if err := cmd.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("publisher: %v", err)
	}
	waitFor(t, "the dead publisher to be cleaned", func() bool {
		ch.ScanForTest()
		st, err := ch.Stats()
		return err == nil && st.Count("publisher") == 0
	})
	ctx := ctxT(t)
	for want := uint64(1); want <= 4; want++ {
		r, err := tap.Receive(ctx)
		if err != nil || r.Seq != want || r.Missed != 0 {
			t.Fatalf("message %d (missed %d), want %d: %v", r.Seq, r.Missed, want, err)
		}
		checkRecord(t, r, 300, shmkit.DefaultTapSnap)
	}
	pub, err := ch.Publisher()
	if err != nil {
		t.Fatal(err)
	}
	// Two laps, read a half lap at a time: every slot is written again,
	// the abandoned one included.
	// The new publisher continues the slot's numbering (Sample.Seq) after
	// the dead one's last message, 5.
	seq := uint64(5)
	for lap := range 4 {
		for range slots / 2 {
			seq++
			s, err := pub.LoanContext(ctx, msgSize(seq, 300))
			if err != nil {
				t.Fatal(err)
			}
			if s.Seq() != seq {
				t.Fatalf("loan will carry number %d, want %d", s.Seq(), seq)
			}
			payload(s.Bytes(), s.Publisher(), seq)
			if err := pub.Publish(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
		for i := range slots / 2 {
			r, err := tap.Receive(ctx)
			if err != nil {
				t.Fatal(err)
			}
			wantMissed := uint64(0)
			if lap == 0 && i == 0 {
				wantMissed = 1 // the copy the dead publisher never finished
			}
			if r.Seq != seq-slots/2+uint64(i)+1 || r.Missed != wantMissed {
				t.Fatalf("lap %d: message %d missed %d; want %d missed %d", lap, r.Seq, r.Missed, seq-slots/2+uint64(i)+1, wantMissed)
			}
			checkRecord(t, r, 300, shmkit.DefaultTapSnap)
		}
	}
}
