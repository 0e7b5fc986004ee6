package market

import "context"

// Feed produces ticks until ctx is done.
type Feed interface {
	// Run calls emit with each new tick, from one goroutine, until ctx is done.
	Run(ctx context.Context, emit func(Tick)) error
}

var _ Feed = (*Sim)(nil)
