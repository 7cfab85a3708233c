package bench

import "errors"

// Sentinel errors; the package wraps them with context. Test with errors.Is.
var (
	// ErrUnavailable marks a cell the transport cannot run, typically
	// because of a kernel limit (POSIX mq message size, SysV msgmax). The
	// result's Error field starts with "n/a:" and names the limit.
	ErrUnavailable = errors.New("n/a")
	// ErrCorrupt is returned when a received message fails verification: a
	// wrong sequence number, length, tail stamp or checksum.
	ErrCorrupt = errors.New("bench: corrupt message")
	// ErrConfig is returned for an impossible configuration: an unknown
	// transport or waiting mode, a size out of range, bad CPU numbers.
	ErrConfig = errors.New("bench: bad configuration")
	// ErrChild is returned when the child process of a cell fails.
	ErrChild = errors.New("bench: child process failed")
	// ErrUnsupported is returned by Run on operating systems other than
	// Linux.
	ErrUnsupported = errors.New("bench: cross-process benchmarks need Linux")

	// errAborted is what the Go channel reference returns once its cell
	// is aborted.
	errAborted = errors.New("bench: aborted")
)
