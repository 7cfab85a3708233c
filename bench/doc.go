// Package bench measures shmkit's rings against the message-passing
// mechanisms of the operating system and against the machine's own limits,
// across real processes, with a harness that costs less than what it
// measures.
//
// Every cell of a run (a transport, a workload and a message size) starts a
// fresh child process, the running binary re-executed through
// internal/reexec (a program that runs benchmarks calls ChildMain when
// IsChild reports true), and moves messages between that child and the
// parent over the transport:
//
//   - stream: the child produces, the parent consumes; the figure is
//     messages per second and MB/s over the measured time. With
//     Config.Rate the producer paces itself and the consumer records the
//     one-way latency of each message from its intended send time.
//   - pingpong: the parent sends a message, the child echoes it back; the
//     figures are round-trip latency percentiles (min, p50, p90, p99,
//     p99.9, max) from an HDR histogram built from raw samples between
//     round trips, never inside one.
//   - scaling: one MPMC ring, N producer goroutines in the child and N
//     consumer goroutines in the parent.
//
// Transports are registered, one file per family: the rings (ring_linux.go,
// the only file that uses package ring, in a Memfd segment of package
// segment), the descriptor transports (fd_linux.go: pipe, FIFO, Unix
// stream and seqpacket sockets, TCP), the message queues (mq_linux.go:
// POSIX and SysV), the Go channel (chan.go) and the no-op transport
// (noop.go) over which the harness measures itself.
//
// The harness checks every message for its sequence number and a tail
// stamp (two words, which catch a lost, duplicated, reordered or torn
// message), checksums one message in SampleEvery whole (CRC-32C), and runs
// an untimed verification cell per transport and size in which every
// message is checksummed. A transport that cannot carry a size because of
// a kernel limit reports the cell as n/a with the limit; it is never
// worked around.
//
// The machine's limits are probed in the same run: a cross-core atomic
// ping-pong between two processes over a shared memfd, memcpy bandwidth at
// each size, a futex wake/wait round trip between two processes, and a
// trivial system call. Results carry ratios against the pipe and against
// those limits, and the harness's own cost at the same workload and size.
//
// docs/benchmarks.md has results and the commands that produced them.
package bench
