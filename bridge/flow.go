package bridge

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// Flow control over core NATS (Config.NoFlowControl turns it off).
//
// Core NATS has no back-pressure: a subscriber that falls more than its
// pending limits behind loses messages in its own client ("slow
// consumer"). So the bridges give each other credit. The out side marks
// every flowMarkEvery-th NATS message it publishes with a FlowHeader
// "<frames> <bytes>": its own count of NATS messages and payload bytes
// published so far, that one included. An in side that has handled
// (delivered into its channel) a marked message reports the mark back on
// the subject FlowSubjectPrefix+<origin>, with its own pending limits:
//
//	<in id> <frames> <bytes> <max pending msgs> <max pending bytes> <pending msgs>
//
// and repeats its latest report every flowReportEvery while it is
// subscribed, so an in side stuck behind a full channel still holds the
// out side back. Before each publish the out side waits while any in side
// heard from within flowStale has more than half its pending limits
// (messages or bytes) published to it and not yet handled. An in side that
// goes quiet for flowStale (gone, or partitioned) no longer holds it back;
// one that joins mid-stream is paced from its first report on (a round
// trip after its first message).
// The price: the slowest in side paces every out side that sends to it,
// down to the origin channel's publishers (under policy Block), as a
// subscriber of a local channel does.
//
// The out side marks every NATS message while an in side has more than a
// quarter of its limits outstanding, so the message before a wait is
// always marked and its handling ends the wait. Should the in side's
// client drop a marked message (it joined mid-burst), an in side that
// reports nothing pending while the out side has waited flowReportEvery
// since its flush is taken to have caught up.
const (
	FlowHeader        = "Shmkit-Flow"
	FlowSubjectPrefix = "_SHMKIT.flow."
	flowMarkEvery     = 64
	flowReportEvery   = 250 * time.Millisecond
	flowStale         = 2 * time.Second
	flowPoll          = 20 * time.Millisecond
	// flowProbeFrames and flowProbeWait: at start-up, before any in side
	// has reported, the out side publishes this many NATS messages (or
	// half its own MaxPending, if fewer: in sides are assumed to be
	// configured alike until they report their limits) and
	// then waits this long at most for a first report (an in side reports
	// on the first message it handles), so a burst at start cannot overrun
	// an in side that has not reported yet. Without a report by then it
	// goes on without credit until one comes.
	flowProbeFrames = 256
	flowProbeWait   = 250 * time.Millisecond
	// flowForget: an in side stops reporting for an origin it has had no
	// marked message from for this long (that out side is gone, or this in
	// side has been stuck that long: then the out side stops waiting).
	flowForget = time.Minute
)

// flowCredit is one in side's latest report.
type flowCredit struct {
	frames, bytes       uint64
	maxFrames, maxBytes uint64
	pending             uint64
	seen                time.Time
}

// flowOut is the out side's view of the in sides' credit.
type flowOut struct {
	b      *Bridge
	sub    *nats.Subscription
	mu     sync.Mutex
	in     map[string]*flowCredit
	signal chan struct{}
	frames uint64 // NATS messages published
	bytes  uint64 // their payload bytes
	hv     []string
	heard  bool // some in side has reported
	probed bool // the start-up wait for a first report is over
	// waitFrom is when the current wait flushed (zero when not waiting).
	waitFrom time.Time
}

func (b *Bridge) startFlowOut() *flowOut {
	if b.cfg.NoFlowControl || b.cfg.Stream != "" {
		return nil
	}
	f := &flowOut{b: b, in: map[string]*flowCredit{}, signal: make(chan struct{}, 1), hv: []string{""}}
	sub, err := b.nc.Subscribe(FlowSubjectPrefix+b.origin, func(m *nats.Msg) {
		id, c, ok := parseFlowReport(string(m.Data))
		if !ok {
			return
		}
		c.seen = time.Now()
		f.mu.Lock()
		if !f.waitFrom.IsZero() && c.pending == 0 && c.seen.Sub(f.waitFrom) >= flowReportEvery {
			// Everything was flushed to the server that long ago and
			// nothing waits in that in side: whatever it has not
			// credited was dropped, not queued.
			c.frames, c.bytes = f.frames, f.bytes
		}
		f.in[id] = &c
		f.heard = true
		f.mu.Unlock()
		select {
		case f.signal <- struct{}{}:
		default:
		}
	})
	if err != nil {
		b.noteErr(err)
		return nil
	}
	f.sub = sub
	return f
}

func (f *flowOut) stop() {
	if f != nil && f.sub != nil {
		_ = f.sub.Unsubscribe()
	}
}

// parseFlowReport decodes an in side's report; it comes from the network,
// so anything malformed is ignored.
func parseFlowReport(s string) (string, flowCredit, bool) {
	fs := strings.Fields(s)
	if len(fs) != 6 || len(fs[0]) > 64 {
		return "", flowCredit{}, false
	}
	var v [5]uint64
	for i := range v {
		n, err := strconv.ParseUint(fs[i+1], 10, 64)
		if err != nil {
			return "", flowCredit{}, false
		}
		v[i] = n
	}
	if v[2] == 0 || v[3] == 0 {
		return "", flowCredit{}, false
	}
	return fs[0], flowCredit{frames: v[0], bytes: v[1], maxFrames: v[2], maxBytes: v[3], pending: v[4]}, true
}

// behind reports whether some in side heard from lately has more than half
// its limits outstanding, forgetting the ones gone quiet.
func (f *flowOut) behind(now time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.heard && !f.probed && f.frames >= min(flowProbeFrames, uint64(f.b.cfg.MaxPending/2)) {
		return true // start-up: wait (flowProbeWait at most) for a first report
	}
	for id, c := range f.in {
		if now.Sub(c.seen) > flowStale {
			delete(f.in, id)
			continue
		}
		if f.frames > c.frames && f.frames-c.frames > c.maxFrames/2 ||
			f.bytes > c.bytes && f.bytes-c.bytes > c.maxBytes/2 {
			return true
		}
	}
	return false
}

// wait blocks while an in side is too far behind (see behind), flushing
// what the client buffered so the in side can catch up.
func (f *flowOut) wait(ctx context.Context) error {
	if f == nil || !f.behind(time.Now()) {
		return nil
	}
	f.b.c.outFlowWaits.Add(1)
	start := time.Now()
	_ = f.b.nc.Flush()
	f.mu.Lock()
	f.waitFrom = time.Now()
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.waitFrom = time.Time{}
		f.mu.Unlock()
		f.b.c.outFlowWaitNs.Add(uint64(time.Since(start)))
	}()
	t := time.NewTimer(flowPoll)
	defer t.Stop()
	probe := time.Now().Add(flowProbeWait)
	for f.behind(time.Now()) {
		if time.Now().After(probe) {
			f.mu.Lock()
			f.probed = true // no in side reports: none gives credit
			f.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-f.signal:
		case <-t.C:
			t.Reset(flowPoll)
		}
		if f.b.nc.IsClosed() {
			return nil
		}
	}
	return nil
}

// mark counts a NATS message about to be published and sets its
// FlowHeader on every flowMarkEvery-th, and on every one while an in side
// has more than a quarter of its limits outstanding (unmark removes it
// after).
func (f *flowOut) mark(msg *nats.Msg, n int) bool {
	if f == nil {
		return false
	}
	f.mu.Lock()
	f.frames++
	f.bytes += uint64(n)
	fr, by := f.frames, f.bytes
	near := false
	for _, c := range f.in {
		near = near || fr > c.frames && fr-c.frames > c.maxFrames/4 || by > c.bytes && by-c.bytes > c.maxBytes/4
	}
	f.mu.Unlock()
	if fr%flowMarkEvery != 1 && !near {
		return false
	}
	f.hv[0] = strconv.FormatUint(fr, 10) + " " + strconv.FormatUint(by, 10)
	msg.Header[FlowHeader] = f.hv
	return true
}

func unmark(msg *nats.Msg) { delete(msg.Header, FlowHeader) }

// flowIn is the in side's reporter: the latest mark handled per origin.
type flowIn struct {
	b     *Bridge
	sub   *nats.Subscription // set once subscribed
	mu    sync.Mutex
	marks map[string]flowMark
}

type flowMark struct {
	report string // without the pending count
	seen   time.Time
}

// report is the message for mark m, with the messages waiting in the
// client now.
func (f *flowIn) report(m flowMark) []byte {
	pending := 0
	f.mu.Lock()
	sub := f.sub
	f.mu.Unlock()
	if sub != nil {
		pending, _, _ = sub.Pending()
	}
	return []byte(m.report + " " + strconv.Itoa(max(pending, 0)))
}

func (f *flowIn) setSub(s *nats.Subscription) {
	if f != nil {
		f.mu.Lock()
		f.sub = s
		f.mu.Unlock()
	}
}

func (b *Bridge) startFlowIn(ctx context.Context) *flowIn {
	if b.cfg.NoFlowControl {
		return nil
	}
	f := &flowIn{b: b, marks: map[string]flowMark{}}
	go func() {
		t := time.NewTicker(flowReportEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				f.mu.Lock()
				marks := make(map[string]flowMark, len(f.marks))
				for origin, m := range f.marks {
					if now.Sub(m.seen) > flowForget {
						delete(f.marks, origin) // that out side is gone
						continue
					}
					marks[origin] = m
				}
				f.mu.Unlock()
				for origin, m := range marks {
					_ = b.nc.Publish(FlowSubjectPrefix+origin, f.report(m))
				}
			}
		}
	}()
	return f
}

// handled records that the in side has handled m from origin; when m
// carries a mark, the mark is reported at once.
func (f *flowIn) handled(origin string, m *nats.Msg) {
	if f == nil || origin == "" || len(origin) > 64 || strings.ContainsAny(origin, ".*> \t\r\n") {
		return
	}
	v := m.Header[FlowHeader]
	if len(v) == 0 {
		return
	}
	fs := strings.Fields(v[0])
	if len(fs) != 2 {
		return
	}
	if _, err := strconv.ParseUint(fs[0], 10, 64); err != nil {
		return
	}
	if _, err := strconv.ParseUint(fs[1], 10, 64); err != nil {
		return
	}
	report := f.b.origin + " " + fs[0] + " " + fs[1] + " " + strconv.Itoa(f.b.cfg.MaxPending) + " " +
		strconv.Itoa(f.b.cfg.MaxPendingBytes)
	fm := flowMark{report: report, seen: time.Now()}
	f.mu.Lock()
	f.marks[origin] = fm
	f.mu.Unlock()
	_ = f.b.nc.Publish(FlowSubjectPrefix+origin, f.report(fm))
}
