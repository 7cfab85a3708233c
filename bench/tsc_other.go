//go:build !amd64

package bench

func rdtsc() int64 { return nanotime() }

func haveTSC() bool { return false }
