package shmkit

import (
	"errors"
	"os"

	"github.com/shmkit/shmkit/internal/errs"
	"github.com/shmkit/shmkit/segment"
)

// Sentinel errors. Every error the package returns that a caller may act on
// wraps one of these (test with errors.Is); the sentinel comes first in the
// message, the detail after it, an operating-system error last.
var (
	// ErrConfig reports a Config or argument out of range (limits, policy,
	// pattern, a role the channel's pattern does not have).
	ErrConfig = errors.New("shmkit: invalid configuration")
	// ErrBadMagic reports a segment whose channel header does not start
	// with the channel magic: not a shmkit channel.
	ErrBadMagic = errors.New("shmkit: bad magic (not a channel)")
	// ErrVersion reports a channel header of another layout version.
	ErrVersion = errors.New("shmkit: unsupported channel layout version")
	// ErrMismatch reports an Open whose expectations (pattern, limits,
	// policy) differ from the channel's header.
	ErrMismatch = errors.New("shmkit: channel differs from what the caller expects")
	// ErrCorrupt reports shared state that breaks the layout's invariants:
	// a header whose checksum or sizes do not hold, a participant entry, a
	// ring slot or a message header that cannot be. The peer that wrote it
	// is broken or hostile; nothing is trusted from it.
	ErrCorrupt = errors.New("shmkit: channel corrupt")
	// ErrClosed reports a call on a closed handle (Channel, Publisher,
	// Subscriber, Sample) or a channel that is being removed. It matches
	// os.ErrClosed: errors.Is(err, os.ErrClosed) holds too.
	ErrClosed = errs.New("shmkit: closed", os.ErrClosed)
	// ErrNotExist reports that no channel of that name exists (Open,
	// Remove). It matches os.ErrNotExist; the segment's own error is
	// wrapped beside it.
	ErrNotExist = errs.New("shmkit: channel does not exist", os.ErrNotExist)
	// ErrExist reports that Create found the name taken by a channel with
	// a live participant, or by something that is no channel. It matches
	// os.ErrExist. (A name whose every participant is dead is taken over:
	// see Create.)
	ErrExist = errs.New("shmkit: channel already exists", os.ErrExist)
	// ErrInUse reports that Remove refused a channel that live processes
	// still hold (WithForce removes it anyway); the error names them.
	ErrInUse = errors.New("shmkit: channel in use")
	// ErrTooLarge reports a message longer than the channel's MaxMessage.
	ErrTooLarge = errors.New("shmkit: message too large")
	// ErrFull reports that every participant slot of the role asked for is
	// taken (MaxPublishers, MaxSubscribers, MaxProcesses).
	ErrFull = errors.New("shmkit: no free participant slot")
	// ErrNoMemory reports that the pool has no free chunk of the size a
	// Loan needs: Loan and Send report it at once; LoanContext waits for a
	// chunk instead, and when its context ends first its error wraps both
	// ctx.Err() and this, naming who holds the chunks.
	ErrNoMemory = errors.New("shmkit: pool has no free chunk of that size")
	// ErrTooManyLoans reports a Loan while the publisher already holds
	// Config.MaxLoans loaned samples (publish or discard one first).
	ErrTooManyLoans = errors.New("shmkit: too many loaned samples")
	// ErrWouldBlock reports that a Try call could not proceed without
	// waiting: nothing to receive, or (policy Block) a full subscriber ring.
	ErrWouldBlock = errors.New("shmkit: would block")
	// ErrPeerGone reports that no publisher (producer) is attached, at
	// least one was attached when the subscriber joined or has joined
	// since, and everything published has been received. A subscriber that
	// joins while no publisher is attached gets no ErrPeerGone: it waits
	// for a publisher. It is not final: once a new publisher joins,
	// Receive delivers its messages again.
	ErrPeerGone = errors.New("shmkit: every publisher is gone")
	// ErrTooManyHeld reports a Receive while MaxHeld samples of this
	// subscriber are still unreleased.
	ErrTooManyHeld = errors.New("shmkit: too many unreleased samples")
	// ErrTypeMismatch reports a typed call whose type's layout fingerprint
	// differs from the one recorded in the channel, or a type that cannot
	// live in shared memory (pointers, slices, maps, strings, interfaces,
	// channels, functions).
	ErrTypeMismatch = errors.New("shmkit: message type mismatch")
	// ErrRefused reports that the owner of a private channel refused this
	// process (its uid, gid or the owner's callback).
	ErrRefused = errors.New("shmkit: refused by the channel owner")
	// ErrUnsupported reports a feature this operating system lacks (the
	// private mode needs Linux: memfd, SO_PEERCRED, SCM_RIGHTS).
	ErrUnsupported = errors.New("shmkit: not supported on this system")
	// ErrSampleState reports a Sample used after Publish, Discard or
	// Release, or a call that does not fit how it was obtained (Release of
	// a loaned sample: Discard gives an unpublished loan back).
	ErrSampleState = errors.New("shmkit: sample already published or released")
	// ErrUntrusted reports a named channel that Open refuses to join (and
	// a server Dial refuses): its segment is owned by a uid other than the
	// caller's (and those named with WithOwner), or writable by a group not
	// named with WithGroup, or by others. The error names the owner and
	// the mode (docs/security.md). It is segment.ErrUntrusted.
	ErrUntrusted = segment.ErrUntrusted
	// ErrFault reports a memory fault on a channel's mapping turned into an
	// error: a process with write access truncated the segment. It is
	// segment.ErrFault.
	ErrFault = segment.ErrFault
	// ErrNoTap reports a tap on a channel that has no tap ring: created by
	// a shmkit from before taps (no "tap" region), or with taps disabled
	// (Config.TapSlots < 0). The channel itself works.
	ErrNoTap = errors.New("shmkit: channel has no tap ring")
)
