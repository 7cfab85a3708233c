package shmkit

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/shmkit/shmkit/ring"
	"github.com/shmkit/shmkit/segment"
)

// Pattern is how a channel delivers messages.
type Pattern uint32

const (
	// PubSub delivers every message to every subscriber attached when it
	// was published, each publisher's messages in publishing order.
	PubSub Pattern = 1
	// WorkQueue delivers each message to exactly one consumer.
	WorkQueue Pattern = 2
)

func (p Pattern) String() string {
	switch p {
	case PubSub:
		return "pubsub"
	case WorkQueue:
		return "workqueue"
	}
	return fmt.Sprintf("pattern(%d)", uint32(p))
}

// Policy says what a publisher does when a subscriber's ring (or the work
// queue) is full.
type Policy uint32

const (
	// Block waits (with the publisher's context) until there is room.
	Block Policy = 1
	// DropNewest drops the message being published for that subscriber
	// and counts the drop; the publisher never waits.
	DropNewest Policy = 2
	// DropOldest discards the oldest unread message of that subscriber to
	// make room and counts the drop; the subscriber learns how many it
	// missed from Sample.Missed. The publisher never waits.
	DropOldest Policy = 3
)

func (p Policy) String() string {
	switch p {
	case Block:
		return "block"
	case DropNewest:
		return "drop-newest"
	case DropOldest:
		return "drop-oldest"
	}
	return fmt.Sprintf("policy(%d)", uint32(p))
}

// Backend chooses where a named channel lives (segment's backends).
type Backend = segment.Backend

// The backends a channel can live on.
const (
	POSIX = segment.POSIX
	SysV  = segment.SysV
	File  = segment.File
	Memfd = segment.Memfd
)

// Limits of a channel's layout.
const (
	// MaxSubscribers is the most subscribers (consumers) a channel can
	// have: a pub/sub subscriber reads every publisher's log through a
	// line of its own. A work queue's consumers are bounded by its claim
	// records too: (MaxHeld+1) per consumer and (MaxLoans+1) per producer,
	// ring.MaxClaimSlots (4096) in all: 98 consumers with the defaults,
	// 256 with MaxHeld 14.
	MaxSubscribers = 1024
	// MaxPublishersLimit is the most publishers (producers): a publisher
	// identity carries its index in 8 bits.
	MaxPublishersLimit = 255
	// MaxParticipants is the most entries of the participant table.
	MaxParticipants = 2047
	// MaxHeld is the default of Config.MaxHeld.
	MaxHeld = heldSlots
	// MaxHeldLimit is the largest Config.MaxHeld.
	MaxHeldLimit = 1 << 16
	// MaxRingDepth is the deepest ring.
	MaxRingDepth = 1 << 20
)

// Config describes a channel. Create validates it and records it in the
// channel's header; Open compares the fields a caller sets (non-zero) with
// the header and fails with ErrMismatch where they differ.
type Config struct {
	// Pattern is PubSub (the default) or WorkQueue.
	Pattern Pattern
	// MaxMessage is the largest message in bytes (default 4096).
	MaxMessage int
	// RingDepth sizes each publisher's log (room for at least RingDepth
	// records of 256 bytes and two of MaxMessage; 64 KiB by default) and is
	// the depth of a work queue's ring; a power of two (default 256).
	RingDepth int
	// MaxPublishers is the most publishers (producers) at once (default 4).
	MaxPublishers int
	// MaxSubscribers is the most subscribers (consumers) at once, at most
	// MaxSubscribers (default 8).
	MaxSubscribers int
	// MaxHeld is the most samples one subscriber may hold unreleased at
	// once (ErrTooManyHeld beyond; default MaxHeld, 40). Held samples pin
	// the subscriber's position in their publishers' logs; a work queue
	// consumer's each hold a slot of the queue (producers wait for it when
	// they come round to it).
	MaxHeld int
	// MaxProcesses is the most Channel handles attached at once
	// (default MaxPublishers+MaxSubscribers).
	MaxProcesses int
	// Policy is the back-pressure policy (default Block).
	Policy Policy
	// MaxLoans is the most samples one publisher may hold loaned (Loan,
	// LoanContext) and not yet published or discarded; one more is
	// ErrTooManyLoans (default DefaultMaxLoans, 16).
	MaxLoans int
	// ChunksPerClass is the number of pool chunks of each size class; the
	// classes are powers of two from 128 bytes up to the one that holds
	// MaxMessage plus a 64-byte message header (default
	// Config.WorstCaseChunks, 1). No message lives in the pool today:
	// pub/sub messages are in the publishers' logs, a work queue's in its
	// ring.
	ChunksPerClass int
	// Backend holds a named channel (default POSIX). Memfd channels have no
	// name; share them with Channel.File or the private mode (Listen/Dial).
	Backend Backend
	// Keep leaves a named channel's segment in place when the last
	// participant leaves; by default the last one removes it.
	Keep bool
	// LivenessInterval is how often a participant that is calling into the
	// channel or waiting in it checks that the others are alive
	// (default 100 ms). A dead participant is cleaned up within about one
	// interval of the first check that sees it.
	LivenessInterval time.Duration
	// TapSlots is the number of slots of the channel's tap ring, a power
	// of two up to MaxTapSlots (default DefaultTapSlots, 256); negative
	// disables taps (the region is still made, with no slots, so OpenTap
	// says ErrNoTap). A tap more than TapSlots messages behind loses the
	// oldest. It costs TapSlots × (24+TapSnap, rounded up to 64) bytes.
	TapSlots int
	// TapSnap is how many bytes of each message a publisher copies for
	// taps, a multiple of 8 up to MaxTapSnap (default DefaultTapSnap, 256).
	TapSnap int

	// Mode is the permission bits of a named channel's segment (default
	// 0600), set exactly whatever the umask. Write permission for others
	// (o+w) is refused (ErrConfig): anyone could truncate the segment. A
	// group-writable channel is joined by members of Group who name it
	// with WithGroup (docs/security.md).
	Mode os.FileMode
	// Group is the group of a named channel's segment: a name or a
	// decimal gid (default: the creator's). The creator must belong to it
	// unless it is root.
	Group string
}

// trust is what Open, OpenTap and Dial accept from others (WithOwner,
// WithGroup; docs/security.md).
type trust struct {
	owners []int // uids besides the caller's
	groups []int // gids whose write permission is tolerated
	err    error // a name that did not resolve, reported by Open
}

// WithOwner makes Open accept a channel whose segment is owned by user (a
// name or a decimal uid) besides the caller's own uid, and Dial accept a
// server running as user. Without it Open refuses a segment owned by
// anyone else with an error wrapping ErrUntrusted, and Dial refuses such
// a server with ErrRefused. Repeat it to name several.
func WithOwner(user string) Option {
	return func(o *options) {
		uid, err := segment.LookupUser(user)
		if err != nil {
			o.trust.err = errors.Join(o.trust.err, err)
			return
		}
		o.trust.owners = append(o.trust.owners, uid)
	}
}

// WithGroup makes Open accept a channel that members of group (a name or
// a decimal gid) may write, as Config.Group and Config.Mode make it. By
// default a segment writable by any group or by others is refused with an
// error wrapping ErrUntrusted.
func WithGroup(group string) Option {
	return func(o *options) {
		gid, err := segment.LookupGroup(group)
		if err != nil {
			o.trust.err = errors.Join(o.trust.err, err)
			return
		}
		o.trust.groups = append(o.trust.groups, gid)
	}
}

// segmentOptions is what Open and Create pass to segment for t and cfg.
func (t trust) segmentOptions(cfg *Config) (*segment.Options, error) {
	if t.err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, t.err)
	}
	so := &segment.Options{Owners: t.owners, Groups: t.groups}
	if cfg != nil {
		so.Mode, so.Group = cfg.Mode, cfg.Group
	}
	return so, nil
}

// Defaults.
const (
	DefaultMaxMessage       = 4096
	DefaultRingDepth        = 256
	DefaultMaxPublishers    = 4
	DefaultMaxSubscribers   = 8
	DefaultLivenessInterval = 100 * time.Millisecond
	DefaultMaxLoans         = 16
)

// WorstCaseChunks is the default ChunksPerClass: 1. Messages live in the
// publishers' logs (pub/sub) and in the queue's ring (work queue), not in
// the pool; the pool region is kept, one chunk per size class, for
// messages passed by reference (not yet used).
func (c Config) WorstCaseChunks() int { return 1 }

func (c Config) withDefaults() Config {
	c = c.withLimits()
	if c.ChunksPerClass == 0 {
		c.ChunksPerClass = c.WorstCaseChunks()
	}
	if c.Backend == 0 {
		c.Backend = POSIX
	}
	if c.LivenessInterval == 0 {
		c.LivenessInterval = DefaultLivenessInterval
	}
	if c.TapSlots == 0 {
		c.TapSlots = DefaultTapSlots
	}
	if c.TapSnap == 0 {
		c.TapSnap = DefaultTapSnap
	}
	return c
}

// withLimits fills in the defaults of the fields that bound how many
// messages can be in use at once.
func (c Config) withLimits() Config {
	if c.Pattern == 0 {
		c.Pattern = PubSub
	}
	if c.MaxMessage == 0 {
		c.MaxMessage = DefaultMaxMessage
	}
	if c.RingDepth == 0 {
		c.RingDepth = DefaultRingDepth
	}
	if c.MaxPublishers == 0 {
		c.MaxPublishers = DefaultMaxPublishers
	}
	if c.MaxSubscribers == 0 {
		c.MaxSubscribers = DefaultMaxSubscribers
	}
	if c.MaxProcesses == 0 {
		c.MaxProcesses = c.MaxPublishers + c.MaxSubscribers
	}
	if c.Policy == 0 {
		c.Policy = Block
	}
	if c.MaxLoans == 0 {
		c.MaxLoans = DefaultMaxLoans
	}
	if c.MaxHeld == 0 {
		c.MaxHeld = MaxHeld
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.Pattern != PubSub && c.Pattern != WorkQueue:
		return fmt.Errorf("%w: pattern %v", ErrConfig, c.Pattern)
	case c.Policy < Block || c.Policy > DropOldest:
		return fmt.Errorf("%w: policy %v", ErrConfig, c.Policy)
	case c.Pattern == WorkQueue && c.Policy == DropOldest:
		return fmt.Errorf("%w: a work queue has no per-consumer ring to drop the oldest from; use Block or DropNewest", ErrConfig)
	case c.MaxMessage < 1 || c.MaxMessage > maxMessageLimit:
		return fmt.Errorf("%w: MaxMessage %d outside [1, %d]", ErrConfig, c.MaxMessage, maxMessageLimit)
	case c.RingDepth < 2 || c.RingDepth > MaxRingDepth || c.RingDepth&(c.RingDepth-1) != 0:
		return fmt.Errorf("%w: RingDepth %d is not a power of two in [2, %d]", ErrConfig, c.RingDepth, MaxRingDepth)
	case c.MaxSubscribers < 1 || c.MaxSubscribers > MaxSubscribers:
		return fmt.Errorf("%w: MaxSubscribers %d outside [1, %d]", ErrConfig, c.MaxSubscribers, MaxSubscribers)
	case c.MaxPublishers > MaxPublishersLimit:
		return fmt.Errorf("%w: MaxPublishers %d over %d", ErrConfig, c.MaxPublishers, MaxPublishersLimit)
	case c.MaxHeld < 1 || c.MaxHeld > MaxHeldLimit:
		return fmt.Errorf("%w: MaxHeld %d outside [1, %d]", ErrConfig, c.MaxHeld, MaxHeldLimit)
	case c.Pattern == PubSub && logBytes(c) > ring.MaxLog:
		return fmt.Errorf("%w: MaxMessage %d needs publisher logs over %d bytes", ErrConfig, c.MaxMessage, ring.MaxLog)
	case c.Pattern == WorkQueue && wqClaims(c) > ring.MaxClaimSlots:
		return fmt.Errorf("%w: a work queue of %d producers with MaxLoans %d and %d consumers with MaxHeld %d needs %d claim records, over %d",
			ErrConfig, c.MaxPublishers, c.MaxLoans, c.MaxSubscribers, c.MaxHeld, wqClaims(c), ring.MaxClaimSlots)
	case c.MaxPublishers < 1 || c.MaxProcesses < 1 ||
		c.MaxPublishers+c.MaxSubscribers+c.MaxProcesses > MaxParticipants:
		return fmt.Errorf("%w: %d publishers + %d subscribers + %d processes exceed %d participants",
			ErrConfig, c.MaxPublishers, c.MaxSubscribers, c.MaxProcesses, MaxParticipants)
	case c.MaxLoans < 1 || c.MaxLoans > 1<<20:
		return fmt.Errorf("%w: MaxLoans %d outside [1, %d]", ErrConfig, c.MaxLoans, 1<<20)
	case c.Pattern == WorkQueue && wqTooBig(c) != nil:
		return fmt.Errorf("%w: work queue of %d slots of %d bytes: %w", ErrConfig, c.RingDepth, c.MaxMessage, wqTooBig(c))
	case c.ChunksPerClass < 1 || c.ChunksPerClass > 1<<24:
		return fmt.Errorf("%w: ChunksPerClass %d outside [1, %d]", ErrConfig, c.ChunksPerClass, 1<<24)
	case c.LivenessInterval < time.Millisecond:
		return fmt.Errorf("%w: LivenessInterval %v under 1ms", ErrConfig, c.LivenessInterval)
	case c.Mode&^os.ModePerm != 0 || c.Mode&0o002 != 0:
		return fmt.Errorf("%w: Mode %#o: only permission bits, and never write for others", ErrConfig, uint32(c.Mode))
	}
	return c.validateTap()
}

// validateTap checks TapSlots and TapSnap (not part of the checksummed
// header: they live in the tap region, and a header decoded without them
// leaves them 0).
func (c Config) validateTap() error {
	switch {
	case c.TapSlots == 0 && c.TapSnap == 0:
	case c.TapSlots > MaxTapSlots || c.TapSlots > 0 && c.TapSlots&(c.TapSlots-1) != 0:
		return fmt.Errorf("%w: TapSlots %d is not a power of two up to %d (or negative: no taps)", ErrConfig, c.TapSlots, MaxTapSlots)
	case c.TapSnap < 8 || c.TapSnap > MaxTapSnap || c.TapSnap%8 != 0:
		return fmt.Errorf("%w: TapSnap %d is not a multiple of 8 in [8, %d]", ErrConfig, c.TapSnap, MaxTapSnap)
	}
	return nil
}

// tapSlots is the number of tap slots to make (0: taps disabled).
func (c Config) tapSlots() int { return max(c.TapSlots, 0) }

// maxMessageLimit keeps a chunk (message plus header) within the
// allocator's 1 GiB chunk limit.
const maxMessageLimit = 1<<30 - msgHeaderSize
