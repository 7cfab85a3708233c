// Package futex provides cross-process wait/wake on 32-bit words that live in
// shared memory, and the spin-then-park Waiter that shmkit's rings and
// allocator block with.
//
// # The futex contract
//
//	Wait(word, expected, timeout):
//	    atomically { if *word != expected { return nil /* changed */ } ; sleep on word }
//	    return nil when woken (or spuriously), ErrTimeout when the time-out elapsed
//	Wake(word, n):
//	    wake up to n sleepers on word; return how many were woken
//
// Wait and Wake use non-private futexes (no FUTEX_PRIVATE_FLAG), so a wake
// in one process reaches a sleeper in another, provided both map the same
// memory (MAP_SHARED). A return from Wait never proves that the condition
// the caller waits for holds: wake-ups may be spurious, so callers always
// re-check in a loop. Event and Waiter do that for you.
//
// # Event and Waiter
//
// An Event is two 32-bit words in shared memory: a sequence number (the
// futex word) and a count of sleepers. A side that makes a condition true
// calls Notify, which costs one atomic load and makes the wake system call
// only when someone is actually asleep. A side that waits for the condition
// calls Waiter.Wait, which spins for a bounded budget, then announces
// itself as a sleeper, re-checks, and parks on the futex.
//
// The argument that no wake-up is lost: the waiter reads seq, increments
// sleepers, and re-checks the condition; the notifier makes the condition
// true, then reads sleepers, and when it is non-zero increments seq before
// waking. Go's atomics are sequentially consistent, so either the notifier
// sees the sleeper (and bumps seq, so the futex wait returns at once if the
// waiter had not yet slept) or the waiter's re-check sees the condition.
//
// On operating systems other than Linux, Wait polls the word with short
// sleeps and Wake is a no-op; this keeps the package portable, not fast.
package futex
