package handlers

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/gofiber/contrib/websocket"
	"github.com/gofiber/fiber/v2"

	"switchboard/models"
)

const (
	apiPage    = 50  // messages per GET /api/rooms/:id/messages by default
	apiMaxPage = 500 // and at most
)

// registerAPI mounts the JSON API for programs. Every route authenticates by bearer API token only, never by the
// session cookie (CSRF middleware skips /api/, which is safe only because of that); errors are JSON
// {"error": "…"} (ErrorHandler).
func (h *Handlers) registerAPI(app *fiber.App) {
	app.Get("/api/ws", h.requireAPISocket, websocket.New(h.apiSocket, socketConfig(h.log, &h.writeBuffers)))
	app.Get("/api/rooms", h.requireToken, h.listAPIRooms)
	app.Get("/api/rooms/:id/messages", h.requireToken, h.listAPIMessages)
	app.Post("/api/rooms/:id/messages", h.requireToken, h.postAPIMessage)
}

// jsonRoom is a room as GET /api/rooms lists it to one user.
type jsonRoom struct {
	ID     int64  `json:"id"`
	Name   string `json:"name"`
	Kind   string `json:"kind"`
	Unread int    `json:"unread"`
	Member bool   `json:"member"`
	Peer   string `json:"peer,omitempty"` // direct rooms: the other user
}

// jsonMessage is a stored message, in REST answers and in the socket's new_message.
type jsonMessage struct {
	ID        int64     `json:"id"`
	Room      int64     `json:"room"`
	RoomName  string    `json:"room_name"`
	User      string    `json:"user"`
	Kind      string    `json:"kind"` // "text", or "join" for a join notice (REST lists only)
	Text      string    `json:"text"`
	ClientID  string    `json:"client_id,omitempty"`
	CreatedAt time.Time `json:"created_at"` // RFC 3339, UTC
}

func toJSONMessage(room models.Room, m models.Message) jsonMessage {
	j := jsonMessage{ID: m.ID, Room: room.ID, RoomName: room.Name, User: m.Author, Kind: string(m.Kind), Text: m.Text,
		CreatedAt: m.CreatedAt.UTC()}
	if m.ClientID != nil {
		j.ClientID = *m.ClientID
	}
	return j
}

// requireToken authenticates a request by its bearer API token (401 otherwise, whatever cookies it has).
func (h *Handlers) requireToken(c *fiber.Ctx) error {
	u, err := h.bearerUser(c)
	if err != nil {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="switchboard"`)
		return err
	}
	c.Locals(apiUserKey, u)
	return c.Next()
}

func apiUser(c *fiber.Ctx) *models.User {
	return c.Locals(apiUserKey).(*models.User)
}

// listAPIRooms lists the rooms the token's user sees: every open room and their private and direct rooms.
func (h *Handlers) listAPIRooms(c *fiber.Ctx) error {
	items, err := h.store.RoomsForUser(c.UserContext(), apiUser(c).ID)
	if err != nil {
		return err
	}
	rooms := make([]jsonRoom, 0, len(items))
	for _, it := range items {
		rooms = append(rooms, jsonRoom{ID: it.ID, Name: it.Name, Kind: string(it.Kind), Unread: it.Unread, Member: it.Member, Peer: it.Peer})
	}
	return c.JSON(rooms)
}

// listAPIMessages lists a room's messages, oldest first: the newest page, or the first after `after`, or the
// newest before `before` (both: the first after `after` that are below `before`). Reading does not join.
func (h *Handlers) listAPIMessages(c *fiber.Ctx) error {
	ctx := c.UserContext()
	room, err := h.enterRoom(ctx, apiUser(c), c.Params("id"), false)
	if err != nil {
		return err
	}
	after, err := queryInt(c, "after", 0)
	if err != nil {
		return err
	}
	before, err := queryInt(c, "before", 1)
	if err != nil {
		return err
	}
	limit, err := queryInt(c, "limit", 1)
	if err != nil {
		return err
	}
	n := apiPage
	if limit != nil {
		if *limit > apiMaxPage {
			return fiber.NewError(fiber.StatusBadRequest, "limit is at most "+strconv.Itoa(apiMaxPage)+".")
		}
		n = int(*limit)
	}
	var msgs []models.Message
	switch {
	case after != nil:
		msgs, err = h.store.MessagesAfter(ctx, room.ID, *after, n)
		for i, m := range msgs {
			if before != nil && m.ID >= *before {
				msgs = msgs[:i]
				break
			}
		}
	case before != nil:
		msgs, err = h.store.MessagesBefore(ctx, room.ID, *before, n)
	default:
		msgs, err = h.store.RecentMessages(ctx, room.ID, n)
	}
	if err != nil {
		return err
	}
	out := make([]jsonMessage, len(msgs))
	for i, m := range msgs {
		out[i] = toJSONMessage(room, m)
	}
	return c.JSON(out)
}

// queryInt reads an optional integer query parameter no less than lowest (nil when absent; 400 when bad).
func queryInt(c *fiber.Ctx, key string, lowest int64) (*int64, error) {
	s := c.Query(key)
	if s == "" {
		return nil, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < lowest {
		return nil, fiber.NewError(fiber.StatusBadRequest, key+" must be an integer of at least "+strconv.FormatInt(lowest, 10)+".")
	}
	return &v, nil
}

// postAPIMessage sends a message through the one send path: 201 with the stored message, or 200 with the message
// stored the first time when client_id repeats one.
func (h *Handlers) postAPIMessage(c *fiber.Ctx) error {
	ctx, u := c.UserContext(), apiUser(c)
	room, err := h.enterRoom(ctx, u, c.Params("id"), true)
	if err != nil {
		return err
	}
	var in struct {
		Text     string `json:"text"`
		ClientID string `json:"client_id"`
	}
	if err := json.Unmarshal(c.Body(), &in); err != nil {
		return fiber.NewError(fiber.StatusBadRequest, `The body must be JSON: {"text":"…","client_id":"…"}.`)
	}
	// Ids in a room are committed in id order, so a message stored by this call has an id above the newest one
	// now, and a resend finds one at or below it.
	var newest int64
	if in.ClientID != "" {
		if newest, err = h.store.LatestMessageID(ctx, room.ID); err != nil {
			return err
		}
	}
	m, err := h.send(ctx, u, room, in.Text, in.ClientID)
	if err != nil {
		return err
	}
	if m.UserID != u.ID {
		return errClientIDTaken
	}
	status := fiber.StatusCreated
	if in.ClientID != "" && m.ID <= newest {
		status = fiber.StatusOK
	}
	return c.Status(status).JSON(toJSONMessage(room, m))
}
