// Package realtime moves bytes from publishers to live connections: a Hub maps topics to Subscribers (bounded
// queues), a Broker carries messages between processes, and Presence tracks who is online in a room. It knows
// nothing of HTTP, WebSocket or HTML.
package realtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
)

// Hub delivers published messages to the local subscribers of their topic.
type Hub struct {
	broker Broker
	log    *slog.Logger

	// mu guards everything below and every Subscriber's topics field. Delivery holds only the read lock and
	// calls nothing that blocks (Offer and Close never wait), so a publisher is never slowed by a subscriber and
	// the write lock (subscribe, unsubscribe, close all) is only ever held for map edits.
	mu        sync.RWMutex
	topics    map[string]map[*Subscriber]struct{}
	subs      map[*Subscriber]struct{} // every registered subscriber, including those with no topic yet
	closeCode int                      // set by CloseAll; non-zero means new subscribers are born closed

	observe atomic.Pointer[func(*Message)] // sees every delivered message (set once, before traffic)
	stats   struct{ messages, queued, dropped atomic.Uint64 }
}

// HubStats counts what a hub has delivered since it started.
type HubStats struct {
	Messages uint64 // messages delivered to this process's subscribers (control messages included)
	Queued   uint64 // deliveries: a message queued for one subscriber
	Dropped  uint64 // subscribers dropped because their queue was full (too slow)
}

// Stats returns the hub's counters (for metrics).
func (h *Hub) Stats() HubStats {
	return HubStats{Messages: h.stats.messages.Load(), Queued: h.stats.queued.Load(), Dropped: h.stats.dropped.Load()}
}

// NewHub returns a hub fed by b. A nil log discards log output. When b is a *MemoryBroker the hub is attached to
// it at once, so messages published before Run has started are still delivered.
func NewHub(b Broker, log *slog.Logger) *Hub {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Hub{
		broker: b,
		log:    log,
		topics: make(map[string]map[*Subscriber]struct{}),
		subs:   make(map[*Subscriber]struct{}),
	}
	if a, ok := b.(attacher); ok {
		a.attach(h.deliver)
	}
	return h
}

// Run runs the broker loop, delivering its messages to local subscribers; it returns when ctx is done.
func (h *Hub) Run(ctx context.Context) error {
	if err := h.broker.Run(ctx, h.deliver); err != nil {
		return fmt.Errorf("realtime: broker: %w", err)
	}
	return nil
}

// Publish hands m to the broker. m must not be modified afterwards.
func (h *Hub) Publish(ctx context.Context, m *Message) error {
	if m == nil || m.Topic == "" {
		return errors.New("realtime: publish: message without a topic")
	}
	if err := h.broker.Publish(ctx, m); err != nil {
		return fmt.Errorf("realtime: publish to %q: %w", m.Topic, err)
	}
	return nil
}

// Subscribe returns a new subscriber with a queue of queueSize (at least 1) registered under topics. After
// CloseAll it returns a subscriber that is already closed and not registered.
func (h *Hub) Subscribe(queueSize int, topics ...string) *Subscriber {
	s := newSubscriber(queueSize)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closeCode != 0 {
		s.Close(h.closeCode)
		return s
	}
	h.subs[s] = struct{}{}
	h.addTopicsLocked(s, topics)
	return s
}

// AddTopics subscribes s, which came from this hub's Subscribe, to more topics. After CloseAll it closes s
// instead.
func (h *Hub) AddTopics(s *Subscriber, topics ...string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closeCode != 0 {
		s.Close(h.closeCode)
		return
	}
	h.subs[s] = struct{}{}
	h.addTopicsLocked(s, topics)
}

// addTopicsLocked registers s under topics it does not have yet. h.mu must be held for writing.
func (h *Hub) addTopicsLocked(s *Subscriber, topics []string) {
	for _, t := range topics {
		set := h.topics[t]
		if set == nil {
			set = make(map[*Subscriber]struct{})
			h.topics[t] = set
		}
		if _, ok := set[s]; ok {
			continue
		}
		set[s] = struct{}{}
		s.topics = append(s.topics, t)
	}
}

// Unsubscribe removes s from every topic and forgets it. It is idempotent and does not close s.
func (h *Hub) Unsubscribe(s *Subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, t := range s.topics {
		set := h.topics[t]
		delete(set, s)
		if len(set) == 0 {
			delete(h.topics, t)
		}
	}
	s.topics = nil
	delete(h.subs, s)
}

// CloseAll closes every current subscriber with code (shutdown uses CloseServiceRestart); subscribers created
// afterwards are born closed with the same code.
func (h *Hub) CloseAll(code int) {
	if code == 0 {
		code = CloseNormalClosure
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closeCode = code
	for s := range h.subs {
		s.Close(code)
	}
}

// Subscribers returns how many subscribers topic has.
func (h *Hub) Subscribers(topic string) int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.topics[topic])
}

// Topics returns how many topics have at least one subscriber.
func (h *Hub) Topics() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.topics)
}

// attacher is a broker that can deliver to its hub before Run has started (the memory broker always, the Redis
// broker while Redis is down).
type attacher interface{ attach(deliver func(*Message)) }

// Observe makes fn see every message the hub delivers, once per message and before its subscribers get it (the
// gap filler uses it to know which room messages arrived). fn must be quick and must not block.
func (h *Hub) Observe(fn func(*Message)) {
	h.observe.Store(&fn)
}

// PublishLocal delivers m to this process's subscribers only, bypassing the broker (a gap fill: the message was
// published once already, and only this process missed it).
func (h *Hub) PublishLocal(m *Message) {
	h.deliver(m)
}

// deliver hands m to every local subscriber of its topic without blocking and without allocating: a full queue
// drops that subscriber only, and a control message closes them all with its code.
func (h *Hub) deliver(m *Message) {
	if fn := h.observe.Load(); fn != nil {
		(*fn)(m)
	}
	dropped, queued := 0, 0
	h.mu.RLock()
	for s := range h.topics[m.Topic] {
		if m.Close != 0 {
			s.Close(m.Close)
			continue
		}
		q, d := s.offer(m)
		if q {
			queued++
		}
		if d {
			dropped++
		}
	}
	h.mu.RUnlock()
	h.stats.messages.Add(1)
	h.stats.queued.Add(uint64(queued))
	h.stats.dropped.Add(uint64(dropped))
	if dropped > 0 {
		h.log.Warn("realtime: dropped slow subscribers", slog.String("topic", m.Topic), slog.Int("count", dropped))
	}
}
