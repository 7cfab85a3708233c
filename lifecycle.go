package shmkit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/shmkit/shmkit/internal/holders"
	"github.com/shmkit/shmkit/segment"
)

// Lifecycle of a named channel: open one that is being created, take over
// one whose every participant died, remove one only when nobody holds it.
//
// Who holds a channel is judged by the rules `shmctl gc` uses for a channel
// (internal/holders): a participant entry (every process that has the
// channel open has one, its handle entry) or a tap whose process runs, by
// pid and start time, so a reused pid is not taken for the dead one.

// OpenWait is how long Open waits for a channel that another process is
// creating right now (its segment exists, its channel header does not yet)
// before it reports ErrNotExist. OpenContext waits as long as its context.
const OpenWait = 2 * time.Second

// creatingFor is how young a segment without a channel header must be, with
// its creator alive, to count as a channel being created rather than
// something else under the name.
const creatingFor = 10 * time.Second

// OpenContext joins the channel name, waiting until ctx ends for it to
// exist and to be ready: a service started before the one that creates its
// channel calls it instead of polling. When ctx ends first the error wraps
// ErrNotExist and ctx.Err(). Every other error is Open's.
func OpenContext(ctx context.Context, name string, opts ...Option) (*Channel, error) {
	return openWait(ctx, name, true, opts)
}

// openWait is Open's loop. waitExist also waits while the name does not
// exist at all (OpenContext); otherwise only a channel being created, or
// being removed by its last participant, is waited for.
func openWait(ctx context.Context, name string, waitExist bool, opts []Option) (*Channel, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("open channel %q: %w", name, err)
	}
	o := buildOptions(opts)
	if o.backend == Memfd {
		return nil, fmt.Errorf("%w: a memfd channel has no name; use OpenFile", ErrConfig)
	}
	var lastErr error
	for pause := 100 * time.Microsecond; ; pause = min(2*pause, 20*time.Millisecond) {
		ch, err := openOnce(name, o)
		if err == nil {
			return ch, nil
		}
		switch {
		case errors.Is(err, errRetry):
		case waitExist && errors.Is(err, ErrNotExist):
		default:
			return nil, err
		}
		lastErr = err
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			if errors.Is(lastErr, ErrNotExist) {
				return nil, fmt.Errorf("%w (waited until %w)", lastErr, ctx.Err())
			}
			return nil, fmt.Errorf("%w: open channel %q: not ready when the wait ended (%w): %w", ErrNotExist, name, ctx.Err(), lastErr)
		case <-t.C:
		}
	}
}

// openOnce makes one attempt to join name. It returns an error wrapping
// errRetry when the channel is being created or removed right now.
func openOnce(name string, o options) (*Channel, error) {
	so, err := o.trust.segmentOptions(nil) // WithOwner, WithGroup (config.go)
	if err != nil {
		return nil, err
	}
	seg, err := segment.Open(o.backend, name, so)
	switch {
	case errors.Is(err, segment.ErrNotExist):
		return nil, fmt.Errorf("%w: open channel %q: %w", ErrNotExist, name, err)
	case errors.Is(err, segment.ErrNotReady):
		return nil, fmt.Errorf("%w: %w", errRetry, err) // its creator is writing the segment header
	case err != nil:
		return nil, fmt.Errorf("open channel %q: %w", name, err)
	}
	ch, err := attach(seg, name, o)
	if err != nil {
		return nil, fmt.Errorf("open channel %q: %w", name, err)
	}
	return ch, nil
}

// beingCreated reports whether seg, which has no channel header yet, is a
// channel that its creator is still writing: a live creator and a young
// segment. A segment that is neither is something else under the name (or
// a channel whose creator died before it finished: abandoned).
func beingCreated(seg *segment.Segment) bool {
	info := seg.Info()
	return info.CreatorAlive && time.Since(info.Created) < creatingFor
}

// OpenOrCreate joins channel name if it exists and is compatible with cfg
// (every non-zero field of cfg equals the channel's, as WithExpect checks:
// ErrMismatch otherwise), and creates it with cfg when it does not exist or
// was abandoned (every participant dead; see Create). Two processes
// starting at once end up on one channel: one creates it, the other joins.
// It is what a service that may start first, or restart after a crash,
// calls.
func OpenOrCreate(name string, cfg Config, opts ...Option) (*Channel, error) {
	o := buildOptions(opts)
	if o.backend == POSIX && cfg.Backend != 0 {
		o.backend = cfg.Backend
	}
	cfg.Backend = o.backend
	if o.expect == nil {
		want := cfg
		want.Backend = 0
		o.expect = &want
	}
	openOpts := append(slices.Clip(opts), WithBackend(o.backend), WithExpect(*o.expect))
	ctx, cancel := context.WithTimeout(context.Background(), OpenWait)
	defer cancel()
	for {
		// A corpse is removed first: a channel made with cfg serves the
		// caller better than the dead one's configuration. A live or kept
		// channel stays and is joined.
		if so, err := o.trust.segmentOptions(nil); err == nil {
			_ = reclaim(o.backend, name, so)
		}
		ch, err := openWait(ctx, name, false, openOpts)
		if err == nil || !errors.Is(err, ErrNotExist) {
			return ch, err
		}
		ch, err = Create(name, cfg, opts...)
		if err == nil || !errors.Is(err, ErrExist) {
			return ch, err
		}
		// Created meanwhile by someone else (or held): open it.
		if ctx.Err() != nil {
			return nil, err
		}
	}
}

// liveHolders returns the pids of the live processes registered in a
// channel: its participants of every role and its taps. parts is the
// participant table, tapMem the tap region (nil when none). A table entry
// that cannot be is an error: such a channel is not judged abandoned.
func liveHolders(parts []byte, cfg Config, tapMem []byte) ([]int, error) {
	var pids []int
	for i := range cfg.participants() {
		e, err := decodeEntry(parts, i, cfg)
		if err != nil {
			return pids, err
		}
		if e.State == psFree {
			continue
		}
		start := e.Start
		if e.State != psActive {
			start = 0 // a claimed entry has no start time yet; a cleaner's is not recorded
		}
		if processAlive(e.PID, start) && !slices.Contains(pids, e.PID) {
			pids = append(pids, e.PID)
		}
	}
	if tapMem != nil {
		taps, err := readTaps(tapMem)
		if err != nil {
			return pids, err
		}
		for _, t := range taps {
			if processAlive(t.PID, t.Start) && !slices.Contains(pids, t.PID) {
				pids = append(pids, t.PID)
			}
		}
	}
	return pids, nil
}

func pidsText(pids []int) string {
	s := make([]string, len(pids))
	for i, p := range pids {
		s[i] = fmt.Sprint(p)
	}
	return strings.Join(s, ", ")
}

// reclaim removes the abandoned channel name: a segment whose every
// participant and tap is dead, that is not kept (Config.Keep), or whose
// creator died before it finished the channel header. It returns nil when
// the name is free afterwards (removed by this call, or gone meanwhile),
// ErrExist naming the holders (or saying what else the name holds)
// otherwise.
//
// Two processes may judge the same corpse at once: the header's removing
// word, taken by CAS with the remover's pid, lets one of them remove it,
// and a joiner that claimed a slot meanwhile is seen by the remover's
// second look (the same hand-shake as the last participant's removal in
// maybeRemove).
func reclaim(b Backend, name string, so *segment.Options) error {
	seg, err := segment.Open(b, name, so)
	switch {
	case errors.Is(err, segment.ErrNotExist):
		return nil
	case errors.Is(err, segment.ErrNotReady):
		return fmt.Errorf("%w: %q: its creator is writing the segment", ErrExist, name)
	case err != nil:
		return fmt.Errorf("%w: %q: %w", ErrExist, name, err)
	}
	defer seg.Close()
	taken := func(format string, a ...any) error {
		return fmt.Errorf("%w: %q "+format, append([]any{ErrExist, name}, a...)...)
	}
	r, err := readRegistry(seg)
	switch {
	case errors.Is(err, errUnpublished) && beingCreated(seg):
		return taken("is being created by pid %d", seg.Info().CreatorPID)
	case errors.Is(err, errUnpublished) && r.hdr == nil:
		return taken("holds a segment that is no channel: remove it with `shmctl rm` if it is not needed")
	case errors.Is(err, errUnpublished):
		// Its creator died before it published the header: a corpse.
		if err := othersHold(seg, name); err != nil {
			return err
		}
		return removeCorpse(seg, b, name, r.hdr, nil)
	case err != nil:
		return taken("holds a channel that cannot be read (%v)", err)
	case r.cfg.Keep:
		return taken("is a kept channel (Config.Keep): join it with Open or OpenOrCreate, or remove it with Remove")
	}
	check := func() error {
		pids, err := r.holders()
		if err != nil {
			return taken("cannot be judged: %v", err)
		}
		if len(pids) > 0 {
			return fmt.Errorf("%w: channel %q is held by live process(es) %s", ErrExist, name, pidsText(pids))
		}
		return nil
	}
	if err := check(); err != nil {
		return err
	}
	if err := othersHold(seg, name); err != nil {
		return err
	}
	return removeCorpse(seg, b, name, r.hdr, check)
}

// registry is what the lifecycle reads of a channel it has not joined:
// the header region and, once the header is published, the configuration,
// the participant table and the tap region (nil when none).
type registry struct {
	hdr    []byte
	cfg    Config
	parts  []byte
	tapMem []byte
}

// errUnpublished: the segment has no channel header region (registry.hdr
// nil), or its magic is still 0.
var errUnpublished = errors.New("shmkit: no channel header published")

// readRegistry reads seg's channel header and tables, checked as Open
// checks them. A header that is not there or not yet published is
// errUnpublished; a channel that cannot be read is an error wrapping
// ErrCorrupt (or the segment's error).
func readRegistry(seg *segment.Segment) (registry, error) {
	var r registry
	hdr, err := seg.RegionBytes(regionHeader)
	switch {
	case errors.Is(err, segment.ErrNoRegion):
		return r, errUnpublished
	case err != nil:
		return r, err
	case len(hdr) < hdrSize:
		return r, fmt.Errorf("%w: channel header of %d bytes", ErrCorrupt, len(hdr))
	}
	r.hdr = hdr
	if u32(hdr, hdrMagic).Load() == 0 {
		return r, errUnpublished
	}
	snap := make([]byte, hdrImmutable+4)
	copy(snap, hdr)
	h, err := decodeHeader(snap)
	if err != nil {
		return r, err
	}
	r.cfg = h.cfg
	if r.parts, err = seg.RegionBytes(regionParts); err != nil {
		return r, err
	}
	if len(r.parts) < r.cfg.participants()*entrySize {
		return r, fmt.Errorf("%w: participant table of %d bytes", ErrCorrupt, len(r.parts))
	}
	if t, err := attachTapRegion(seg); err == nil && t != nil {
		r.tapMem = t.mem
	}
	return r, nil
}

// holders returns the pids of the live participants and taps of r.
func (r registry) holders() ([]int, error) { return liveHolders(r.parts, r.cfg, r.tapMem) }

// othersHold applies the rest of the rules `shmctl gc` uses to the channel
// seg maps, whose registered participants are all dead: a live creator, a
// process that maps the segment or has it open (a tool, a process that
// mapped it outside the channel API), a SysV attachment nobody here can
// see, or a process whose /proc this user cannot read that could access
// it, keep it. This process's own mapping (reclaim's) does not count. Off
// Linux, where /proc cannot be scanned, nothing more is known and the
// participants decide.
func othersHold(seg *segment.Segment, name string) error {
	j, err := holders.Judge(seg.Info(), nil)
	if errors.Is(err, segment.ErrUnsupported) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w: %q: cannot tell who holds it: %w", ErrExist, name, err)
	}
	others := slices.DeleteFunc(j.Holders, func(h holders.Holder) bool { return h.PID == os.Getpid() })
	switch {
	case len(others) > 0:
		return fmt.Errorf("%w: channel %q: every participant is dead, but it is held by %s", ErrExist, name, holders.Text(others))
	case j.Unseen > 0 || j.Unreadable > 0:
		return fmt.Errorf("%w: channel %q: every participant is dead, but %d attachment(s) are not visible here and %d process(es) that could map it cannot be read", ErrExist, name, j.Unseen, j.Unreadable)
	}
	return nil
}

// removeCorpse takes the removing word of the abandoned channel mapped by
// seg, looks again with check (nil: nothing to look at), and removes the
// name.
func removeCorpse(seg *segment.Segment, b Backend, name string, hdr []byte, check func() error) error {
	rm := u32(hdr, hdrRemoving)
	me := uint32(os.Getpid())
	for {
		pid := rm.Load()
		if pid == me {
			break
		}
		if pid != 0 && processAlive(int(pid), 0) {
			return fmt.Errorf("%w: %w: %q is being removed by pid %d", ErrExist, errRetry, name, pid)
		}
		if rm.CompareAndSwap(pid, me) {
			break
		}
	}
	if check != nil {
		if err := check(); err != nil {
			rm.Store(0)
			return err
		}
	}
	if err := seg.RemoveName(); err != nil && !errors.Is(err, segment.ErrNotExist) { // only what seg maps (docs/security.md, defect 3)
		rm.Store(0)
		return fmt.Errorf("%w: remove abandoned channel %q: %w", ErrExist, name, err)
	}
	return nil
}

// WithForce makes Remove delete the channel even while live processes hold
// it (they keep their mappings, and the name is free for a new channel).
func WithForce() Option { return func(o *options) { o.force = true } }

// Remove deletes the named channel. It refuses, with ErrInUse naming them,
// while live processes hold it (participants or taps), unless WithForce:
// they would go on using a channel nobody else can join. A channel whose
// every participant is dead, or a segment under the name that is no
// channel, is removed. It reports ErrNotExist when there is none.
func Remove(name string, opts ...Option) error {
	o := buildOptions(opts)
	if o.backend == Memfd {
		return fmt.Errorf("%w: a memfd channel has no name", ErrConfig)
	}
	if !o.force {
		so, err := o.trust.segmentOptions(nil)
		if err != nil {
			return err
		}
		if pids, err := holdersByName(o.backend, name, so); err != nil {
			return err
		} else if len(pids) > 0 {
			return fmt.Errorf("%w: channel %q is held by live process(es) %s (WithForce removes it anyway)", ErrInUse, name, pidsText(pids))
		}
	}
	if err := segment.Remove(o.backend, name, nil); err != nil {
		if errors.Is(err, segment.ErrNotExist) {
			return fmt.Errorf("%w: remove channel %q: %w", ErrNotExist, name, err)
		}
		return fmt.Errorf("remove channel %q: %w", name, err)
	}
	return nil
}

// holdersByName returns the live holders of channel name: nil for a
// segment that is no channel (or a channel whose creator died before it
// finished), its creator for one being created. A channel that cannot be
// judged (corrupt, unreadable) is an error: WithForce removes it.
func holdersByName(b Backend, name string, so *segment.Options) ([]int, error) {
	unjudged := func(err error) error {
		return fmt.Errorf("remove channel %q: cannot tell who holds it (WithForce removes it anyway): %w", name, err)
	}
	seg, err := segment.Open(b, name, so)
	switch {
	case errors.Is(err, segment.ErrNotExist):
		return nil, fmt.Errorf("%w: remove channel %q: %w", ErrNotExist, name, err)
	case errors.Is(err, segment.ErrBadMagic):
		return nil, nil // no shmkit segment: nothing registered in it
	case err != nil:
		return nil, unjudged(err)
	}
	defer seg.Close()
	r, err := readRegistry(seg)
	switch {
	case errors.Is(err, errUnpublished) && beingCreated(seg):
		return []int{seg.Info().CreatorPID}, nil
	case errors.Is(err, errUnpublished):
		return nil, nil // no channel, or one whose creator died mid-create
	case err != nil:
		return nil, unjudged(err)
	}
	pids, err := r.holders()
	if err != nil {
		return nil, unjudged(err)
	}
	return pids, nil
}
