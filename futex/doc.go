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
// The argument that no wake-up is lost: the waiter increments sleepers,
// arms seq (sets its bit 0, unless another waiter did) and re-checks the
// condition, then sleeps on the armed value; the notifier makes the
// condition true, reads sleepers, and when it is non-zero reads seq and, if
// armed, moves it to the next (disarmed) value before waking everyone. Go's
// atomics are sequentially consistent, so either the waiter's re-check sees
// the condition, or the notifier sees the sleeper and then an armed seq (or
// a seq that another notifier already moved on, and that notifier wakes),
// and the futex wait either returns at once because seq changed or is
// woken. A Notify that finds seq disarmed makes no system call: whoever
// disarmed it has already woken every waiter parked on the old value.
//
// On operating systems other than Linux, Wait polls the word with short
// sleeps and Wake is a no-op; this keeps the package portable, not fast.
package futex
