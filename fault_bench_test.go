package shmkit

import "testing"

//go:noinline
func unguarded(b []byte) (err error) {
	b[0]++
	return nil
}

//go:noinline
func guarded(b []byte) (err error) {
	defer catchFault(&err, guardFaults())
	b[0]++
	return nil
}

// BenchmarkFaultGuard is the per-call cost of the fault guard that every
// exported call touching the mapping pays (fault.go): guarded minus bare.
func BenchmarkFaultGuard(b *testing.B) {
	buf := make([]byte, 1)
	b.Run("bare", func(b *testing.B) {
		for range b.N {
			_ = unguarded(buf)
		}
	})
	b.Run("guarded", func(b *testing.B) {
		for range b.N {
			_ = guarded(buf)
		}
	})
}

var guardOn bool

//go:noinline
func maybeGuarded(b []byte) (err error) {
	if guardOn {
		defer catchFault(&err, guardFaults())
	}
	b[0]++
	return nil
}

// BenchmarkFaultGuardOff is the cost of the guard's test where it is off
// (a channel no other uid can truncate).
func BenchmarkFaultGuardOff(b *testing.B) {
	buf := make([]byte, 1)
	for range b.N {
		_ = maybeGuarded(buf)
	}
}
