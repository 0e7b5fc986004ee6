//go:build !race

package realtime_test

// raceEnabled reports whether the race detector is on; it makes allocation counts meaningless.
const raceEnabled = false
