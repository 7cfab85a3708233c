//go:build race

package ring

// raceEnabled is true under the race detector. It cannot see the ordering
// an assembly store gives, so publications then use sync/atomic's store,
// which it models as a release (see publish64).
const raceEnabled = true
