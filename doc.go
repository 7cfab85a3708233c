// Package shmkit moves messages between processes on one host through
// shared memory: a channel is one segment that every participant maps; the
// kernel only sets it up, and after that messages move with plain loads
// and stores (a system call only to wake a side that sleeps).
//
// A channel has one of two patterns (Config.Pattern):
//
//   - PubSub: every Subscriber receives every message published after it
//     joined. Each Publisher appends to a log of its own in the segment
//     (a single writer per log); every subscriber reads every log in
//     place and keeps its position in a line only it writes. Fan-out to N
//     subscribers costs the publisher what one costs.
//   - WorkQueue: each message goes to exactly one Consumer. The queue is
//     one multi-producer multi-consumer ring whose slots hold the
//     messages.
//
// Both move messages with zero copy (Publisher.Loan, Publish;
// Subscriber.Receive, Sample.Release: the Sample's bytes point into the
// mapping) or with one copy each way (Send, ReceiveInto), one message or a
// batch at a time (SendBatch, ReceiveBatch).
//
// Lifetimes. Create makes a channel, Open joins one, OpenOrCreate does
// whichever is needed (and takes over a channel whose participants all
// died). A Channel is one process's handle; Publisher, Subscriber,
// Producer and Consumer are made from it, and each is used by one
// goroutine at a time, as a bufio.Writer is (Close from another goroutine
// is safe). A Sample's bytes are valid until Publish, Discard or Release;
// Samples are reused afterwards. Participants check that the others are
// alive (Config.LivenessInterval) and clean up after the dead: what a
// dead participant held is released, what it was writing is closed off,
// never delivered torn.
//
// Back-pressure follows Config.Policy (Block, DropNewest, DropOldest);
// taps (OpenTap) watch a channel's messages without taking part; the
// private mode (Listen, Dial) shares an unnamed channel over a Unix
// socket; typed calls (LoanAs, SendAs, ReceiveAs) move fixed-size Go
// values.
//
// Shared memory is untrusted: every word read from the segment is checked,
// and a corrupt or hostile peer gets ErrCorrupt, never a panic or a hang.
// Errors wrap the sentinels of errors.go.
//
// docs/guide.md is the user's guide, docs/channels.md the reference
// (layouts, algorithms, the failure table), docs/security.md the threat
// model.
package shmkit
