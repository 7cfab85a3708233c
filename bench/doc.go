// Package bench measures shmkit's rings against the message-passing
// mechanisms of the operating system and against the machine's own limits,
// across real processes.
//
// Every cell of a run (a transport, a workload and a message size) starts a
// fresh child process, the running binary re-executed with EnvChild set
// (see IsChild and ChildMain), and moves messages between that child and
// the parent over the transport:
//
//   - stream: the child produces, the parent consumes; the figure is
//     messages per second and MB/s over the measured time.
//   - pingpong: the parent sends a message, the child echoes it back; the
//     figures are round-trip latency percentiles from an HDR histogram.
//
// Both processes report the CPU time (getrusage) they spent in the measured
// window, so the cost of spinning shows up next to its speed.
//
// Honesty rules the harness enforces: every message carries a sequence
// number and a CRC-32C that the receiver checks (over the whole message up
// to 64 KiB, over the header and the last 64 bytes otherwise, with the whole
// message of every 8th checked); a warm-up period is sent and verified but
// not measured; every transport gets the same measured duration (and a
// floor on the message count); a transport that cannot carry a size because
// of a kernel limit reports the cell as n/a with the limit, it is never
// worked around.
//
// The machine's limits are probed in the same run: a cross-core atomic
// ping-pong between two processes over a shared memfd, memcpy bandwidth at
// each size, a futex wake/wait round trip between two processes, and a
// trivial system call. Results carry ratios against the pipe and against
// those limits.
//
// docs/benchmarks.md has results from the project machine and the command
// that produced them.
package bench
