//go:build linux

package bench

import (
	"fmt"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"golang.org/x/sys/unix"
)

// processCPU returns the CPU time (user + system) of the whole process.
func processCPU() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// pace is how a sender decides when the warm-up ends and when to stop.
type pace struct {
	size     int
	warmup   time.Duration
	duration time.Duration
	minMsgs  int
}

// sideStats is what one side measured over the measured window.
type sideStats struct {
	msgs     int64 // measured messages (round trips)
	elapsed  time.Duration
	cpu      time.Duration
	verified int64 // messages checksummed whole (all of them, warm-up included)
	hist     *hdrhistogram.Histogram
}

// newHist records round trips from 1 ns to 100 s with 3 significant digits.
func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(1, 100e9, 3) }

// produce sends messages on out: warm-up messages for p.warmup, then a
// message flagged mark, then messages for p.duration (and at least
// p.minMsgs), the last one flagged last. The CPU time runs from the mark
// to the last message.
func produce(out endpoint, p pace) (sideStats, error) {
	buf := make([]byte, p.size)
	fillPayload(buf)
	every := uint64(16)
	if p.size >= 1024 {
		every = 1
	}
	start := time.Now()
	var t0 time.Time
	var cpu0 time.Duration
	var markSeq uint64
	marked := false
	for seq := uint64(0); ; seq++ {
		var flags uint32
		if seq%every == 0 {
			now := time.Now()
			switch {
			case !marked && now.Sub(start) >= p.warmup:
				flags = flagMark
			case marked && now.Sub(t0) >= p.duration && seq-markSeq >= uint64(p.minMsgs):
				flags = flagLast
			}
		}
		if flags == flagMark {
			marked, markSeq = true, seq
			cpu0, t0 = processCPU(), time.Now()
		}
		stamp(buf, seq, flags)
		if err := out.send(buf); err != nil {
			return sideStats{}, fmt.Errorf("send message %d: %w", seq, err)
		}
		if flags == flagLast {
			return sideStats{msgs: int64(seq - markSeq), elapsed: time.Since(t0), cpu: processCPU() - cpu0}, nil
		}
	}
}

// consume receives and verifies messages from in until the one flagged
// last. Its window runs from receiving the mark to receiving the last
// message, so it counts last-mark messages.
func consume(in endpoint, size int) (sideStats, error) {
	buf := make([]byte, size)
	var st sideStats
	var t0 time.Time
	var cpu0 time.Duration
	var markSeq uint64
	marked := false
	for seq := uint64(0); ; seq++ {
		n, err := in.recv(buf)
		if err != nil {
			return st, fmt.Errorf("receive message %d: %w", seq, err)
		}
		flags, whole, err := verify(buf[:n], size, seq)
		if err != nil {
			return st, err
		}
		if whole {
			st.verified++
		}
		if flags&flagMark != 0 {
			if marked {
				return st, fmt.Errorf("message %d: second mark: %w", seq, ErrCorrupt)
			}
			marked, markSeq = true, seq
			t0, cpu0 = time.Now(), processCPU()
		}
		if flags&flagLast != 0 {
			if !marked {
				return st, fmt.Errorf("message %d: last before mark: %w", seq, ErrCorrupt)
			}
			st.elapsed, st.cpu = time.Since(t0), processCPU()-cpu0
			st.msgs = int64(seq - markSeq)
			return st, nil
		}
	}
}

// ping sends message after message on down and waits for each echo on up,
// recording the round-trip times after the warm-up in a histogram.
func ping(down, up endpoint, p pace) (sideStats, error) {
	out := make([]byte, p.size)
	fillPayload(out)
	in := make([]byte, p.size)
	st := sideStats{hist: newHist()}
	start := time.Now()
	var t0 time.Time
	var cpu0 time.Duration
	var markSeq uint64
	marked := false
	for seq := uint64(0); ; seq++ {
		now := time.Now()
		var flags uint32
		switch {
		case !marked && now.Sub(start) >= p.warmup:
			flags = flagMark
			marked, markSeq = true, seq
			cpu0 = processCPU()
			now = time.Now()
			t0 = now
		case marked && now.Sub(t0) >= p.duration && seq-markSeq >= uint64(p.minMsgs):
			flags = flagLast
		}
		stamp(out, seq, flags)
		if err := down.send(out); err != nil {
			return st, fmt.Errorf("send ping %d: %w", seq, err)
		}
		n, err := up.recv(in)
		rtt := time.Since(now)
		if err != nil {
			return st, fmt.Errorf("receive echo %d: %w", seq, err)
		}
		got, whole, err := verify(in[:n], p.size, seq)
		if err != nil {
			return st, fmt.Errorf("echo: %w", err)
		}
		if got != flags {
			return st, fmt.Errorf("echo %d: flags %#x, sent %#x: %w", seq, got, flags, ErrCorrupt)
		}
		if whole {
			st.verified++
		}
		if marked {
			_ = st.hist.RecordValue(max(rtt.Nanoseconds(), 1))
		}
		if flags == flagLast {
			st.elapsed, st.cpu = time.Since(t0), processCPU()-cpu0
			st.msgs = int64(seq-markSeq) + 1
			return st, nil
		}
	}
}

// pong receives pings on down, verifies them and echoes each on up, until
// the one flagged last. Its CPU window runs from the mark to the last echo.
func pong(down, up endpoint, size int) (sideStats, error) {
	buf := make([]byte, size)
	var st sideStats
	var cpu0 time.Duration
	var t0 time.Time
	var markSeq uint64
	for seq := uint64(0); ; seq++ {
		n, err := down.recv(buf)
		if err != nil {
			return st, fmt.Errorf("receive ping %d: %w", seq, err)
		}
		flags, whole, err := verify(buf[:n], size, seq)
		if err != nil {
			return st, fmt.Errorf("ping: %w", err)
		}
		if whole {
			st.verified++
		}
		if flags&flagMark != 0 {
			markSeq = seq
			t0, cpu0 = time.Now(), processCPU()
		}
		if err := up.send(buf[:n]); err != nil {
			return st, fmt.Errorf("send echo %d: %w", seq, err)
		}
		if flags&flagLast != 0 {
			st.elapsed, st.cpu = time.Since(t0), processCPU()-cpu0
			st.msgs = int64(seq-markSeq) + 1
			return st, nil
		}
	}
}
