// Package procfs reads the few facts shmkit needs from /proc: a process's
// state and start time (which, with the pid, names a process uniquely), the
// load average and single-number tunables. (Who maps or holds a segment is
// shmctl's one-pass scan of /proc, cmd/shmctl/procscan_linux.go.)
//
// It is the one small-fact parser of /proc: liveness of segment
// creators and channel participants, shmctl gc and doctor, the benchmark's
// load report.
package procfs

import "errors"

// ErrFormat is returned when a /proc file does not have the expected form.
var ErrFormat = errors.New("procfs: unexpected format")
