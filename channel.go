package shmkit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shmkit/shmkit/futex"
	"github.com/shmkit/shmkit/ring"
	"github.com/shmkit/shmkit/segment"
)

// Channel is one process's handle on a channel: a segment holding the
// channel header, the participant table, the data path (the publishers'
// logs, or the work queue's ring), the chunk pool and the tap ring.
// Create makes one, Open joins one. A Channel is safe for concurrent use;
// its publishers and subscribers are created from it and closed with it. Every handle occupies one participant slot (MaxProcesses of them).
type Channel struct {
	seg     *segment.Segment
	name    string
	backend Backend
	keep    bool
	cfg     Config
	hdr     []byte
	parts   []byte
	wq      *ring.MPMC  // work queue: the queue (workqueue.go)
	wqMem   []byte      // its region
	wqView  []byte      // the region mapped read-only (nil where the backend cannot)
	logs    []*ring.Log // pub/sub: the publishers' logs (log.go)
	pool    *pool
	tap     *tapRing // nil: no tap region, or taps disabled
	tname   []byte   // the type-name region (typed.go); nil in a channel from before it
	waiter  futex.Waiter

	conn io.Closer // private mode: the control connection, closed last

	guard bool // another uid may truncate the segment: calls guard against faults (fault.go)

	self      int    // this handle's participant slot
	selfState uint64 // its state word
	joined    bool   // the handle has held its slot: only then may it remove the name

	mu        sync.Mutex
	closed    bool
	endpoints map[closer]struct{}
	closing   atomic.Bool // Close has begun: calls fail with ErrClosed, waits end
	// The shards are written on every call, the fields around them read on
	// every call: 64 bytes of padding on each side keep any shard off their
	// cache lines (the struct itself is not 64-byte aligned; without the
	// padding shard 0 shared a line with closing, which every call loads).
	_        [64]byte
	inflight [inflightShards]inflightShard // calls inside the mapping right now
	_        [64]byte
	lastScan atomic.Int64 // unix ns of the last liveness scan
	scanMu   sync.Mutex
	pids     pidWatch
}

type closer interface{ closeInternal() error }

// The count of calls inside the mapping is split over cache lines by the
// caller's participant slot: one shared counter was a cache line that a
// publisher and its subscriber wrote alternately on every call. Close
// waits until every shard is zero (see inflightCount).
const inflightShards = 16

type inflightShard struct {
	n atomic.Int64
	_ [56]byte
}

// enter registers a call that touches the mapping; Close waits until every
// such call has left before it unmaps. It fails once Close has begun.
func (ch *Channel) enter() error { return ch.enterAt(0) }

func (ch *Channel) exit() { ch.exitAt(0) }

// enterAt is enter on the shard of participant slot i (exitAt(i) ends it).
// Ordering: the increment and the load of closing are sequentially
// consistent, as are Close's store of closing and its loads of the
// shards, so either this call sees closing and backs out, or Close sees
// the increment and waits (store-buffer pattern, per shard).
func (ch *Channel) enterAt(i int) error {
	c := &ch.inflight[i%inflightShards].n
	c.Add(1)
	if ch.closing.Load() {
		c.Add(-1)
		return ErrClosed
	}
	return nil
}

func (ch *Channel) exitAt(i int) { ch.inflight[i%inflightShards].n.Add(-1) }

// inflightCount returns how many calls are inside the mapping. Once
// closing is set, a call that Close missed in one shard has seen closing
// and does not touch the mapping, so a pass that finds every shard zero
// means none is inside.
func (ch *Channel) inflightCount() int64 {
	var n int64
	for i := range ch.inflight {
		n += ch.inflight[i].n.Load()
	}
	return n
}

// Option tunes Open and Create.
type Option func(*options)

type options struct {
	force   bool // Remove: even while live processes hold the channel
	backend Backend
	expect  *Config
	waiter  *futex.Waiter
	trust   trust // WithOwner, WithGroup (config.go)
}

// WithBackend says which backend holds the named channel Open joins
// (default POSIX).
func WithBackend(b Backend) Option { return func(o *options) { o.backend = b } }

// WithExpect makes Open compare the channel with c: every non-zero field of
// c must equal the channel's (Pattern, MaxMessage, RingDepth, the limits,
// Policy); otherwise Open fails with ErrMismatch.
func WithExpect(c Config) Option { return func(o *options) { o.expect = &c } }

// WithWaiter sets how blocking calls wait (default: spin briefly, then
// park on a futex).
func WithWaiter(w futex.Waiter) Option { return func(o *options) { o.waiter = &w } }

func buildOptions(opts []Option) options {
	o := options{backend: POSIX}
	for _, f := range opts {
		f(&o)
	}
	return o
}

// segmentSize is the size Create asks of segment for c: the regions, their
// alignment and room for the segment's own header and table of contents.
func segmentSize(c Config) (int64, error) {
	ps, err := poolSize(c)
	if err != nil {
		return 0, err
	}
	n := int64(hdrSize) + int64(c.participants()*entrySize) + int64(ringsRegionSize(c)) + int64(ps) +
		int64(tapRegionSize(c.tapSlots(), c.TapSnap))
	return n + 6*4096 + 64<<10, nil
}

// Create makes channel name with configuration cfg and joins it. The
// returned Channel is an ordinary participant: the channel lives until the
// last participant leaves (then the name is removed, unless cfg.Keep), not
// until its creator does.
//
// A name taken by an abandoned channel — not kept, and every participant
// and tap of it dead (killed, say), judged by pid and process start time —
// is taken over: the corpse is removed and a new channel made, so a
// service restarted after kill -9 starts without `shmctl gc`. Otherwise
// Create fails with ErrExist, naming the live processes that hold the
// channel or saying what else holds the name. OpenOrCreate joins a live
// channel instead.
func Create(name string, cfg Config, opts ...Option) (*Channel, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	o := buildOptions(opts)
	size, err := segmentSize(cfg)
	if err != nil {
		return nil, err
	}
	so, err := o.trust.segmentOptions(&cfg)
	if err != nil {
		return nil, err
	}
	seg, err := segment.Create(cfg.Backend, name, size, so)
	if errors.Is(err, segment.ErrExist) {
		if rerr := reclaim(cfg.Backend, name, so); rerr != nil {
			return nil, fmt.Errorf("create channel %q: %w", name, rerr)
		}
		seg, err = segment.Create(cfg.Backend, name, size, so)
		if errors.Is(err, segment.ErrExist) { // made again meanwhile, by another restarting process
			return nil, fmt.Errorf("%w: create channel %q: %w", ErrExist, name, err)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("create channel %q: %w", name, err)
	}
	ch := &Channel{seg: seg, name: name, backend: cfg.Backend, keep: cfg.Keep, cfg: cfg, guard: seg.OthersMayTruncate()}
	if o.waiter != nil {
		ch.waiter = *o.waiter
	}
	fail := func(err error) (*Channel, error) {
		err = fmt.Errorf("create channel %q: %w", name, err)
		if cfg.Backend != Memfd {
			err = errors.Join(err, seg.RemoveName()) // only what this call made
		}
		return nil, errors.Join(err, seg.Close())
	}
	ps, _ := poolSize(cfg)
	regions := []struct {
		name  string
		kind  uint32
		size  int
		align int64
	}{
		{regionHeader, kindChan, hdrSize, 64},
		{regionParts, kindParts, cfg.participants() * entrySize, 64},
		{regionRings, ringsRegionKind(cfg), ringsRegionSize(cfg), 4096},
		{regionPool, kindPool, ps, 4096},
		{regionTap, kindTap, tapRegionSize(cfg.tapSlots(), cfg.TapSnap), 64},
		{regionTypeName, kindTypeName, typeNameSize, 64},
	}
	if noTapRegion.Load() {
		regions = regions[:4]
	}
	mems := make([][]byte, len(regions))
	for i, r := range regions {
		reg, err := seg.AddRegion(r.name, r.kind, int64(r.size), r.align)
		if err != nil {
			return fail(err)
		}
		if mems[i], err = seg.Bytes(reg.Offset, reg.Length); err != nil {
			return fail(err)
		}
	}
	ch.hdr, ch.parts = mems[0], mems[1]
	if ch.pool, err = newPool(mems[3], cfg); err != nil {
		return fail(err)
	}
	if len(mems) > 5 {
		ch.tname = mems[5]
	}
	if len(mems) > 4 {
		initTapRegion(mems[4], cfg.tapSlots(), cfg.TapSnap)
		if cfg.tapSlots() > 0 {
			ch.tap = newTapRing(mems[4], tapGeom{slots: cfg.tapSlots(), snap: cfg.TapSnap, slotSize: tapSlotSize(cfg.TapSnap)})
		}
	}
	if err := ch.setupRings(mems[2], true); err != nil {
		return fail(err)
	}
	// The header last, the magic last of all: an Open that sees the magic
	// sees everything. The creator joins before it publishes the magic, so
	// a published channel always has a live participant until its creator
	// leaves or dies: a restarting process that judges the name abandoned
	// (reclaim) never removes a channel its creator has just finished.
	hb := encodeHeader(cfg, uint64(ps))
	copy(ch.hdr[4:], hb[4:])
	if err := ch.join(); err != nil {
		return fail(err)
	}
	u32(ch.hdr, hdrMagic).Store(chanMagic)
	return ch, nil
}

// Open joins the existing channel name. It fails with ErrNotExist when
// there is none; a channel that another process is creating right now is
// waited for, up to OpenWait (OpenContext waits longer, and also for a
// channel that does not exist yet). It validates the channel header
// (ErrBadMagic: the name holds something that is no channel; ErrVersion,
// ErrCorrupt) and the regions, and compares the configuration with
// WithExpect's (ErrMismatch).
func Open(name string, opts ...Option) (*Channel, error) {
	ctx, cancel := context.WithTimeout(context.Background(), OpenWait)
	defer cancel()
	return openWait(ctx, name, false, opts)
}

// OpenFile joins a memfd channel from its descriptor (Channel.File of the
// creator, passed with ExtraFiles or SCM_RIGHTS). The descriptor stays the
// caller's.
func OpenFile(f *os.File, opts ...Option) (*Channel, error) {
	o := buildOptions(opts)
	o.backend = Memfd
	seg, err := segment.OpenMemfd(f, nil)
	if err != nil {
		return nil, fmt.Errorf("open memfd channel: %w", err)
	}
	ch, err := attach(seg, "", o)
	if err != nil {
		return nil, fmt.Errorf("open memfd channel: %w", err)
	}
	return ch, nil
}

// noTapRegion makes Create leave out the tap region, as a shmkit from
// before taps did (tests only).
var noTapRegion atomic.Bool

var errRetry = errors.New("shmkit: channel not ready or being removed")

func attach(seg *segment.Segment, name string, o options) (*Channel, error) {
	ch := &Channel{seg: seg, name: name, backend: o.backend, guard: seg.OthersMayTruncate()}
	if o.waiter != nil {
		ch.waiter = *o.waiter
	}
	fail := func(err error) (*Channel, error) { return nil, errors.Join(err, seg.Close()) }
	region := func(name string, want int) ([]byte, error) {
		b, err := seg.RegionBytes(name)
		if err != nil {
			if errors.Is(err, segment.ErrNoRegion) {
				if beingCreated(seg) {
					return nil, fmt.Errorf("%w: no %q region yet", errRetry, name)
				}
				return nil, fmt.Errorf("%w: no %q region: %w", ErrBadMagic, name, err)
			}
			return nil, err
		}
		if len(b) < want {
			return nil, fmt.Errorf("%w: region %q of %d bytes, the header needs %d", ErrCorrupt, name, len(b), want)
		}
		return b, nil
	}
	hdr, err := region(regionHeader, hdrSize)
	if err != nil {
		return fail(err)
	}
	if u32(hdr, hdrMagic).Load() == 0 {
		if !beingCreated(seg) {
			return fail(fmt.Errorf("%w: its creator died before it published the channel header (Create and OpenOrCreate take the name over)", ErrNotExist))
		}
		return fail(fmt.Errorf("%w: header not yet published", errRetry))
	}
	snap := make([]byte, hdrImmutable+4)
	copy(snap, hdr)
	h, err := decodeHeader(snap)
	if err != nil {
		return fail(err)
	}
	if o.expect != nil {
		if err := compare(h.cfg, *o.expect); err != nil {
			return fail(err)
		}
	}
	ch.cfg = h.cfg
	ch.cfg.Backend = o.backend
	ch.keep = h.cfg.Keep
	ch.hdr = hdr
	if ch.parts, err = region(regionParts, h.cfg.participants()*entrySize); err != nil {
		return fail(err)
	}
	rmem, err := region(regionRings, ringsRegionSize(h.cfg))
	if err != nil {
		return fail(err)
	}
	pmem, err := region(regionPool, int(h.poolSize))
	if err != nil {
		return fail(err)
	}
	if ch.pool, err = attachPool(pmem); err != nil {
		return fail(err)
	}
	// The tap region: absent in a channel of a shmkit from before taps
	// (the channel works, OpenTap says ErrNoTap); present but impossible is
	// corruption.
	// The type-name region: absent in a channel from before it (typed
	// errors then give fingerprints only); too short is corruption.
	if b, err := seg.RegionBytes(regionTypeName); err == nil {
		if len(b) < typeNameSize {
			return fail(fmt.Errorf("%w: region %q of %d bytes, at least %d expected", ErrCorrupt, regionTypeName, len(b), typeNameSize))
		}
		ch.tname = b
	} else if !errors.Is(err, segment.ErrNoRegion) {
		return fail(err)
	}
	t, err := attachTapRegion(seg)
	if err != nil {
		return fail(err)
	}
	if t != nil {
		ch.cfg.TapSlots, ch.cfg.TapSnap = t.geo.slots, t.geo.snap
		if t.geo.slots == 0 {
			ch.cfg.TapSlots = -1
		} else {
			ch.tap = t
		}
	}
	if err := ch.setupRings(rmem, false); err != nil {
		return fail(err)
	}
	if err := ch.join(); err != nil {
		return fail(err)
	}
	if rm := u32(hdr, hdrRemoving); rm.Load() != 0 {
		// The remover's pid: one that died before the unlink leaves the
		// flag behind, and then the channel is not being removed at all.
		if pid := rm.Load(); pid != 0 && !processAlive(int(pid), 0) && rm.CompareAndSwap(pid, 0) {
			return ch, nil
		}
		ch.leave()
		return fail(fmt.Errorf("%w: the last participant is removing it", errRetry))
	}
	return ch, nil
}

// compare checks the non-zero fields of want against the channel's.
func compare(have, want Config) error {
	type f struct {
		name       string
		have, want int
	}
	for _, x := range []f{
		{"pattern", int(have.Pattern), int(want.Pattern)},
		{"policy", int(have.Policy), int(want.Policy)},
		{"MaxMessage", have.MaxMessage, want.MaxMessage},
		{"RingDepth", have.RingDepth, want.RingDepth},
		{"MaxPublishers", have.MaxPublishers, want.MaxPublishers},
		{"MaxSubscribers", have.MaxSubscribers, want.MaxSubscribers},
		{"MaxProcesses", have.MaxProcesses, want.MaxProcesses},
		{"MaxLoans", have.MaxLoans, want.MaxLoans},
	} {
		if x.want != 0 && x.want != x.have {
			return fmt.Errorf("%w: %s is %d, expected %d", ErrMismatch, x.name, x.have, x.want)
		}
	}
	return nil
}

// join claims this handle's participant slot.
func (ch *Channel) join() error {
	ch.endpoints = map[closer]struct{}{}
	i, w, err := ch.claim(roleHandle)
	if err != nil {
		return err
	}
	if w, err = ch.activate(i, w); err != nil {
		return err
	}
	ch.self, ch.selfState, ch.joined = i, w, true
	return nil
}

// Config returns the channel's configuration as recorded in its header.
func (ch *Channel) Config() Config { return ch.cfg }

// Name returns the channel's name ("" for a memfd channel opened from a
// descriptor).
func (ch *Channel) Name() string { return ch.name }

// File returns the memfd of a Memfd channel (nil otherwise), for ExtraFiles
// or SCM_RIGHTS; it stays owned by the Channel.
func (ch *Channel) File() *os.File { return ch.seg.File() }

// Close closes every publisher and subscriber made from ch, leaves the
// channel and unmaps it. Calls blocked in other goroutines (Receive,
// Publish, LoanContext, WaitSet.Wait) return ErrClosed first; Close waits
// for every call on ch to leave the mapping before it unmaps. The last
// participant to leave a named channel removes its name, unless
// Config.Keep. Samples and byte slices obtained through ch are invalid
// afterwards. Close is idempotent.
func (ch *Channel) Close() error {
	ch.mu.Lock()
	if ch.closed || ch.closing.Load() {
		ch.mu.Unlock()
		return nil
	}
	ch.closing.Store(true)
	ch.mu.Unlock()
	for ch.inflightCount() != 0 {
		ch.wakeAll()
		time.Sleep(100 * time.Microsecond) // calls in flight finish within one of their wait's checks
	}
	ch.mu.Lock()
	eps := make([]closer, 0, len(ch.endpoints))
	for e := range ch.endpoints {
		eps = append(eps, e)
	}
	ch.mu.Unlock()
	var errs []error
	for _, e := range eps {
		errs = append(errs, ch.faultSafe(e.closeInternal))
	}
	ch.mu.Lock()
	ch.closed = true
	ch.mu.Unlock()
	errs = append(errs, ch.faultSafe(ch.leave))
	errs = append(errs, ch.seg.Close())
	ch.pids.close()
	if ch.conn != nil {
		errs = append(errs, ch.conn.Close())
	}
	return errors.Join(errs...)
}

// leave frees this handle's slot and removes the name if it was the last.
func (ch *Channel) leave() error {
	st := u64(ch.entry(ch.self), peState)
	if !st.CompareAndSwap(ch.selfState, ch.selfState&^0xff|psFree) {
		return nil // found dead and cleaned by someone else (it was not)
	}
	return ch.maybeRemove()
}

// retire gives back the participant entry e (slot, of role), which this
// handle registered with state word w: it moves the state to cleaning (a
// liveness scan that found the owner dead may have taken it over first,
// and then it cleans instead), cleans what the handle left, frees the
// entry, wakes every waiter and removes the channel's name if this was the
// last participant.
func (ch *Channel) retire(e []byte, w uint64, slot, role int) {
	st := u64(e, peState)
	nw := w&^0xff | psCleaning
	if st.CompareAndSwap(w, nw) {
		ch.clean(slot, role, w)
		st.CompareAndSwap(nw, nw&^0xff|psFree)
	}
	ch.wakeAll()
	_ = ch.maybeRemove()
}

func (ch *Channel) isClosed() bool {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return ch.closed || ch.closing.Load()
}

func (ch *Channel) register(e closer) error {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.closed {
		return ErrClosed
	}
	ch.endpoints[e] = struct{}{}
	return nil
}

func (ch *Channel) unregister(e closer) {
	ch.mu.Lock()
	delete(ch.endpoints, e)
	ch.mu.Unlock()
}

// maybeRemove removes a named channel's segment when no participant is
// left. It announces the removal first (hdrRemoving) and then looks again,
// while a joiner claims its slot first and then looks at the flag: one of
// them sees the other (both steps are sequentially consistent atomics).
// A handle that has not joined yet never removes the channel it is joining
// (its own claim may be the one the scan that made room for it did not
// see yet).
func (ch *Channel) maybeRemove() error {
	if ch.keep || ch.backend == Memfd || ch.name == "" || !ch.joined || !ch.allFree() {
		return nil
	}
	rm := u32(ch.hdr, hdrRemoving)
	if !rm.CompareAndSwap(0, uint32(os.Getpid())) {
		return nil
	}
	if !ch.allFree() {
		rm.Store(0)
		return nil
	}
	// Unlink only what this handle mapped: the name may hold a successor
	// created after a Remove (docs/security.md, defect 3).
	if err := ch.seg.RemoveName(); err != nil && !errors.Is(err, segment.ErrNotExist) {
		return fmt.Errorf("remove channel %q: %w", ch.name, err)
	}
	return nil
}

func (ch *Channel) allFree() bool {
	for i := range ch.cfg.participants() {
		if psState(ch.state(i)) != psFree {
			return false
		}
	}
	return true
}

// setupRings makes (create) or attaches the rings region's data path: the
// publishers' logs (log.go) or the work queue's ring (workqueue.go).
func (ch *Channel) setupRings(mem []byte, create bool) error {
	if fastMarks() {
		marksFast.Store(true)
	}
	if ch.cfg.Pattern != PubSub {
		return ch.setupQueue(mem, create)
	}
	return ch.setupLogs(mem, create)
}

// ringsView maps the first n bytes of the rings region a second time,
// read-only: every payload a Subscriber returns in place (Sample.Bytes)
// is a slice of it, so a subscriber's write into one faults instead of
// changing what the other subscribers read, while this process's
// publishers, its reader lines and the cleaner's Recover write through
// the writable mapping (docs/channels.md, "Hardening"). nil where the
// segment cannot map itself twice (segment.ErrUnsupported). A POSIX or
// File segment is mapped again from its name (segment.MapReadOnly): a
// name removed meanwhile is errRetry.
func (ch *Channel) ringsView(n int) ([]byte, error) {
	r, err := ch.seg.Region(regionRings)
	if err != nil {
		return nil, err
	}
	v, err := ch.seg.MapReadOnly(r.Offset, int64(n))
	switch {
	case errors.Is(err, segment.ErrUnsupported):
		return nil, nil
	case errors.Is(err, segment.ErrNotExist):
		// The name no longer holds the segment just opened: it was
		// removed (and maybe made again) since; Open tries again.
		return nil, fmt.Errorf("%w: %w", errRetry, err)
	}
	return v, err
}
