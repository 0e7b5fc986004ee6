//go:build race

package handlers_test

// raceEnabled reports whether the race detector is on: it makes the server several times slower, so the
// heaviest fault tests do fewer rounds.
const raceEnabled = true
