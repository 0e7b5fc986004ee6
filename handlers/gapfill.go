package handlers

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"switchboard/realtime"
	"switchboard/views"
)

const (
	gapCheckEvery = 2 * time.Second // how often the active rooms are checked against the database (scale-out)
	gapGrace      = time.Second     // a message stored this long ago and not delivered here was lost on the way
	gapBatch      = 500             // messages read per room and check
)

// gapFiller makes sure this instance delivered every message of the rooms its clients have open, although Redis
// pub/sub delivers at most once. It sees every room message the hub delivers (Hub.Observe); on a timer and after
// each Redis resubscription it reads the room's newer messages from the database and delivers, to local
// subscribers only, those that never arrived. Pages put a late message in its place by id.
type gapFiller struct {
	mu    sync.Mutex
	rooms map[int64]*roomGap // the rooms with local connections
}

type roomGap struct {
	conns   int
	checked int64          // every message of the room up to this id was delivered here (or filled)
	seen    map[int64]bool // ids above checked that were delivered
}

// enter notes a local connection to a room; the first one starts tracking it from the room's newest message.
func (g *gapFiller) enter(h *Handlers, room int64) {
	g.mu.Lock()
	r := g.rooms[room]
	if r != nil {
		r.conns++
		g.mu.Unlock()
		return
	}
	r = &roomGap{conns: 1, seen: make(map[int64]bool)}
	g.rooms[room] = r
	g.mu.Unlock()
	latest, err := h.store.LatestMessageID(context.Background(), room)
	if err != nil {
		h.log.Warn("gap fill: latest message", slog.Int64("room", room), slog.Any("error", err))
	}
	g.mu.Lock()
	r.checked = max(r.checked, latest)
	g.mu.Unlock()
}

// leave notes that a local connection to a room has gone; the last one stops tracking it.
func (g *gapFiller) leave(room int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if r := g.rooms[room]; r != nil {
		if r.conns--; r.conns <= 0 {
			delete(g.rooms, room)
		}
	}
}

// observe records a delivered room message. It runs on the hub's delivery path: a map lookup, no I/O.
func (g *gapFiller) observe(m *realtime.Message) {
	rest, ok := strings.CutPrefix(m.Topic, "room:")
	if !ok || m.ID <= 0 {
		return
	}
	room, err := strconv.ParseInt(rest, 10, 64)
	if err != nil {
		return
	}
	g.mu.Lock()
	if r := g.rooms[room]; r != nil && m.ID > r.checked {
		r.seen[m.ID] = true
	}
	g.mu.Unlock()
}

// fill checks every active room once and delivers, locally, the messages that were lost on the way.
func (g *gapFiller) fill(ctx context.Context, h *Handlers) {
	g.mu.Lock()
	from := make(map[int64]int64, len(g.rooms))
	for id, r := range g.rooms {
		from[id] = r.checked
	}
	g.mu.Unlock()
	for room, checked := range from {
		msgs, err := h.store.MessagesAfter(ctx, room, checked, gapBatch)
		if err != nil {
			h.log.Warn("gap fill", slog.Int64("room", room), slog.Any("error", err))
			continue
		}
		var missing []*realtime.Message
		old := time.Now().Add(-gapGrace)
		g.mu.Lock()
		r := g.rooms[room]
		for _, m := range msgs {
			if r == nil || m.ID <= r.checked {
				continue
			}
			if !r.seen[m.ID] {
				if m.CreatedAt.After(old) {
					break // maybe still on its way: look again next time
				}
				missing = append(missing, &realtime.Message{Topic: roomTopic(room), ID: m.ID, Data: h.fragment(ctx, views.MessageAppend(toMessage(m)))})
			}
			delete(r.seen, m.ID)
			r.checked = m.ID
		}
		g.mu.Unlock()
		for _, m := range missing {
			h.hub.PublishLocal(m)
		}
		if len(missing) > 0 {
			h.log.Info("gap fill delivered lost messages", slog.Int64("room", room), slog.Int("count", len(missing)))
		}
	}
}

// runGapFill fills gaps every gapCheckEvery and after every resubscription of the broker, until ctx is done.
func (h *Handlers) runGapFill(ctx context.Context, resynced <-chan struct{}) {
	t := time.NewTicker(gapCheckEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-resynced:
		}
		h.gaps.fill(ctx, h)
	}
}
