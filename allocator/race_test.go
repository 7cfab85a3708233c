//go:build race

package allocator

// raceEnabled is true in a -race build. The race detector sees nothing in
// mmapped memory (docs/architecture.md), and it slows the child processes
// of the cross-process tests several times over, so those tests run fewer
// rounds under it; the plain test run keeps their full strength.
const raceEnabled = true
