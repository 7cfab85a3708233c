//go:build race

package shmkit

// raceEnabled is true under the race detector: counters use atomic
// stores there (it cannot see what a plain store to shared memory orders).
const raceEnabled = true
