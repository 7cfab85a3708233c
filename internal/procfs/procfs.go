// Package procfs reads the few facts shmkit needs from /proc: a process's
// state and start time (which, with the pid, names a process uniquely), the
// processes that map a file, and single-number tunables.
//
// It is the one parser of /proc for every package: liveness of segment
// creators and channel participants, shmctl gc and doctor, the benchmark's
// load report.
package procfs

import "errors"

// ErrFormat is returned when a /proc file does not have the expected form.
var ErrFormat = errors.New("procfs: unexpected format")
