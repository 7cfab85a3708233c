//go:build !race

package shmkit

// raceEnabled is true under the race detector (race.go).
const raceEnabled = false
