package handlers

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/a-h/templ"
	"github.com/gofiber/fiber/v2"

	"switchboard/models"
	"switchboard/realtime"
	"switchboard/views"
)

const (
	maxText     = 4000 // characters in a message, after trimming
	maxClientID = 64
)

// send validates, stores and publishes one message: the one path for the socket, the form post and the API. It
// returns once the message is stored and published. A resend with the same client id stores and publishes
// nothing new and returns the message stored the first time.
func (h *Handlers) send(ctx context.Context, u *models.User, room models.Room, text, clientID string) (models.Message, error) {
	text, err := cleanText(text)
	if err != nil {
		return models.Message{}, err
	}
	if len(clientID) > maxClientID || strings.ContainsFunc(clientID, isControl) {
		return models.Message{}, fiber.NewError(fiber.StatusUnprocessableEntity, "The client id is invalid.")
	}
	if !h.allowSend(u.ID) {
		return models.Message{}, errSendingTooFast
	}
	p := &pendingSend{room: room, nm: models.NewMessage{RoomID: room.ID, UserID: u.ID, Text: text, ClientID: clientID, Author: u.Username}}
	h.queueMu.Lock()
	h.queued = append(h.queued, p)
	h.queueMu.Unlock()
	h.sendMu.Lock()
	defer h.sendMu.Unlock()
	if !p.done {
		// Let the senders that are ready to run queue up behind this one first: on one CPU they would otherwise
		// run only after this commit, and every group would hold one message.
		runtime.Gosched()
	}
	// Usually the sender before us stored our message in its group; otherwise we store a group, others' messages
	// too, so it must not end with our request (a send given up while queued is stored anyway, unacknowledged,
	// and its resend finds it by client id).
	for !p.done {
		h.storeGroup(context.WithoutCancel(ctx), h.takeGroup())
	}
	return p.msg, p.err
}

// maxGroup bounds how many queued messages one transaction stores. It is well below a subscriber's queue
// (sendQueue), so that publishing one group cannot by itself overflow the queue of a client that keeps up.
const maxGroup = 64

// pendingSend is a message waiting to be stored, and then its outcome. Every field after nm is written and read
// under sendMu.
type pendingSend struct {
	room models.Room
	nm   models.NewMessage
	done bool
	msg  models.Message
	err  error
}

// takeGroup removes the oldest queued messages, at most maxGroup, from the queue.
func (h *Handlers) takeGroup() []*pendingSend {
	h.queueMu.Lock()
	defer h.queueMu.Unlock()
	n := min(len(h.queued), maxGroup)
	group := slices.Clone(h.queued[:n])
	h.queued = slices.Delete(h.queued, 0, n)
	return group
}

// storeGroup stores a group of messages in one transaction (a group commit: senders that queue while one
// transaction commits are stored together by the next), then publishes each new one in id order, under sendMu.
// When the group fails it is stored one message at a time, so that one bad message fails only its own send.
func (h *Handlers) storeGroup(ctx context.Context, group []*pendingSend) {
	nms := make([]models.NewMessage, len(group))
	for i, p := range group {
		nms[i] = p.nm
	}
	stored, err := h.store.CreateMessages(ctx, nms)
	if err == nil {
		h.metrics.groups.Observe(float64(len(group)))
	}
	if err != nil && len(group) > 1 {
		for _, p := range group {
			h.storeGroup(ctx, []*pendingSend{p})
		}
		return
	}
	for i, p := range group {
		p.done, p.err = true, err
		if err != nil {
			continue
		}
		p.msg = stored[i].Message
		if stored[i].Created {
			h.metrics.stored.Inc()
			h.publishMessage(ctx, p.room, p.msg)
			h.bots.notify(p.room, p.msg) // never blocks: the bots' webhooks are called in the background
		}
	}
}

// cleanText trims a message and checks it: 1–4000 characters of valid UTF-8 with no control characters other than
// newlines and tabs. Its error is meant for the sender.
func cleanText(s string) (string, error) {
	s = strings.TrimSpace(strings.ReplaceAll(s, "\r\n", "\n"))
	switch n := utf8.RuneCountInString(s); {
	case !utf8.ValidString(s):
		return "", fiber.NewError(fiber.StatusUnprocessableEntity, "The message is not valid text.")
	case n == 0:
		return "", fiber.NewError(fiber.StatusUnprocessableEntity, "The message is empty.")
	case n > maxText:
		return "", fiber.NewError(fiber.StatusUnprocessableEntity, "Messages can be at most 4000 characters long.")
	case strings.ContainsFunc(s, func(r rune) bool { return r != '\n' && r != '\t' && isControl(r) }):
		return "", fiber.NewError(fiber.StatusUnprocessableEntity, "Messages can't contain control characters.")
	}
	return s, nil
}

func isControl(r rune) bool { return unicode.IsControl(r) }

// publishMessage renders a stored message once and pushes the same bytes to everyone in the room, then marks it
// unread for members elsewhere: on the room's activity topic, or for a direct room on both users' own topics.
func (h *Handlers) publishMessage(ctx context.Context, room models.Room, m models.Message) {
	h.publish(ctx, &realtime.Message{Topic: roomTopic(room.ID), ID: m.ID, Data: h.fragment(ctx, views.MessageAppend(toMessage(m)))})
	if m.Kind != models.MessageText {
		return
	}
	mark := h.fragment(ctx, views.UnreadMark(room.ID, m.Author))
	if room.Kind != models.RoomDirect {
		h.publish(ctx, &realtime.Message{Topic: activityTopic(room.ID), Data: mark})
		return
	}
	a, b, _ := room.DirectMembers() // from the room's key: no query per message
	for _, member := range []int64{a, b} {
		if member != 0 && member != m.UserID {
			h.publish(ctx, &realtime.Message{Topic: userTopic(member), Data: mark})
		}
	}
}

// publishRoomEntry adds a room to one user's lists, live.
func (h *Handlers) publishRoomEntry(ctx context.Context, userID int64, link views.RoomLink) {
	h.publish(ctx, &realtime.Message{Topic: userTopic(userID), Data: h.fragment(ctx, views.RoomEntry(link))})
}

// kick closes every socket subscribed to topic with 1008 (policy violation): logout uses it on the session's topic.
func (h *Handlers) kick(ctx context.Context, topic string) {
	h.publish(ctx, &realtime.Message{Topic: topic, Close: realtime.ClosePolicyViolation})
}

// publish hands m to the hub. A failed publish is logged, never returned: the message is stored already, and
// reconnecting clients replay it.
func (h *Handlers) publish(ctx context.Context, m *realtime.Message) {
	start := time.Now()
	err := h.hub.Publish(ctx, m)
	h.metrics.fanout.Observe(time.Since(start).Seconds())
	switch {
	case errors.Is(err, realtime.ErrLocalOnly): // Redis is down: the broker logged the outage once
		h.log.Debug("published locally only", slog.String("topic", m.Topic))
	case err != nil:
		h.log.Warn("publish failed", slog.String("topic", m.Topic), slog.Any("error", err))
	}
}

// schedulePeople is the presence callback: it pushes the room's people list soon, once per burst of changes.
func (h *Handlers) schedulePeople(room int64) {
	h.peopleMu.Lock()
	defer h.peopleMu.Unlock()
	if h.peopleDue[room] {
		return
	}
	h.peopleDue[room] = true
	time.AfterFunc(peopleDebounce, func() {
		h.peopleMu.Lock()
		delete(h.peopleDue, room)
		h.peopleMu.Unlock()
		ctx := context.Background()
		people, err := h.people(ctx, room)
		if err != nil {
			h.log.Error("people list not pushed", slog.Int64("room", room), slog.Any("error", err))
			return
		}
		// Every instance with clients in the room is told of the change and renders the list for its own
		// clients, so the push stays local.
		h.hub.PublishLocal(&realtime.Message{Topic: roomTopic(room), Data: h.fragment(ctx, views.People(people, true))})
	})
}

// fragment renders a component once into bytes for fan-out. Rendering into memory fails only on a bug or a
// cancelled context; that is logged and the fragment is empty.
func (h *Handlers) fragment(ctx context.Context, comp templ.Component) []byte {
	var buf bytes.Buffer
	if err := comp.Render(ctx, &buf); err != nil {
		h.log.Error("fragment not rendered", slog.Any("error", err))
		return nil
	}
	return buf.Bytes()
}

func roomTopic(id int64) string     { return "room:" + strconv.FormatInt(id, 10) }
func activityTopic(id int64) string { return "activity:" + strconv.FormatInt(id, 10) }
func userTopic(id int64) string     { return "user:" + strconv.FormatInt(id, 10) }
