// Package market produces stock quotes: a simulated feed of seeded random walks, and a Service that turns ticks
// (simulated, or posted by a real feed) into quotes with the session's open, high and low, a short price history
// for sparklines, and a backlog to resume a stream from. It knows nothing of HTTP or HTML.
package market

import (
	"errors"
	"math"
	"time"
)

// maxSymbolLen is the longest valid symbol.
const maxSymbolLen = 12

// ErrUnknownSymbol is returned for a tick whose symbol the Service does not track.
var ErrUnknownSymbol = errors.New("market: unknown symbol")

// ErrBadPrice is returned for a tick whose price is NaN, infinite, zero or negative.
var ErrBadPrice = errors.New("market: price must be a finite number above 0")

// Tick is one new price for a symbol.
type Tick struct {
	Symbol string
	Price  float64
	Time   time.Time // when the price was observed; the zero time means "now" (Service.Apply fills it in)
}

// Quote is the state of one symbol after a tick.
type Quote struct {
	Seq             uint64  // the tick sequence number: increasing across all symbols, starting at 1
	Symbol          string  // the symbol, e.g. "VOIDX"
	Price           float64 // the price of this tick
	Change          float64 // Price - Open
	ChangePct       float64 // 100 * Change / Open
	Open, High, Low float64 // of the session (since the service started, or since the symbol was added)
	Prev            float64 // the price before this tick (== Price for the first)
	Time            time.Time
}

// Up reports whether the price rose with this tick.
func (q Quote) Up() bool { return q.Price > q.Prev }

// Down reports whether the price fell with this tick.
func (q Quote) Down() bool { return q.Price < q.Prev }

// DefaultSymbols returns the default symbol list (a fresh slice each call).
func DefaultSymbols() []string {
	return []string{
		"VOIDX", "ACME", "GLOBX", "NIMBL", "ORBIT", "PIXL",
		"QUARK", "RIVET", "SOLAR", "TERRA", "ZENO", "HELIX",
	}
}

// ValidSymbol reports whether s is a valid symbol: 1 to 12 characters, each an upper-case letter A–Z, a digit,
// '.' or '-'.
func ValidSymbol(s string) bool {
	if len(s) == 0 || len(s) > maxSymbolLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// validPrice reports whether p is a finite number above 0.
func validPrice(p float64) bool {
	return !math.IsNaN(p) && !math.IsInf(p, 0) && p > 0
}
