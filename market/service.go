package market

import (
	"context"
	"fmt"
	"sync"
	"time"
)

const (
	// HistoryLen is how many recent prices the Service keeps per symbol (for sparklines).
	HistoryLen = 120
	// BacklogLen is how many recent quotes, across all symbols, the Service keeps for Since.
	BacklogLen = 1024
)

// Service keeps the last quote of each symbol, the session open/high/low, a ring of the last HistoryLen prices
// per symbol (for sparklines), and a ring of the last BacklogLen quotes across all symbols (to resume a stream
// from a sequence number). It is safe for concurrent use.
type Service struct {
	// mu guards everything below. It is held only for in-memory bookkeeping, never while calling out (Run calls
	// publish after Apply has released it).
	mu      sync.RWMutex
	order   []string // symbols in the order given, added ones appended
	symbols map[string]*symbolState
	seq     uint64      // the newest Seq; Seqs are assigned consecutively, so backlog holds seq-len+1 … seq
	backlog ring[Quote] // the last BacklogLen quotes, oldest first
}

// symbolState is what the Service knows of one symbol.
type symbolState struct {
	last    Quote // valid when ticked
	ticked  bool
	history ring[float64]
}

// NewService returns a Service tracking symbols, in that order. Invalid symbols (see ValidSymbol) and duplicates
// are skipped, as AddSymbol would.
func NewService(symbols []string) *Service {
	s := &Service{symbols: make(map[string]*symbolState), backlog: newRing[Quote](BacklogLen)}
	for _, sym := range symbols {
		s.AddSymbol(sym)
	}
	return s
}

// Symbols returns the tracked symbols in the order given (added ones appended).
func (s *Service) Symbols() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return append([]string(nil), s.order...)
}

// Has reports whether symbol is tracked.
func (s *Service) Has(symbol string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.symbols[symbol]
	return ok
}

// AddSymbol starts tracking symbol; its session begins with its first tick. It returns false when symbol is
// already tracked or is not valid (see ValidSymbol).
func (s *Service) AddSymbol(symbol string) bool {
	if !ValidSymbol(symbol) {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.symbols[symbol]; ok {
		return false
	}
	s.symbols[symbol] = &symbolState{history: newRing[float64](HistoryLen)}
	s.order = append(s.order, symbol)
	return true
}

// Apply records t and returns the resulting quote with the next Seq. It returns ErrUnknownSymbol when t's symbol
// is not tracked, and ErrBadPrice when t's price is NaN, infinite, zero or negative. A zero t.Time becomes now.
func (s *Service) Apply(t Tick) (Quote, error) {
	if !validPrice(t.Price) {
		return Quote{}, ErrBadPrice
	}
	if t.Time.IsZero() {
		t.Time = time.Now()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.symbols[t.Symbol]
	if !ok {
		return Quote{}, ErrUnknownSymbol
	}
	return s.applyLocked(st, t), nil
}

// ApplyAll records ts in order and returns the resulting quotes, all or nothing: every tick is checked first, and
// on any error (which wraps ErrUnknownSymbol or ErrBadPrice and names the tick's index and symbol) nothing is
// recorded.
func (s *Service) ApplyAll(ts []Tick) ([]Quote, error) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	states := make([]*symbolState, len(ts))
	for i, t := range ts {
		st, ok := s.symbols[t.Symbol]
		if !ok {
			return nil, fmt.Errorf("%w: tick %d (%q)", ErrUnknownSymbol, i, t.Symbol)
		}
		if !validPrice(t.Price) {
			return nil, fmt.Errorf("%w: tick %d (%q): %v", ErrBadPrice, i, t.Symbol, t.Price)
		}
		states[i] = st
	}
	quotes := make([]Quote, len(ts))
	for i, t := range ts {
		if t.Time.IsZero() {
			t.Time = now
		}
		quotes[i] = s.applyLocked(states[i], t)
	}
	return quotes, nil
}

// applyLocked records a checked tick t for st and returns the quote; s.mu must be held for writing.
func (s *Service) applyLocked(st *symbolState, t Tick) Quote {
	s.seq++
	q := Quote{
		Seq:    s.seq,
		Symbol: t.Symbol,
		Price:  t.Price,
		Open:   t.Price,
		High:   t.Price,
		Low:    t.Price,
		Prev:   t.Price,
		Time:   t.Time,
	}
	if st.ticked {
		q.Open = st.last.Open
		q.High = max(st.last.High, t.Price)
		q.Low = min(st.last.Low, t.Price)
		q.Prev = st.last.Price
	}
	q.Change = q.Price - q.Open
	q.ChangePct = 100 * q.Change / q.Open
	st.last, st.ticked = q, true
	st.history.push(q.Price)
	s.backlog.push(q)
	return q
}

// Snapshot returns the last quote of every symbol that has one, in symbol order.
func (s *Service) Snapshot() []Quote {
	s.mu.RLock()
	defer s.mu.RUnlock()
	quotes := make([]Quote, 0, len(s.order))
	for _, sym := range s.order {
		if st := s.symbols[sym]; st.ticked {
			quotes = append(quotes, st.last)
		}
	}
	return quotes
}

// Quote returns the last quote of symbol; ok is false when symbol is not tracked or has not ticked yet.
func (s *Service) Quote(symbol string) (q Quote, ok bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st, found := s.symbols[symbol]
	if !found || !st.ticked {
		return Quote{}, false
	}
	return st.last, true
}

// History returns a copy of up to the last HistoryLen prices of symbol, oldest first (nil for an unknown symbol).
func (s *Service) History(symbol string) []float64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st, ok := s.symbols[symbol]
	if !ok {
		return nil
	}
	return st.history.last(st.history.len())
}

// Since returns the quotes with Seq > seq, in order, to resume a stream. ok is false when seq is older than the
// backlog holds (the caller then sends a snapshot instead) or newer than the newest Seq.
func (s *Service) Since(seq uint64) (quotes []Quote, ok bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if seq > s.seq {
		return nil, false
	}
	missed := s.seq - seq
	if missed > uint64(s.backlog.len()) {
		return nil, false
	}
	return s.backlog.last(int(missed)), true
}

// Seq returns the newest Seq (0 before any tick).
func (s *Service) Seq() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.seq
}

// Run feeds feed's ticks through Apply and calls publish with each resulting quote, from the feed's goroutine
// (publish must not block for long: it holds up the feed). Ticks that Apply refuses are dropped. Run returns
// when feed.Run does: nil once ctx is done, otherwise feed's error, wrapped.
func (s *Service) Run(ctx context.Context, feed Feed, publish func(Quote)) error {
	err := feed.Run(ctx, func(t Tick) {
		if q, err := s.Apply(t); err == nil {
			publish(q)
		}
	})
	if ctx.Err() != nil {
		return nil
	}
	if err != nil {
		return fmt.Errorf("market: feed: %w", err)
	}
	return nil
}
