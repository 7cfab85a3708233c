// Package memfd creates, seals and maps anonymous shared memory files
// (memfd_create): the one implementation behind the segment package's
// Memfd backend, the cross-process tests and the benchmarks.
//
// A memfd has no name in any file system, so nothing can be left behind; it
// is shared by passing its descriptor (exec.Cmd.ExtraFiles or SCM_RIGHTS).
// Sealing it against shrinking and growing means no peer can truncate it
// under a mapping (which would turn the next touch into a SIGBUS).
package memfd

import "errors"

// ErrUnsupported is returned where the system has no memfd_create.
var ErrUnsupported = errors.New("memfd: not supported on this system")
