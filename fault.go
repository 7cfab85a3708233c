package shmkit

import "github.com/shmkit/shmkit/segment"

// The sharing model's errors (docs/security.md). They belong with the
// others in errors.go; they live here while issue 20's branch is merged.
var (
	// ErrUntrusted reports a named channel that Open refuses to join: its
	// segment is owned by a uid other than the caller's (and those named
	// with WithOwner), or writable by a group not named with WithGroup, or
	// by others. The error names the owner and the mode.
	ErrUntrusted = segment.ErrUntrusted
	// ErrFault reports a memory fault on a channel's mapping turned into an
	// error: a process with write access truncated the segment.
	ErrFault = segment.ErrFault
)
