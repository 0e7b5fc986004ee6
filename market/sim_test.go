package market_test

import (
	"context"
	"math"
	"sync"
	"testing"
	"time"

	"switchboard/market"
)

func TestDefaultSymbols(t *testing.T) {
	syms := market.DefaultSymbols()
	if len(syms) != 12 {
		t.Fatalf("got %d default symbols, want 12", len(syms))
	}
	seen := map[string]bool{}
	for _, s := range syms {
		if !market.ValidSymbol(s) {
			t.Errorf("default symbol %q is not valid", s)
		}
		if seen[s] {
			t.Errorf("default symbol %q twice", s)
		}
		seen[s] = true
	}
	syms[0] = "CHANGED"
	if got := market.DefaultSymbols()[0]; got == "CHANGED" {
		t.Error("DefaultSymbols returned a shared slice")
	}
}

func TestSimSameSeedSameSteps(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	a := market.NewSim(market.DefaultSymbols(), 42, time.Second)
	b := market.NewSim(market.DefaultSymbols(), 42, time.Second)
	c := market.NewSim(market.DefaultSymbols(), 43, time.Second)
	differ := 0
	for step := range 1000 {
		ta, tb, tc := a.Step(now), b.Step(now), c.Step(now)
		if len(ta) != 12 || len(tb) != 12 || len(tc) != 12 {
			t.Fatalf("step %d: got %d, %d, %d ticks, want 12 each", step, len(ta), len(tb), len(tc))
		}
		for i := range ta {
			if ta[i] != tb[i] {
				t.Fatalf("step %d: same seed, different ticks: %+v vs %+v", step, ta[i], tb[i])
			}
			if ta[i].Symbol != market.DefaultSymbols()[i] || !ta[i].Time.Equal(now) {
				t.Fatalf("step %d: tick %d is %+v, want symbol %s at %v", step, i, ta[i], market.DefaultSymbols()[i], now)
			}
			if ta[i].Price != tc[i].Price {
				differ++
			}
		}
	}
	if differ < 12*1000*9/10 {
		t.Errorf("seeds 42 and 43 gave different prices only %d times in 12000", differ)
	}
}

func TestSimStartPrices(t *testing.T) {
	for seed := range int64(50) {
		for _, tk := range market.NewSim(market.DefaultSymbols(), seed, 0).Step(time.Now()) {
			// The first step moves at most 5 % from a start price between 20 and 500.
			if tk.Price < 19 || tk.Price > 525 {
				t.Errorf("seed %d: first price of %s is %v, want about 20 to 500", seed, tk.Symbol, tk.Price)
			}
		}
	}
}

func TestSimPricesStayPositiveAndFinite(t *testing.T) {
	steps := 1_000_000
	if testing.Short() {
		steps = 10_000
	}
	// Four symbols keep a million steps fast under -race; every symbol's walk has the same shape.
	sim := market.NewSim(market.DefaultSymbols()[:4], 7, time.Second)
	now := time.Now()
	first := sim.Step(now)
	for step := range steps {
		for i, tk := range sim.Step(now) {
			if !(tk.Price > 0) || math.IsInf(tk.Price, 0) {
				t.Fatalf("step %d: %s price %v", step, tk.Symbol, tk.Price)
			}
			// The walk reverts to its start price, so it never wanders off by orders of magnitude.
			if r := tk.Price / first[i].Price; r < 0.1 || r > 10 {
				t.Fatalf("step %d: %s price %v wandered from %v", step, tk.Symbol, tk.Price, first[i].Price)
			}
		}
	}
}

func TestSimRunTicksEverySymbolAndStopsPromptly(t *testing.T) {
	const every = 10 * time.Millisecond
	syms := market.DefaultSymbols()
	sim := market.NewSim(syms, 1, every)

	var mu sync.Mutex
	times := map[string][]time.Time{}
	enough := make(chan struct{})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- sim.Run(ctx, func(tk market.Tick) {
			mu.Lock()
			defer mu.Unlock()
			times[tk.Symbol] = append(times[tk.Symbol], tk.Time)
			for _, s := range syms {
				if len(times[s]) < 10 {
					return
				}
			}
			select {
			case <-enough:
			default:
				close(enough)
			}
		})
	}()

	select {
	case <-enough:
	case <-time.After(5 * time.Second):
		t.Fatal("not every symbol ticked 10 times within 5 s at a 10 ms interval")
	}
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

	mu.Lock()
	defer mu.Unlock()
	for _, s := range syms {
		ts := times[s]
		// The n ticks after the first are each scheduled at least 0.9·every after the one before.
		minSpan := time.Duration(len(ts)-1) * every * 9 / 10
		if span := ts[len(ts)-1].Sub(ts[0]); span < minSpan {
			t.Errorf("%s ticked %d times in %v, faster than every %v less 10 %%", s, len(ts), span, every)
		}
	}
}

func TestSimRunReturnsAtOnceWhenDone(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := market.NewSim(market.DefaultSymbols(), 1, time.Hour).Run(ctx, func(market.Tick) {
		t.Error("emit called after ctx was done")
	})
	if err != nil {
		t.Fatalf("Run returned %v, want nil", err)
	}
}

func TestSimRunTicksEverySymbolAtOnce(t *testing.T) {
	// A new page should not wait a whole interval for its first prices.
	sim := market.NewSim(market.DefaultSymbols(), 3, time.Hour)
	ticks := make(chan market.Tick, 100)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go sim.Run(ctx, func(tk market.Tick) { ticks <- tk })
	for i := range 12 {
		select {
		case tk := <-ticks:
			if want := market.DefaultSymbols()[i]; tk.Symbol != want {
				t.Errorf("tick %d is for %s, want %s", i, tk.Symbol, want)
			}
		case <-time.After(time.Second):
			t.Fatalf("only %d of 12 first ticks within 1 s", i)
		}
	}
}
