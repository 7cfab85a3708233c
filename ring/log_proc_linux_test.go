package ring

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/proctest"
)

func init() {
	proctest.Register("log-write", childLogWrite)
	proctest.Register("log-read", childLogRead)
}

// Shared words of the log tests (result words of the shared area).
const (
	logProgress = 2 // writer: messages whose Write returned
	logRead     = 3 // reader child: messages it verified
)

const logTestMax = 200

func newLogArea(t *testing.T, capacity, readers int, policy LogPolicy) (*sharedArea, *Log) {
	t.Helper()
	size, err := LogSize(capacity, readers)
	if err != nil {
		t.Fatal(err)
	}
	a := newSharedArea(t, size)
	l, err := NewLog(a.ring(), capacity, readers, policy)
	if err != nil {
		t.Fatal(err)
	}
	return a, l
}

// childLogWrite attaches the log and writes messages logMsg(i) for i from
// the progress word up to RING_N, recording each one whose Write returned;
// it is killed at RING_KILL_STEP's RING_KILL_AT-th hit, if set. It closes
// the log at the end unless RING_NOCLOSE is set. RING_BATCH > 1 writes in
// batches.
func childLogWrite() int {
	a, err := childArea()
	if err != nil {
		return childFail("%v", err)
	}
	l, err := AttachLog(a.ring())
	if err != nil {
		return childFail("attach: %v", err)
	}
	if s := envInt("RING_KILL_STEP", 0); s != 0 {
		setKillHook(step(s), envInt("RING_KILL_AT", 1))
	}
	n := uint64(envInt("RING_N", 1000))
	batch := max(envInt("RING_BATCH", 1), 1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	w := l.Writer()
	progress := a.count(logProgress)
	a.word(wordReady).Add(1)
	msgs := make([][]byte, 0, batch)
	for i := progress.Load(); i < n; {
		msgs = msgs[:0]
		for j := i; j < n && len(msgs) < batch; j++ {
			msgs = append(msgs, logMsg(j, logTestMax))
		}
		k, err := w.WriteBatch(ctx, msgs)
		if err != nil {
			return childFail("write %d: %v", i, err)
		}
		i += uint64(k)
		progress.Store(i)
	}
	if os.Getenv("RING_NOCLOSE") == "" {
		w.Close()
	}
	a.word(wordDone).Add(1)
	return 0
}

// childLogRead joins the log as owner RING_OWNER and reads until the log
// is closed, checking every message (whole, in order from the first it
// got); it is killed at a step if told to.
func childLogRead() int {
	a, err := childArea()
	if err != nil {
		return childFail("%v", err)
	}
	l, err := AttachLog(a.ring())
	if err != nil {
		return childFail("attach: %v", err)
	}
	r, err := l.Join(uint32(envInt("RING_OWNER", 1)))
	if err != nil {
		return childFail("join: %v", err)
	}
	if s := envInt("RING_KILL_STEP", 0); s != 0 {
		setKillHook(step(s), envInt("RING_KILL_AT", 1))
	}
	a.word(wordReady).Add(1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	buf := make([]byte, logTestMax)
	var next uint64
	first := true
	for {
		rec, err := r.Read(ctx, buf)
		if errors.Is(err, ErrClosed) {
			break
		}
		if err != nil {
			return childFail("read: %v", err)
		}
		i, err := checkLogMsg(rec.Data, logTestMax)
		if err != nil || (!first && i != next) {
			return childFail("message %d, want %d: %v", i, next, err)
		}
		first = false
		next = i + 1
		a.count(logRead).Add(1)
	}
	a.word(wordDone).Add(1)
	return 0
}

// TestLogProcStream: one writer process, two reader processes and this
// one, LogBlock, a small log: every reader gets every message whole and in
// order.
func TestLogProcStream(t *testing.T) {
	const n = 20000
	a, l := newLogArea(t, 4096, 4, LogBlock)
	r, err := l.Join(100)
	if err != nil {
		t.Fatal(err)
	}
	var children []*exec.Cmd
	for k := range 2 {
		children = append(children, a.start(t, "log-read", fmt.Sprintf("RING_OWNER=%d", k+1)))
	}
	a.waitWord(t, wordReady, 2)
	children = append(children, a.start(t, "log-write", fmt.Sprintf("RING_N=%d", n), "RING_BATCH=7"))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	buf := make([]byte, logTestMax)
	for next := uint64(0); ; next++ {
		rec, err := r.Read(ctx, buf)
		if errors.Is(err, ErrClosed) {
			if next != n {
				t.Fatalf("closed after %d of %d", next, n)
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if i, err := checkLogMsg(rec.Data, logTestMax); err != nil || i != next || rec.Seq != next {
			t.Fatalf("message %d (seq %d), want %d: %v", i, rec.Seq, next, err)
		}
	}
	for _, c := range children {
		waitCmd(t, c)
	}
	if got := a.count(logRead).Load(); got != 2*n {
		t.Fatalf("reader children verified %d messages, want %d", got, 2*n)
	}
}

// TestLogDropOldestSlowReader: a writer process sends a million messages
// under LogDropOldest to this process, which reads slowly: every message
// it gets is whole (every byte checked), none twice, in order, and what it
// got plus what it was told it missed is exactly what was sent.
func TestLogDropOldestSlowReader(t *testing.T) {
	n := 1_000_000
	if testing.Short() {
		n = 100_000
	}
	a, l := newLogArea(t, 16384, 1, LogDropOldest)
	r, err := l.Join(1)
	if err != nil {
		t.Fatal(err)
	}
	w := a.start(t, "log-write", fmt.Sprintf("RING_N=%d", n))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	buf := make([]byte, logTestMax)
	var got, missed, next uint64
	var sink uint64
	for {
		rec, err := r.Read(ctx, buf)
		if errors.Is(err, ErrClosed) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		i, err := checkLogMsg(rec.Data, logTestMax)
		if err != nil {
			t.Fatal(err)
		}
		if i != next+rec.Missed {
			t.Fatalf("message %d after %d, %d reported missed", i, next, rec.Missed)
		}
		missed += rec.Missed
		got++
		next = i + 1
		for j := range 50 * (got % 4) { // slow down: some work per message
			sink += uint64(j) * got
		}
	}
	waitCmd(t, w)
	if got+missed != uint64(n) || r.Missed() != missed {
		t.Fatalf("received %d + missed %d (reader: %d) != sent %d", got, missed, r.Missed(), n)
	}
	t.Logf("%d sent, %d received whole, %d missed (exactly counted) %d", n, got, missed, sink&1)
}

// TestLogCrashWriter kills writer processes at every step of a write (claim
// published, record written, committed, readers woken) and at random,
// while this process reads, waiting. After each death the test calls
// Recover, as a channel's cleaner would: the reader moves on at once (no
// partial record, message numbers consecutive), and the next writer
// process resumes where the last Write that returned left off. A message
// is delivered twice only when its writer died after committing it and
// before recording it.
func TestLogCrashWriter(t *testing.T) {
	for _, batch := range []int{1, 5} {
		t.Run(fmt.Sprintf("batch%d", batch), func(t *testing.T) { testLogCrashWriter(t, batch) })
	}
}

func testLogCrashWriter(t *testing.T, batch int) {
	a, l := newLogArea(t, 2048, 1, LogBlock)
	r, err := l.Join(1)
	if err != nil {
		t.Fatal(err)
	}
	steps := []step{stepProducerPadded, stepProducerClaimed, stepProducerWritten, stepProducerPublished, stepProducerNotified}
	plans := crashPlans(3, steps, crashRandom())
	n := uint64(1000 * len(plans))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var cursor atomic.Uint64
	done := make(chan error, 1)
	var dups atomic.Uint64
	goInArea(t, cancel, func() {
		buf := make([]byte, logTestMax)
		var next uint64
		for {
			rec, ok, err := r.TryRead(buf)
			cursor.Store(r.Cursor()) // past padding too
			if err == nil && !ok {
				if err = r.Wait(ctx); err == nil {
					continue
				}
			}
			if errors.Is(err, ErrClosed) {
				if next != n {
					err = fmt.Errorf("closed at %d of %d", next, n)
				} else {
					err = nil
				}
				done <- err
				return
			}
			if err != nil {
				done <- err
				return
			}
			i, err := checkLogMsg(rec.Data, logTestMax)
			switch {
			case err != nil:
			case i == next:
				next++
			case i < next && next-i <= uint64(batch):
				dups.Add(1)
			default:
				err = fmt.Errorf("message %d, want %d", i, next)
			}
			if err != nil {
				done <- err
				return
			}
		}
	})
	for _, p := range plans {
		runCrashChild(t, a, "log-write", p, fmt.Sprintf("RING_N=%d", n), fmt.Sprintf("RING_BATCH=%d", batch))
		if p.step == 0 && p.delay == 0 {
			break
		}
		// The cleaner's part: close off whatever claim the dead writer
		// left. The reader then reaches the tail promptly.
		if _, err := l.Recover(); err != nil {
			t.Fatalf("Recover after child (%v): %v", p, err)
		}
		start := time.Now()
		for cursor.Load() != l.Tail() {
			select {
			case err := <-done:
				t.Fatalf("reader after child (%v): %v", p, err)
			default:
			}
			if time.Since(start) > 30*time.Second {
				t.Fatalf("reader stuck at %d, tail %d after child (%v)", cursor.Load(), l.Tail(), p)
			}
			time.Sleep(100 * time.Microsecond)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	t.Logf("%d messages through %d writer processes, %d delivered twice", n, len(plans), dups.Load())
}

// TestLogCrashReader kills reader processes at every step of a read (record
// read, position published) and at random while this process writes under
// LogBlock to them and to a reader of its own; after each death the test
// removes the dead reader's slot (the cleaner's part): the writer, blocked
// on the dead reader's position, goes on, and the surviving reader gets
// every message.
func TestLogCrashReader(t *testing.T) {
	a, l := newLogArea(t, 1024, 2, LogBlock)
	r, err := l.Join(1000)
	if err != nil {
		t.Fatal(err)
	}
	plans := crashPlans(5, []step{stepConsumerCopied, stepConsumerReleased}, crashRandom())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stop := make(chan struct{})
	wrote := make(chan uint64, 1)
	goInArea(t, cancel, func() {
		w := l.Writer()
		var i uint64
		defer func() { w.Close(); wrote <- i }()
		for ; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := w.Write(ctx, logMsg(i, logTestMax)); err != nil {
				return
			}
		}
	})
	survivor := make(chan error, 1)
	goInArea(t, cancel, func() {
		buf := make([]byte, logTestMax)
		for next := uint64(0); ; next++ {
			rec, err := r.Read(ctx, buf)
			if errors.Is(err, ErrClosed) {
				survivor <- nil
				return
			}
			if err != nil {
				survivor <- err
				return
			}
			if i, err := checkLogMsg(rec.Data, logTestMax); err != nil || i != next {
				survivor <- fmt.Errorf("survivor: message %d, want %d: %v", i, next, err)
				return
			}
		}
	})
	for k, p := range plans {
		owner := uint32(k + 1)
		if p.step == 0 && p.delay == 0 {
			// The last reader reads a while, then the writer closes.
			c := a.start(t, "log-read", fmt.Sprintf("RING_OWNER=%d", owner))
			before := a.count(logRead).Load()
			for a.count(logRead).Load() < before+2000 {
				time.Sleep(100 * time.Microsecond)
			}
			close(stop)
			waitCmd(t, c)
			break
		}
		runCrashChild(t, a, "log-read", p, fmt.Sprintf("RING_OWNER=%d", owner))
		if got := l.RemoveReaders(owner); got > 1 {
			t.Fatalf("removed %d slots of owner %d", got, owner)
		}
	}
	if err := <-survivor; err != nil {
		t.Fatal(err)
	}
	t.Logf("%d messages written through %d reader processes", <-wrote, len(plans))
}

// TestLogJoinChurn: readers join and leave again and again while the
// writer streams messages of varying length into a small log (padding at
// lap ends) and a batch now and then, under each policy. Every joiner's
// first record carries its message's number (ErrCorrupt before the
// padding fix), and from there each record is the next message or counts
// exactly the messages it skipped in Missed (none under LogBlock).
func TestLogJoinChurn(t *testing.T) {
	for _, policy := range []LogPolicy{LogBlock, LogDropNewest, LogDropOldest} {
		t.Run(fmt.Sprint(policy), func(t *testing.T) { testLogJoinChurn(t, policy) })
	}
}

func testLogJoinChurn(t *testing.T, policy LogPolicy) {
	// In a shared mapping, as a channel's logs: under LogDropOldest the
	// writer overwrites what a lapped reader copies (the reader then
	// checks and discards it), which the race detector would report in
	// Go memory.
	_, l := newLogArea(t, 2048, 3, policy)
	w := l.Writer()
	stay, err := l.Join(1)
	if err != nil {
		t.Fatal(err)
	}
	const n = 30_000
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	errs := make(chan error, 3)
	var joins atomic.Int64
	go func() { // the writer: message i carries number i (a drop uses it up)
		defer w.Close()
		// A writer that never waits would be done before many joins: it
		// goes on until 300 readers have joined.
		for i := uint64(0); i < n || joins.Load() < 300; {
			if i%97 == 0 && policy == LogBlock {
				batch := [][]byte{logMsg(i, logTestMax), logMsg(i+1, logTestMax), logMsg(i+2, logTestMax)}
				k, err := w.WriteBatch(ctx, batch)
				if err != nil {
					errs <- fmt.Errorf("writer, batch at %d: %w", i, err)
					return
				}
				i += uint64(k)
				continue
			}
			if policy == LogBlock {
				if err := w.Write(ctx, logMsg(i, logTestMax)); err != nil {
					errs <- fmt.Errorf("writer, message %d: %w", i, err)
					return
				}
			} else if ok, err := w.TryWrite(logMsg(i, logTestMax)); err != nil {
				errs <- fmt.Errorf("writer, message %d: %w", i, err)
				return
			} else if !ok {
				w.Drop()
			}
			i++
		}
		errs <- nil
	}()
	read := func(r *LogReader, who string, limit int) (int, error) {
		buf := make([]byte, logTestMax)
		var next uint64
		for k := 0; limit == 0 || k < limit; k++ {
			rec, err := r.Read(ctx, buf)
			if errors.Is(err, ErrClosed) {
				return k, nil
			}
			if err != nil {
				return k, fmt.Errorf("%s: %w", who, err)
			}
			i, err := checkLogMsg(rec.Data, logTestMax)
			gap := k > 0 && i != next+rec.Missed
			if err != nil || rec.Seq != i || gap || (policy == LogBlock && rec.Missed != 0) {
				return k, fmt.Errorf("%s: message %d with number %d, missed %d, after %d: %v", who, i, rec.Seq, rec.Missed, next-1, err)
			}
			next = i + 1
		}
		return limit, nil
	}
	go func() { // the reader present throughout
		_, err := read(stay, "reader present throughout", 0)
		errs <- err
	}()
	go func() { // readers that come and go
		for owner := uint32(2); ; owner++ {
			r, err := l.Join(owner)
			if err != nil {
				errs <- fmt.Errorf("join %d: %w", joins.Load(), err)
				return
			}
			k, err := read(r, fmt.Sprintf("joiner %d", joins.Add(1)), 1+int(owner%50))
			l.RemoveReaders(owner)
			if err != nil || k < 1+int(owner%50) { // closed: the stream is over
				if err == nil {
					t.Logf("%d joins", joins.Load())
				}
				errs <- err
				return
			}
		}
	}()
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
