package bridge

import (
	"errors"
	"os"

	"github.com/shmkit/shmkit/internal/errs"
)

// Sentinel errors. Detail follows the sentinel: fmt.Errorf("%w: ...", ErrX).
var (
	// ErrConfig: a bad argument (direction, subject, missing source or sink).
	ErrConfig = errors.New("bridge: invalid configuration")
	// ErrConnect: the NATS server could not be reached or refused us at
	// start (wrong URL, TLS or credentials). Later disconnects are retried.
	ErrConnect = errors.New("bridge: cannot connect to NATS")
	// ErrClosed: the bridge or its connection is closed. It matches
	// os.ErrClosed.
	ErrClosed = errs.New("bridge: closed", os.ErrClosed)
	// ErrDropped is what a Sink returns (wrapped) when the local channel's
	// overflow policy dropped the message: it is counted, not retried.
	ErrDropped = errors.New("bridge: dropped by the channel's policy")
	// ErrTooLarge: a message larger than the local channel's maximum or the
	// server's max_payload. It is counted as a drop and the bridge goes on.
	ErrTooLarge = errors.New("bridge: message too large")
	// ErrNoPublishers is what a Source returns (wrapped) when every local
	// publisher has left and everything they published was received. The
	// out side waits for a new publisher (or ends, with Config.ExitWhenIdle).
	ErrNoPublishers = errors.New("bridge: no publishers")
	// ErrCorrupt: a batch frame from NATS that does not parse (counted as
	// a drop; the bridge goes on).
	ErrCorrupt = errors.New("bridge: corrupt batch frame")
	// ErrState: the sequence state file is unreadable or not ours.
	ErrState = errors.New("bridge: bad state file")
)
