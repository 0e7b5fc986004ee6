package market

import (
	"context"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"sync"
	"time"
)

// DefaultEvery is the simulated feed's default tick interval.
const DefaultEvery = time.Second

// The walk's shape. Each step moves the log price x by
//
//	r = drift - vol²/2 + meanReversion·(x0 - x) + vol·Z,   Z ~ N(0, 1),   clamped to ±maxLogReturn,
//
// that is geometric Brownian motion pulled softly back toward the start price x0. Because |r| ≤ maxLogReturn,
// the distance |x - x0| can never exceed maxLogReturn/meanReversion (= 250), so exp(x) stays finite; prices are
// rounded to cents and floored at minPrice, so they stay above 0. In practice the walk stays within a few tens of
// per cent of the start price (the stationary spread is about vol/√(2·meanReversion) ≈ 5–15 %).
const (
	minStartPrice = 20.0
	maxStartPrice = 500.0
	minVol        = 0.0008  // per step
	maxVol        = 0.003   // per step
	maxDrift      = 0.00002 // per step, either way
	meanReversion = 0.0002  // per step: a half-life of about 3,500 steps
	maxLogReturn  = 0.05    // per step, either way
	minPrice      = 0.01
	maxJitter     = 0.10 // ± fraction of the interval between two ticks of a symbol
)

// jitterStream is the PCG stream of Run's timing jitter; walks use streams derived from their symbol.
const jitterStream = 0x6a69747465720000

// Sim is the simulated feed: one seeded random walk per symbol. It is safe for concurrent use.
type Sim struct {
	seed  int64
	every time.Duration

	mu    sync.Mutex // guards walks (their positions and random sources)
	walks []walk
}

// walk is the state of one symbol's random walk.
type walk struct {
	symbol string
	rng    *rand.Rand
	x0, x  float64 // log of the start price, and of the current price
	drift  float64 // per step
	vol    float64 // per step
}

// NewSim returns a simulated feed of symbols that ticks each symbol about every `every` (DefaultEvery when every
// is not positive). Each symbol's start price (20 to 500), drift and volatility follow from seed and the symbol's
// name, so the same seed gives the same market.
func NewSim(symbols []string, seed int64, every time.Duration) *Sim {
	if every <= 0 {
		every = DefaultEvery
	}
	s := &Sim{seed: seed, every: every, walks: make([]walk, len(symbols))}
	for i, sym := range symbols {
		h := fnv.New64a()
		h.Write([]byte(sym))
		rng := rand.New(rand.NewPCG(uint64(seed), h.Sum64()))
		x0 := math.Log(minStartPrice) + rng.Float64()*math.Log(maxStartPrice/minStartPrice)
		s.walks[i] = walk{
			symbol: sym,
			rng:    rng,
			x0:     x0,
			x:      x0,
			drift:  (2*rng.Float64() - 1) * maxDrift,
			vol:    minVol + rng.Float64()*(maxVol-minVol),
		}
	}
	return s
}

// Step moves every symbol one step and returns their ticks, stamped now, in symbol order. The sequence of prices
// is deterministic for a given seed and sequence of calls.
func (s *Sim) Step(now time.Time) []Tick {
	s.mu.Lock()
	defer s.mu.Unlock()
	ticks := make([]Tick, len(s.walks))
	for i := range s.walks {
		ticks[i] = Tick{Symbol: s.walks[i].symbol, Price: s.walks[i].step(), Time: now}
	}
	return ticks
}

// stepOne moves the i-th symbol one step and returns its tick.
func (s *Sim) stepOne(i int, now time.Time) Tick {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Tick{Symbol: s.walks[i].symbol, Price: s.walks[i].step(), Time: now}
}

// step moves the walk one step and returns the new price.
func (w *walk) step() float64 {
	r := w.drift - w.vol*w.vol/2 + meanReversion*(w.x0-w.x) + w.vol*w.rng.NormFloat64()
	w.x += min(max(r, -maxLogReturn), maxLogReturn)
	return max(math.Round(math.Exp(w.x)*100)/100, minPrice)
}

// Run emits one tick for every symbol at once, then ticks each symbol about every `every` (± up to 10 % jitter per
// tick, drawn from a source seeded by the seed), until ctx is done; it then returns nil. A symbol that falls
// behind (emit was slow) skips the ticks it missed rather than bursting. emit is called from Run's goroutine only.
func (s *Sim) Run(ctx context.Context, emit func(Tick)) error {
	if ctx.Err() != nil {
		return nil
	}
	jitter := rand.New(rand.NewPCG(uint64(s.seed), jitterStream))
	period := func() time.Duration {
		return s.every + time.Duration((2*jitter.Float64()-1)*maxJitter*float64(s.every))
	}

	now := time.Now()
	for _, t := range s.Step(now) {
		emit(t)
	}
	if len(s.walks) == 0 {
		<-ctx.Done()
		return nil
	}
	next := make([]time.Time, len(s.walks)) // when each symbol ticks next
	for i := range next {
		next[i] = now.Add(period())
	}
	timer := time.NewTimer(time.Until(earliest(next)))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		now = time.Now()
		for i := range next {
			if next[i].After(now) {
				continue
			}
			emit(s.stepOne(i, now))
			next[i] = next[i].Add(period())
			if next[i].Before(now) {
				next[i] = now.Add(period())
			}
		}
		timer.Reset(time.Until(earliest(next)))
	}
}

// earliest returns the earliest of ts, which must not be empty.
func earliest(ts []time.Time) time.Time {
	e := ts[0]
	for _, t := range ts[1:] {
		if t.Before(e) {
			e = t
		}
	}
	return e
}
