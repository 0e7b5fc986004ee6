package market_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"switchboard/market"
)

// applyPrices applies prices to symbol in order, failing the test on any error, and returns the quotes.
func applyPrices(t testing.TB, s *market.Service, symbol string, prices ...float64) []market.Quote {
	t.Helper()
	quotes := make([]market.Quote, len(prices))
	for i, p := range prices {
		q, err := s.Apply(market.Tick{Symbol: symbol, Price: p, Time: time.Unix(int64(i), 0)})
		if err != nil {
			t.Fatalf("Apply(%s, %v): %v", symbol, p, err)
		}
		quotes[i] = q
	}
	return quotes
}

func TestValidSymbol(t *testing.T) {
	for s, want := range map[string]bool{
		"VOIDX": true, "A": true, "BRK.B": true, "X-1": true, "ABCDEFGHIJKL": true, "123": true,
		"": false, "ABCDEFGHIJKLM": false, "voidx": false, "Voidx": false, "A B": false, "A_B": false,
		"ÄCME": false, "A/B": false, "<b>": false,
	} {
		if got := market.ValidSymbol(s); got != want {
			t.Errorf("ValidSymbol(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestApplySessionFigures(t *testing.T) {
	s := market.NewService([]string{"ACME", "ZENO"})
	if s.Seq() != 0 {
		t.Fatalf("Seq before any tick = %d, want 0", s.Seq())
	}
	at := time.Date(2026, 5, 1, 9, 30, 0, 0, time.UTC)
	steps := []struct {
		symbol                string
		price                 float64
		open, high, low, prev float64
		up, down              bool
	}{
		{"ACME", 100, 100, 100, 100, 100, false, false},
		{"ZENO", 50, 50, 50, 50, 50, false, false},
		{"ACME", 105, 100, 105, 100, 100, true, false},
		{"ACME", 95, 100, 105, 95, 105, false, true},
		{"ZENO", 40, 50, 50, 40, 50, false, true},
		{"ACME", 102, 100, 105, 95, 95, true, false},
		{"ACME", 102, 100, 105, 95, 102, false, false},
	}
	for i, st := range steps {
		q, err := s.Apply(market.Tick{Symbol: st.symbol, Price: st.price, Time: at.Add(time.Duration(i) * time.Second)})
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		change := st.price - st.open
		want := market.Quote{
			Seq: uint64(i + 1), Symbol: st.symbol, Price: st.price, Change: change, ChangePct: 100 * change / st.open,
			Open: st.open, High: st.high, Low: st.low, Prev: st.prev, Time: at.Add(time.Duration(i) * time.Second),
		}
		if q != want {
			t.Errorf("step %d: got %+v\nwant %+v", i, q, want)
		}
		if q.Up() != st.up || q.Down() != st.down {
			t.Errorf("step %d: Up, Down = %v, %v, want %v, %v", i, q.Up(), q.Down(), st.up, st.down)
		}
		if got, ok := s.Quote(st.symbol); !ok || got != q {
			t.Errorf("step %d: Quote(%s) = %+v, %v, want the applied quote", i, st.symbol, got, ok)
		}
		if s.Seq() != q.Seq {
			t.Errorf("step %d: Seq() = %d, want %d", i, s.Seq(), q.Seq)
		}
	}
	last, _ := s.Quote("ACME")
	if last.Change != 2 || last.ChangePct != 2 {
		t.Errorf("ACME change = %v (%v %%), want 2 (2 %%)", last.Change, last.ChangePct)
	}
}

func TestApplyFillsZeroTime(t *testing.T) {
	s := market.NewService([]string{"ACME"})
	before := time.Now()
	q, err := s.Apply(market.Tick{Symbol: "ACME", Price: 1})
	if err != nil {
		t.Fatal(err)
	}
	if q.Time.Before(before) || q.Time.After(time.Now()) {
		t.Errorf("zero tick time became %v, want now", q.Time)
	}
}

func TestApplyRefusesBadTicks(t *testing.T) {
	s := market.NewService([]string{"ACME"})
	for _, tc := range []struct {
		name string
		tick market.Tick
		want error
	}{
		{"NaN", market.Tick{Symbol: "ACME", Price: math.NaN()}, market.ErrBadPrice},
		{"+Inf", market.Tick{Symbol: "ACME", Price: math.Inf(1)}, market.ErrBadPrice},
		{"-Inf", market.Tick{Symbol: "ACME", Price: math.Inf(-1)}, market.ErrBadPrice},
		{"zero", market.Tick{Symbol: "ACME", Price: 0}, market.ErrBadPrice},
		{"negative", market.Tick{Symbol: "ACME", Price: -1}, market.ErrBadPrice},
		{"unknown", market.Tick{Symbol: "NOPE", Price: 10}, market.ErrUnknownSymbol},
		{"lower case", market.Tick{Symbol: "acme", Price: 10}, market.ErrUnknownSymbol},
		{"empty", market.Tick{Price: 10}, market.ErrUnknownSymbol},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.Apply(tc.tick); !errors.Is(err, tc.want) {
				t.Errorf("Apply(%+v) error = %v, want %v", tc.tick, err, tc.want)
			}
		})
	}
	if s.Seq() != 0 || len(s.Snapshot()) != 0 || len(s.History("ACME")) != 0 {
		t.Errorf("refused ticks left a trace: Seq %d, Snapshot %v, History %v", s.Seq(), s.Snapshot(), s.History("ACME"))
	}
}

func TestApplyAllIsAllOrNothing(t *testing.T) {
	s := market.NewService([]string{"ACME", "ZENO"})
	applyPrices(t, s, "ACME", 10)

	for _, tc := range []struct {
		name    string
		ticks   []market.Tick
		want    error
		mention string
	}{
		{"bad price", []market.Tick{{Symbol: "ACME", Price: 11}, {Symbol: "ZENO", Price: 5}, {Symbol: "ZENO", Price: math.NaN()}}, market.ErrBadPrice, `tick 2 ("ZENO")`},
		{"unknown symbol", []market.Tick{{Symbol: "ACME", Price: 11}, {Symbol: "NOPE", Price: 5}}, market.ErrUnknownSymbol, `tick 1 ("NOPE")`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			quotes, err := s.ApplyAll(tc.ticks)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.mention) {
				t.Fatalf("ApplyAll error = %v, want %v naming %s", err, tc.want, tc.mention)
			}
			if quotes != nil {
				t.Errorf("ApplyAll returned quotes %v with an error", quotes)
			}
			if s.Seq() != 1 || len(s.Snapshot()) != 1 || len(s.History("ACME")) != 1 || len(s.History("ZENO")) != 0 {
				t.Errorf("a refused batch was partly applied: Seq %d, Snapshot %+v", s.Seq(), s.Snapshot())
			}
		})
	}

	quotes, err := s.ApplyAll([]market.Tick{{Symbol: "ZENO", Price: 5}, {Symbol: "ACME", Price: 12}, {Symbol: "ZENO", Price: 6}})
	if err != nil {
		t.Fatal(err)
	}
	if len(quotes) != 3 || quotes[0].Seq != 2 || quotes[1].Seq != 3 || quotes[2].Seq != 4 {
		t.Fatalf("ApplyAll quotes = %+v, want Seqs 2, 3, 4", quotes)
	}
	if quotes[1].Prev != 10 || quotes[2].Prev != 5 || quotes[2].Open != 5 {
		t.Errorf("ApplyAll did not apply in order: %+v", quotes)
	}
}

func TestHistory(t *testing.T) {
	s := market.NewService([]string{"ACME"})
	if h := s.History("NOPE"); h != nil {
		t.Errorf("History of an unknown symbol = %v, want nil", h)
	}
	if h := s.History("ACME"); len(h) != 0 {
		t.Errorf("History before any tick = %v, want empty", h)
	}
	for i := 1; i <= 130; i++ {
		applyPrices(t, s, "ACME", float64(i))
		h := s.History("ACME")
		if want := min(i, market.HistoryLen); len(h) != want {
			t.Fatalf("after %d ticks History has %d prices, want %d", i, len(h), want)
		}
		for j, p := range h {
			if want := float64(i - len(h) + 1 + j); p != want {
				t.Fatalf("after %d ticks History[%d] = %v, want %v (oldest first)", i, j, p, want)
			}
		}
	}
	h := s.History("ACME")
	h[0] = -1
	if s.History("ACME")[0] == -1 {
		t.Error("History returned the service's own buffer, not a copy")
	}
}

// seqs returns the Seq of each quote.
func seqs(quotes []market.Quote) []uint64 {
	out := make([]uint64, len(quotes))
	for i, q := range quotes {
		out[i] = q.Seq
	}
	return out
}

// checkRun fails unless quotes have the Seqs from, from+1, … in order.
func checkRun(t testing.TB, quotes []market.Quote, from uint64, n int) {
	t.Helper()
	if len(quotes) != n {
		t.Fatalf("got %d quotes, want %d", len(quotes), n)
	}
	for i, q := range quotes {
		if q.Seq != from+uint64(i) {
			t.Fatalf("quote %d has Seq %d, want %d (all: %v)", i, q.Seq, from+uint64(i), seqs(quotes))
		}
	}
}

func TestSince(t *testing.T) {
	s := market.NewService([]string{"ACME", "ZENO"})
	if quotes, ok := s.Since(0); !ok || len(quotes) != 0 {
		t.Errorf("Since(0) before any tick = %v, %v, want none, true", quotes, ok)
	}
	for i := range 10 {
		applyPrices(t, s, []string{"ACME", "ZENO"}[i%2], float64(i+1))
	}
	quotes, ok := s.Since(0)
	if !ok {
		t.Fatal("Since(0) after 10 ticks: ok = false")
	}
	checkRun(t, quotes, 1, 10)
	if quotes[3].Symbol != "ZENO" || quotes[3].Price != 4 {
		t.Errorf("Since(0)[3] = %+v, want ZENO at 4", quotes[3])
	}
	quotes, ok = s.Since(7)
	if !ok {
		t.Fatal("Since(7): ok = false")
	}
	checkRun(t, quotes, 8, 3)
	if quotes, ok := s.Since(10); !ok || len(quotes) != 0 {
		t.Errorf("Since(newest) = %v, %v, want none, true", quotes, ok)
	}
	if quotes, ok := s.Since(11); ok || quotes != nil {
		t.Errorf("Since(future) = %v, %v, want nil, false", quotes, ok)
	}

	// Overflow the backlog: 1100 quotes in all, of which the newest 1024 (77 to 1100) are kept.
	for i := range 1090 {
		applyPrices(t, s, "ACME", float64(i+1))
	}
	const newest = 1100
	oldestKept := uint64(newest - market.BacklogLen + 1)
	quotes, ok = s.Since(oldestKept - 1)
	if !ok {
		t.Fatalf("Since(%d): ok = false, want the whole backlog", oldestKept-1)
	}
	checkRun(t, quotes, oldestKept, market.BacklogLen)
	for _, seq := range []uint64{0, 1, oldestKept - 2} {
		if quotes, ok := s.Since(seq); ok || quotes != nil {
			t.Errorf("Since(%d) past the backlog = %d quotes, %v, want nil, false", seq, len(quotes), ok)
		}
	}
	quotes, ok = s.Since(newest - 3)
	if !ok {
		t.Fatal("Since(newest-3): ok = false")
	}
	checkRun(t, quotes, newest-2, 3)
}

func TestAddSymbol(t *testing.T) {
	s := market.NewService([]string{"ACME", "bad", "ZENO", "ACME", ""})
	if got := strings.Join(s.Symbols(), ","); got != "ACME,ZENO" {
		t.Fatalf("NewService symbols = %s, want ACME,ZENO (invalid and duplicates skipped)", got)
	}
	for sym, want := range map[string]bool{"NEW.X": true, "ACME": false, "new": false, "": false, "TOOLONGSYMBOL1": false} {
		if got := s.AddSymbol(sym); got != want {
			t.Errorf("AddSymbol(%q) = %v, want %v", sym, got, want)
		}
	}
	if s.AddSymbol("NEW.X") {
		t.Error("AddSymbol of a symbol just added returned true")
	}
	if got := strings.Join(s.Symbols(), ","); got != "ACME,ZENO,NEW.X" {
		t.Errorf("Symbols = %s, want ACME,ZENO,NEW.X", got)
	}
	if !s.Has("NEW.X") || s.Has("new") || s.Has("NOPE") {
		t.Error("Has does not match the symbols added")
	}
	syms := s.Symbols()
	syms[0] = "CHANGED"
	if s.Symbols()[0] != "ACME" {
		t.Error("Symbols returned the service's own slice")
	}

	applyPrices(t, s, "ZENO", 3)
	q := applyPrices(t, s, "NEW.X", 7, 8)[1]
	if q.Open != 7 || q.Prev != 7 || q.Seq != 3 {
		t.Errorf("quote of an added symbol = %+v, want Open 7, Prev 7, Seq 3", q)
	}
	// Snapshot lists symbols with a quote, in symbol order (not tick order).
	applyPrices(t, s, "ACME", 1)
	if got := snapshotSymbols(s); got != "ACME,ZENO,NEW.X" {
		t.Errorf("Snapshot symbols = %s, want ACME,ZENO,NEW.X", got)
	}
	if _, ok := s.Quote("NOPE"); ok {
		t.Error("Quote of an unknown symbol: ok = true")
	}
}

// snapshotSymbols returns the symbols of s.Snapshot(), comma-separated.
func snapshotSymbols(s *market.Service) string {
	var syms []string
	for _, q := range s.Snapshot() {
		syms = append(syms, q.Symbol)
	}
	return strings.Join(syms, ",")
}

func TestServiceConcurrentUse(t *testing.T) {
	syms := market.DefaultSymbols()
	s := market.NewService(syms[:4])
	const writers, perWriter = 4, 500

	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				sym := syms[w]
				if i%100 == 0 {
					// Batches and new symbols interleave with single ticks.
					if _, err := s.ApplyAll([]market.Tick{{Symbol: sym, Price: 1}, {Symbol: sym, Price: 2}}); err != nil {
						t.Error(err)
						return
					}
					s.AddSymbol(syms[4+w])
					continue
				}
				if _, err := s.Apply(market.Tick{Symbol: sym, Price: float64(1 + i)}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for range 2 {
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				seq := s.Seq()
				from := seq - min(seq, 50)
				if quotes, ok := s.Since(from); ok {
					for i, q := range quotes {
						if q.Seq != from+1+uint64(i) {
							t.Errorf("Since(%d)[%d].Seq = %d", from, i, q.Seq)
							return
						}
					}
				}
				for _, q := range s.Snapshot() {
					if q.Low > q.Price || q.Price > q.High {
						t.Errorf("snapshot quote out of its range: %+v", q)
						return
					}
				}
				_ = s.History(syms[0])
				_, _ = s.Quote(syms[1])
				_ = s.Symbols()
			}
		})
	}
	wg.Wait()
	close(stop)
	readers.Wait()

	// Each writer applied perWriter ticks, but every 100th iteration was a batch of two.
	if want := uint64(writers * (perWriter + perWriter/100)); s.Seq() != want {
		t.Errorf("Seq after concurrent Apply = %d, want %d", s.Seq(), want)
	}
	if n := len(s.Symbols()); n != 8 {
		t.Errorf("%d symbols after concurrent AddSymbol, want 8", n)
	}
}

func TestRunPublishesEverySymbol(t *testing.T) {
	syms := market.DefaultSymbols()
	s := market.NewService(syms)
	sim := market.NewSim(syms, 99, 10*time.Millisecond)

	var mu sync.Mutex
	seen := map[string]int{}
	var lastSeq uint64
	all := make(chan struct{})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- s.Run(ctx, sim, func(q market.Quote) {
			mu.Lock()
			defer mu.Unlock()
			if q.Seq <= lastSeq {
				t.Errorf("published Seq %d after %d", q.Seq, lastSeq)
			}
			lastSeq = q.Seq
			seen[q.Symbol]++
			if len(seen) == len(syms) && seen[q.Symbol] == 1 {
				close(all)
			}
		})
	}()

	select {
	case <-all:
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not publish a quote for every symbol within 2 s")
	}
	// Let it tick a few more times, then stop it.
	time.Sleep(50 * time.Millisecond)
	cancel()
	start := time.Now()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run returned %v, want nil", err)
		}
	case <-time.After(time.Second):
		t.Fatal("Run did not return within 1 s of cancel")
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("Run took %v to return after cancel, want < 100 ms", d)
	}
	if got := len(s.Snapshot()); got != len(syms) {
		t.Errorf("Snapshot has %d quotes after Run, want %d", got, len(syms))
	}
	mu.Lock()
	defer mu.Unlock()
	if s.Seq() != lastSeq {
		t.Errorf("service Seq %d, last published %d: a quote was applied but not published", s.Seq(), lastSeq)
	}
}

// failingFeed is a Feed that fails at once.
type failingFeed struct{ err error }

// Run returns f.err.
func (f failingFeed) Run(context.Context, func(market.Tick)) error { return f.err }

func TestRunReturnsFeedError(t *testing.T) {
	boom := errors.New("connection refused")
	err := market.NewService(nil).Run(t.Context(), failingFeed{boom}, func(market.Quote) {})
	if !errors.Is(err, boom) {
		t.Fatalf("Run error = %v, want it to wrap %v", err, boom)
	}
}

func BenchmarkApply(b *testing.B) {
	syms := market.DefaultSymbols()
	s := market.NewService(syms)
	ticks := market.NewSim(syms, 1, time.Second).Step(time.Now())
	i := 0
	for b.Loop() {
		if _, err := s.Apply(ticks[i%len(ticks)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
