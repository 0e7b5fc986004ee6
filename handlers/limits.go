package handlers

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"switchboard/realtime"
)

const (
	sendRate     = 5                // messages per second a user may send, on average
	sendBurst    = 20               // messages a user may send at once
	maxUserConns = 16               // live sockets and streams per user, over all their tabs and devices
	sessionCheck = 30 * time.Second // how often live connections' sessions are checked (expired → closed)
)

// sessionRef names the session a request came with: its id (to look it up) and its realtime topic (to close its
// connections). Requests authenticated by an API token have none.
type sessionRef struct {
	ID, Topic string
}

// connLimits counts live connections (sockets and streams): all of them, so Shutdown can wait; per user, for the
// cap; and per session, so the sessions of live connections can be re-checked.
type connLimits struct {
	mu       sync.Mutex
	closing  bool
	perUser  map[int64]int
	perKind  map[string]int
	sessions map[string]*liveSession // by topic
	all      sync.WaitGroup          // Add only under mu while !closing, so Wait never races an Add
}

type liveSession struct {
	id    string
	conns int
}

// errConnRefused says why a connection may not open; its Code is the WebSocket close code to use.
type errConnRefused struct {
	Code   int
	Reason string
}

func (e errConnRefused) Error() string { return e.Reason }

// openConn counts a new live connection of a user, or refuses it: the server is shutting down, or the user has
// too many open already. Every successful openConn is paired with one closeConn.
func (h *Handlers) openConn(kind string, userID int64, s sessionRef) error {
	l := &h.conns
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closing {
		return errConnRefused{realtime.CloseServiceRestart, "server restart"}
	}
	if l.perUser[userID] >= h.maxUserConns {
		return errConnRefused{realtime.ClosePolicyViolation, "too many connections"}
	}
	l.perUser[userID]++
	l.perKind[kind]++
	if s.Topic != "" {
		ls := l.sessions[s.Topic]
		if ls == nil {
			ls = &liveSession{id: s.ID}
			l.sessions[s.Topic] = ls
		}
		ls.conns++
	}
	l.all.Add(1)
	return nil
}

func (h *Handlers) closeConn(kind string, userID int64, s sessionRef) {
	l := &h.conns
	l.mu.Lock()
	defer l.mu.Unlock()
	l.perKind[kind]--
	if l.perUser[userID]--; l.perUser[userID] <= 0 {
		delete(l.perUser, userID)
	}
	if ls := l.sessions[s.Topic]; ls != nil {
		if ls.conns--; ls.conns <= 0 {
			delete(l.sessions, s.Topic)
		}
	}
	l.all.Done()
}

// connCount is how many connections of a kind are live (for metrics).
func (h *Handlers) connCount(kind string) int {
	h.conns.mu.Lock()
	defer h.conns.mu.Unlock()
	return h.conns.perKind[kind]
}

// Run does the handlers' background work until ctx is done: it closes (1008) the connections of sessions that
// have expired or were deleted since they connected, and, when the broker can lose messages (Redis), it fills
// the gaps of the rooms this instance's clients have open.
func (h *Handlers) Run(ctx context.Context) {
	go h.runReadMarks(ctx)
	r, lossy := h.hub.Broker().(realtime.Resyncer)
	h.hub.Observe(func(m *realtime.Message) {
		if strings.HasPrefix(m.Topic, "tick:") {
			h.retainTick(m) // ticks another instance published start this instance's streams too
		} else if lossy {
			h.gaps.observe(m)
		}
	})
	if lossy {
		go h.runGapFill(ctx, r.Resynced())
	}
	t := time.NewTicker(h.sessionCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			h.closeDeadSessions(ctx)
		}
	}
}

func (h *Handlers) closeDeadSessions(ctx context.Context) {
	h.conns.mu.Lock()
	ids := make([]string, 0, len(h.conns.sessions))
	topics := make(map[string]string, len(h.conns.sessions))
	for topic, ls := range h.conns.sessions {
		ids = append(ids, ls.id)
		topics[ls.id] = topic
	}
	h.conns.mu.Unlock()
	if len(ids) == 0 {
		return
	}
	live, err := h.store.LiveSessions(ctx, ids)
	if err != nil {
		h.log.Warn("session check", slog.Any("error", err))
		return
	}
	for _, id := range ids {
		if !live[id] {
			h.kick(ctx, topics[id])
		}
	}
}

// allowSend takes one message from the user's allowance (by default 5 a second, bursts of 20, shared by every
// instance when they share Redis); false means too fast.
func (h *Handlers) allowSend(userID int64) bool {
	return h.limiter.Allow("send:" + strconv.FormatInt(userID, 10))
}

var errSendingTooFast = fiber.NewError(fiber.StatusTooManyRequests, "You're sending messages too fast. Wait a moment and try again.")
