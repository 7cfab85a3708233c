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

// The four roles of a cell. Each is a step function over an outEnd and/or
// an inEnd, so that the cost of the harness itself can be measured by
// running the roles of both sides in one loop over a no-op transport
// (harnessCost): the same code, minus the transport.

// pace is what a sending role needs to know about the measured window.
type pace struct {
	size     int
	warmup   time.Duration
	duration time.Duration
	minMsgs  int
	verify   bool    // checksum every message
	rate     float64 // messages per second, 0: as fast as possible
	id       int     // sender id stamped into the head word
}

// sideStats is what one side measured over the measured window.
type sideStats struct {
	msgs    int64 // measured messages (round trips)
	elapsed time.Duration
	cpu     time.Duration
	summed  int64 // messages checksummed (warm-up included)
	hist    *hdrhistogram.Histogram
}

// clockEvery is how many messages a stream sender sends between two clock
// reads: rarely for small messages, whose cost is near the clock's.
func clockEvery(size int) uint64 {
	switch {
	case size < 1<<10:
		return 64
	case size < 64<<10:
		return 8
	}
	return 1
}

// sampled reports whether message seq is checksummed.
func sampled(seq uint64, all bool) bool { return all || seq%SampleEvery == 0 }

// producer sends a stream: warm-up messages for warmup, then a message
// flagged mark, then messages for duration (and at least minMsgs), the
// last one flagged last.
type producer struct {
	out      outEnd
	p        pace
	payload  []byte // the template of an in-place message's payload
	every    uint64
	interval int64 // ns between messages at a fixed rate
	base     int64 // when message baseSeq was due (fixed rate)
	baseSeq  uint64
	seq      uint64
	start    int64
	t0       int64
	cpu0     time.Duration
	markSeq  uint64
	marked   bool
	st       sideStats
}

func newProducer(out outEnd, p pace) *producer {
	pr := &producer{out: out, p: p, every: clockEvery(p.size), start: nanotime()}
	if p.rate > 0 {
		pr.interval = int64(1e9 / p.rate)
		pr.every = 1
		pr.base = pr.start
	}
	if out.inPlace() {
		pr.payload = make([]byte, p.size)
		fillPayload(pr.payload)
	}
	return pr
}

// step sends one message; done reports the last one was sent.
func (pr *producer) step() (done bool, err error) {
	seq := pr.seq
	var flags uint64
	var t int64
	if pr.interval > 0 {
		// Fixed rate: message seq is due at base + (seq-baseSeq)*interval;
		// wait for that time, and stamp it, not the time it actually left,
		// so a late message counts its lateness (no coordinated omission).
		// The schedule restarts at the mark, so a stall of the warm-up
		// (a peer still starting) is not carried into the measurement.
		t = pr.base + int64(seq-pr.baseSeq)*pr.interval
		for nanotime() < t {
		}
	}
	if seq%pr.every == 0 {
		now := nanotime()
		switch {
		case !pr.marked && now-pr.start >= int64(pr.p.warmup):
			flags = flagMark
			pr.marked, pr.markSeq = true, seq
			pr.cpu0, pr.t0 = processCPU(), nanotime()
			if pr.interval > 0 {
				pr.base, pr.baseSeq = pr.t0, seq
				t = pr.base
			}
		case pr.marked && now-pr.t0 >= int64(pr.p.duration) && seq-pr.markSeq >= uint64(pr.p.minMsgs):
			flags = flagLast
		}
	}
	buf, err := pr.out.buf(pr.p.size)
	if err != nil {
		return false, fmt.Errorf("reserve message %d: %w", seq, err)
	}
	sum := sampled(seq, pr.p.verify)
	if sum {
		pr.st.summed++
		if pr.payload != nil {
			copyChunked(buf, pr.payload)
		}
	}
	stamp(buf, headWord(seq, pr.p.id, flags), t, sum)
	if err := pr.out.send(pr.p.size); err != nil {
		return false, fmt.Errorf("send message %d: %w", seq, err)
	}
	pr.seq++
	if flags == flagLast {
		if f, ok := pr.out.(flusher); ok {
			if err := f.flush(); err != nil {
				return false, fmt.Errorf("flush after message %d: %w", seq, err)
			}
		}
		pr.st.msgs = int64(seq - pr.markSeq)
		pr.st.elapsed = time.Duration(nanotime() - pr.t0)
		pr.st.cpu = processCPU() - pr.cpu0
		return true, nil
	}
	return false, nil
}

// consumer receives and verifies a stream until the message flagged last.
// Its window runs from the mark to the last message, so it counts
// last-mark messages.
type consumer struct {
	in      inEnd
	size    int
	id      int
	verify  bool
	lat     *samples // one-way latency (fixed-rate stream)
	seq     uint64
	t0      int64
	cpu0    time.Duration
	markSeq uint64
	marked  bool
	st      sideStats
}

func newConsumer(in inEnd, p pace) *consumer {
	c := &consumer{in: in, size: p.size, id: p.id, verify: p.verify}
	if p.rate > 0 {
		c.lat = newSamples(tickClock{nsPerT: 1})
	}
	return c
}

func (c *consumer) step() (done bool, err error) {
	seq := c.seq
	msg, err := c.in.next()
	if err != nil {
		return false, fmt.Errorf("receive message %d: %w", seq, err)
	}
	sum := sampled(seq, c.verify)
	w, err := verify(msg, c.size, c.id, seq, sum)
	if err != nil {
		return false, err
	}
	if c.lat != nil && c.marked {
		c.lat.add(nanotime() - sendTime(msg))
	}
	if err := c.in.done(); err != nil {
		return false, fmt.Errorf("release message %d: %w", seq, err)
	}
	if sum {
		c.st.summed++
	}
	c.seq++
	if w&flagsMask == 0 {
		return false, nil
	}
	if w&flagMark != 0 {
		if c.marked {
			return false, fmt.Errorf("%w: message %d: second mark", ErrCorrupt, seq)
		}
		c.marked, c.markSeq = true, seq
		c.t0, c.cpu0 = nanotime(), processCPU()
	}
	if w&flagLast != 0 {
		if !c.marked {
			return false, fmt.Errorf("%w: message %d: last before mark", ErrCorrupt, seq)
		}
		c.st.elapsed = time.Duration(nanotime() - c.t0)
		c.st.cpu = processCPU() - c.cpu0
		c.st.msgs = int64(seq - c.markSeq)
		if c.lat != nil {
			c.st.hist = c.lat.hist()
		}
		return true, nil
	}
	return false, nil
}

// pinger sends a message, waits for its echo, verifies it and records
// the round trip, timed with two reads of the latency clock around send
// and receive; the clock read that ends a round trip also decides the
// measured window, so a round trip costs two clock reads in all.
type pinger struct {
	out      outEnd
	in       inEnd
	p        pace
	payload  []byte
	lat      *samples
	clk      tickClock
	seq      uint64
	warmupT  int64 // the warm-up and the duration in ticks
	durT     int64
	startT   int64 // ticks at the start, at the mark
	markT    int64
	t0       int64 // nanotime at the mark
	cpu0     time.Duration
	markSeq  uint64
	marked   bool
	flags    uint64
	sent     int64 // ticks at the send of the ping in flight
	received int64 // ticks at the receipt of the last echo
	st       sideStats
}

func newPinger(out outEnd, in inEnd, p pace) *pinger {
	clk := latencyClock()
	pg := &pinger{out: out, in: in, p: p, clk: clk, lat: newSamples(clk)}
	pg.warmupT = int64(float64(p.warmup) / clk.nsPerT)
	pg.durT = int64(float64(p.duration) / clk.nsPerT)
	pg.startT = clk.tick()
	pg.received = pg.startT
	if out.inPlace() {
		pg.payload = make([]byte, p.size)
		fillPayload(pg.payload)
	}
	return pg
}

// ping sends the next ping.
func (pg *pinger) ping() error {
	seq := pg.seq
	pg.flags = 0
	now := pg.received
	switch {
	case !pg.marked && now-pg.startT >= pg.warmupT:
		pg.flags = flagMark
		pg.marked, pg.markSeq = true, seq
		pg.cpu0 = processCPU()
		pg.t0 = nanotime()
		pg.markT = pg.clk.tick()
	case pg.marked && now-pg.markT >= pg.durT && seq-pg.markSeq >= uint64(pg.p.minMsgs):
		pg.flags = flagLast
	}
	buf, err := pg.out.buf(pg.p.size)
	if err != nil {
		return fmt.Errorf("reserve ping %d: %w", seq, err)
	}
	sum := sampled(seq, pg.p.verify)
	if sum && pg.payload != nil {
		copyChunked(buf, pg.payload)
	}
	stamp(buf, headWord(seq, pg.p.id, pg.flags), 0, sum)
	pg.sent = pg.clk.tick()
	if err := pg.out.send(pg.p.size); err != nil {
		return fmt.Errorf("send ping %d: %w", seq, err)
	}
	return nil
}

// pong takes the echo of the ping in flight; done reports the last one.
func (pg *pinger) pong() (done bool, err error) {
	seq := pg.seq
	msg, err := pg.in.next()
	pg.received = pg.clk.tick()
	rtt := pg.received - pg.sent
	if err != nil {
		return false, fmt.Errorf("receive echo %d: %w", seq, err)
	}
	sum := sampled(seq, pg.p.verify)
	w, err := verify(msg, pg.p.size, pg.p.id, seq, sum)
	if err != nil {
		return false, fmt.Errorf("echo: %w", err)
	}
	if err := pg.in.done(); err != nil {
		return false, fmt.Errorf("release echo %d: %w", seq, err)
	}
	if w&flagsMask != pg.flags {
		return false, fmt.Errorf("%w: echo %d: flags %#x, sent %#x", ErrCorrupt, seq, w&flagsMask, pg.flags)
	}
	if sum {
		pg.st.summed++
	}
	if pg.marked {
		pg.lat.add(rtt)
	}
	pg.seq++
	if pg.flags == flagLast {
		pg.st.elapsed = time.Duration(nanotime() - pg.t0)
		pg.st.cpu = processCPU() - pg.cpu0
		pg.st.msgs = int64(seq-pg.markSeq) + 1
		pg.st.hist = pg.lat.hist()
		return true, nil
	}
	return false, nil
}

func (pg *pinger) step() (bool, error) {
	if err := pg.ping(); err != nil {
		return false, err
	}
	return pg.pong()
}

// echoer receives pings, verifies them and sends each back, until the one
// flagged last. Its CPU window runs from the mark to the last echo.
type echoer struct {
	in      inEnd
	out     outEnd
	p       pace
	seq     uint64
	t0      int64
	cpu0    time.Duration
	markSeq uint64
	st      sideStats
}

func newEchoer(in inEnd, out outEnd, p pace) *echoer { return &echoer{in: in, out: out, p: p} }

// echo sends msg back and hands it to the transport: a copying sender sends
// straight from the received bytes (one copy, as any echo server), a
// zero-copy one gets them copied into its slot.
func (e *echoer) echo(msg []byte) error {
	if co, ok := e.out.(*copyOut); ok {
		if err := co.s.write(msg); err != nil {
			return err
		}
		return e.in.done()
	}
	buf, err := e.out.buf(len(msg))
	if err != nil {
		return err
	}
	if len(buf) > 0 && &buf[0] != &msg[0] { // the no-op transport echoes in place
		copyChunked(buf, msg)
	}
	if err := e.in.done(); err != nil {
		return err
	}
	return e.out.send(len(msg))
}

func (e *echoer) step() (done bool, err error) {
	seq := e.seq
	msg, err := e.in.next()
	if err != nil {
		return false, fmt.Errorf("receive ping %d: %w", seq, err)
	}
	sum := sampled(seq, e.p.verify)
	w, err := verify(msg, e.p.size, e.p.id, seq, sum)
	if err != nil {
		return false, fmt.Errorf("ping: %w", err)
	}
	if sum {
		e.st.summed++
	}
	if w&flagMark != 0 {
		e.markSeq = seq
		e.t0, e.cpu0 = nanotime(), processCPU()
	}
	if err := e.echo(msg); err != nil {
		return false, fmt.Errorf("echo %d: %w", seq, err)
	}
	e.seq++
	if w&flagLast != 0 {
		e.st.elapsed = time.Duration(nanotime() - e.t0)
		e.st.cpu = processCPU() - e.cpu0
		e.st.msgs = int64(seq-e.markSeq) + 1
		return true, nil
	}
	return false, nil
}

// stepper is a role.
type stepper interface{ step() (bool, error) }

// runRole steps r until it is done or fails.
func runRole(r stepper) error {
	for {
		done, err := r.step()
		if done || err != nil {
			return err
		}
	}
}
