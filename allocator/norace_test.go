//go:build !race

package allocator

// raceEnabled is true in a -race build (see race_test.go).
const raceEnabled = false
