package realtime

import (
	"context"
	"sync"
)

var _ Broker = (*MemoryBroker)(nil)

// MemoryBroker is the in-process Broker: Publish calls the deliver function synchronously, so publish order is
// delivery order. A MemoryBroker serves one Hub.
type MemoryBroker struct {
	mu      sync.RWMutex
	deliver func(*Message) // nil until attached by NewHub or Run
}

// NewMemoryBroker returns a broker that loops messages back in-process.
func NewMemoryBroker() *MemoryBroker {
	return &MemoryBroker{}
}

// Publish delivers m synchronously. It never fails; a message published before anything is attached is dropped
// (NewHub attaches its hub at construction, so nothing published through a Hub is lost this way).
func (b *MemoryBroker) Publish(_ context.Context, m *Message) error {
	b.mu.RLock()
	deliver := b.deliver
	b.mu.RUnlock()
	if deliver != nil {
		deliver(m)
	}
	return nil
}

// Run attaches deliver and waits until ctx is done; it returns nil.
func (b *MemoryBroker) Run(ctx context.Context, deliver func(*Message)) error {
	b.attach(deliver)
	<-ctx.Done()
	return nil
}

// attach makes deliver the receiver of every later Publish.
func (b *MemoryBroker) attach(deliver func(*Message)) {
	b.mu.Lock()
	b.deliver = deliver
	b.mu.Unlock()
}
