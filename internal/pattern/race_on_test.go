//go:build race

package pattern

// raceEnabled: under the race detector sync.Pool drops items at random,
// so allocation counts say nothing about the hot path.
const raceEnabled = true
