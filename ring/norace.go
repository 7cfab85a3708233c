//go:build !race

package ring

// raceEnabled is true under the race detector; see race.go.
const raceEnabled = false
