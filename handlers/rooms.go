package handlers

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"switchboard/models"
	"switchboard/views"
)

const (
	pageSize    = 50 // messages on a room page and per older page
	maxRoomName = 64
)

func (h *Handlers) showRoomsPage(c *fiber.Ctx) error {
	items, err := h.store.RoomsForUser(c.UserContext(), viewer(c).ID)
	if err != nil {
		return err
	}
	return render(c, fiber.StatusOK, views.RoomsView(views.RoomsPage{Layout: h.layout(c, "Rooms", "rooms"), Rooms: roomLinks(items, 0)}))
}

func (h *Handlers) createRoom(c *fiber.Ctx) error {
	ctx, u := c.UserContext(), viewer(c)
	name := strings.TrimSpace(c.FormValue("name"))
	kind := models.RoomKind(c.FormValue("kind", string(models.RoomOpen)))
	formError := func(status int, msg string) error {
		items, err := h.store.RoomsForUser(ctx, u.ID)
		if err != nil {
			return err
		}
		page := views.RoomsPage{Layout: h.layout(c, "Rooms", "rooms"), Rooms: roomLinks(items, 0), Error: msg, NewName: name}
		return render(c, status, views.RoomsView(page))
	}
	switch {
	case name == "" || utf8.RuneCountInString(name) > maxRoomName:
		return formError(fiber.StatusUnprocessableEntity, "Room names are 1–64 characters.")
	case strings.ContainsFunc(name, isControl):
		return formError(fiber.StatusUnprocessableEntity, "Room names can't contain control characters.")
	case kind != models.RoomOpen && kind != models.RoomPrivate:
		return formError(fiber.StatusUnprocessableEntity, "Choose open or private.")
	}
	room, err := h.store.CreateRoom(ctx, name, kind, u.ID)
	if errors.Is(err, models.ErrRoomNameTaken) {
		return formError(fiber.StatusConflict, "A room with that name exists already.")
	}
	if err != nil {
		return err
	}
	return c.Redirect(roomPath(room.ID), fiber.StatusSeeOther)
}

func (h *Handlers) showRoomPage(c *fiber.Ctx) error {
	return h.renderRoomPage(c, fiber.StatusOK, "")
}

// renderRoomPage renders a room with an optional compose error (a refused no-JS post).
func (h *Handlers) renderRoomPage(c *fiber.Ctx, status int, formError string) error {
	ctx, u := c.UserContext(), viewer(c)
	room, err := h.enterRoom(ctx, u, c.Params("id"), true)
	if err != nil {
		return err
	}
	msgs, err := h.store.RecentMessages(ctx, room.ID, pageSize+1)
	if err != nil {
		return err
	}
	hasOlder := len(msgs) > pageSize
	if hasOlder {
		msgs = msgs[1:]
	}
	if len(msgs) > 0 {
		if err := h.store.MarkRead(ctx, room.ID, u.ID, msgs[len(msgs)-1].ID); err != nil {
			return err
		}
	}
	items, err := h.store.RoomsForUser(ctx, u.ID)
	if err != nil {
		return err
	}
	people, err := h.people(ctx, room.ID)
	if err != nil {
		return err
	}
	links := roomLinks(items, room.ID)
	current := views.RoomLink{ID: room.ID, Name: room.Name, Kind: string(room.Kind), Member: true, Active: true}
	for _, l := range links {
		if l.ID == room.ID {
			current = l
		}
	}
	page := views.RoomPage{
		Layout:   h.layout(c, roomTitle(current), "rooms"),
		Room:     current,
		Rooms:    links,
		Messages: toMessages(msgs),
		HasOlder: hasOlder,
		People:   people,
		CanAdd:   room.Kind == models.RoomPrivate,
		Error:    formError,
	}
	return render(c, status, views.RoomView(page))
}

func (h *Handlers) showOlderMessages(c *fiber.Ctx) error {
	ctx := c.UserContext()
	room, err := h.enterRoom(ctx, viewer(c), c.Params("id"), false)
	if err != nil {
		return err
	}
	before, err := strconv.ParseInt(c.Query("before"), 10, 64)
	if err != nil || before <= 0 {
		return fiber.NewError(fiber.StatusBadRequest, "before must be a message id")
	}
	msgs, err := h.store.MessagesBefore(ctx, room.ID, before, pageSize+1)
	if err != nil {
		return err
	}
	hasOlder := len(msgs) > pageSize
	if hasOlder {
		msgs = msgs[1:]
	}
	return render(c, fiber.StatusOK, views.OlderMessages(room.ID, toMessages(msgs), hasOlder))
}

// postMessage is the send for clients without WebSocket or JavaScript.
func (h *Handlers) postMessage(c *fiber.Ctx) error {
	ctx, u := c.UserContext(), viewer(c)
	room, err := h.enterRoom(ctx, u, c.Params("id"), true)
	if err != nil {
		return err
	}
	m, err := h.send(ctx, u, room, c.FormValue("text"), c.FormValue("client_id"))
	var fe *fiber.Error
	if errors.As(err, &fe) && fe.Code == fiber.StatusUnprocessableEntity && !isHTMX(c) {
		return h.renderRoomPage(c, fe.Code, fe.Message)
	}
	if err != nil {
		return err
	}
	if isHTMX(c) {
		return render(c, fiber.StatusOK, views.MessageAppend(toMessage(m)))
	}
	return c.Redirect(roomPath(room.ID)+"#"+"msg-"+strconv.FormatInt(m.ID, 10), fiber.StatusSeeOther)
}

// addMember lets a member of a private room add another user.
func (h *Handlers) addMember(c *fiber.Ctx) error {
	ctx, u := c.UserContext(), viewer(c)
	room, err := h.enterRoom(ctx, u, c.Params("id"), false)
	if err != nil {
		return err
	}
	if room.Kind != models.RoomPrivate {
		return fiber.NewError(fiber.StatusBadRequest, "Only private rooms have members to add.")
	}
	other, err := h.store.UserByName(ctx, strings.ToLower(strings.TrimSpace(c.FormValue("username"))))
	if errors.Is(err, models.ErrNotFound) {
		return h.renderRoomPage(c, fiber.StatusUnprocessableEntity, "There is no user with that name.")
	}
	if err != nil {
		return err
	}
	notice, err := h.store.Join(ctx, room.ID, other.ID)
	if err != nil {
		return err
	}
	if notice != nil {
		h.publishMessage(ctx, room, *notice)
		h.publishRoomEntry(ctx, other.ID, views.RoomLink{ID: room.ID, Name: room.Name, Kind: string(room.Kind), Member: true})
	}
	return c.Redirect(roomPath(room.ID), fiber.StatusSeeOther)
}

// findDirectRoom serves the "message someone" form.
func (h *Handlers) findDirectRoom(c *fiber.Ctx) error {
	name := strings.ToLower(strings.TrimSpace(c.Query("username")))
	if !usernamePattern.MatchString(name) {
		return fiber.NewError(fiber.StatusNotFound, "There is no user with that name.")
	}
	return c.Redirect("/dm/"+name, fiber.StatusSeeOther)
}

// openDirectRoom sends the viewer to their direct room with another user, creating it on first use.
func (h *Handlers) openDirectRoom(c *fiber.Ctx) error {
	ctx, u := c.UserContext(), viewer(c)
	peer, err := h.store.UserByName(ctx, strings.ToLower(c.Params("username")))
	if errors.Is(err, models.ErrNotFound) {
		return fiber.NewError(fiber.StatusNotFound, "There is no user with that name.")
	}
	if err != nil {
		return err
	}
	if peer.ID == u.ID {
		return fiber.NewError(fiber.StatusBadRequest, "That's you! Pick someone else to message.")
	}
	room, created, err := h.store.DirectRoom(ctx, u.ID, peer.ID)
	if err != nil {
		return err
	}
	if created {
		h.publishRoomEntry(ctx, peer.ID, views.RoomLink{ID: room.ID, Name: u.Username, Kind: string(models.RoomDirect), Member: true})
		h.publishRoomEntry(ctx, u.ID, views.RoomLink{ID: room.ID, Name: peer.Username, Kind: string(models.RoomDirect), Member: true})
	}
	return c.Redirect(roomPath(room.ID), fiber.StatusSeeOther)
}

// enterRoom loads the room named by idParam if u may read it. With join, opening an open room makes u a member
// (and tells the room); private and direct rooms are for their members only.
func (h *Handlers) enterRoom(ctx context.Context, u *models.User, idParam string, join bool) (models.Room, error) {
	id, err := strconv.ParseInt(idParam, 10, 64)
	if err != nil || id <= 0 {
		return models.Room{}, fiber.NewError(fiber.StatusNotFound, "There is no such room.")
	}
	room, err := h.store.RoomByID(ctx, id)
	if errors.Is(err, models.ErrNotFound) {
		return room, fiber.NewError(fiber.StatusNotFound, "There is no such room.")
	}
	if err != nil {
		return room, err
	}
	_, err = h.store.Membership(ctx, room.ID, u.ID)
	switch {
	case err == nil:
		return room, nil
	case !errors.Is(err, models.ErrNotFound):
		return room, err
	case room.Kind != models.RoomOpen:
		return room, fiber.NewError(fiber.StatusForbidden, "This room is for its members only.")
	case join:
		// Stored and published under sendMu like any message, so the room's events go out in id order.
		h.sendMu.Lock()
		defer h.sendMu.Unlock()
		notice, err := h.store.Join(ctx, room.ID, u.ID)
		if err != nil {
			return room, err
		}
		if notice != nil {
			h.publishMessage(ctx, room, *notice)
		}
	}
	return room, nil
}

// mayPost checks, on every send, that u may still post in room: anyone in an open room, members elsewhere.
func (h *Handlers) mayPost(ctx context.Context, u *models.User, room models.Room) error {
	if room.Kind == models.RoomOpen {
		return nil
	}
	_, err := h.store.Membership(ctx, room.ID, u.ID)
	if errors.Is(err, models.ErrNotFound) {
		return fiber.NewError(fiber.StatusForbidden, "This room is for its members only.")
	}
	return err
}

// people is a room's member list with who is online now, online first.
func (h *Handlers) people(ctx context.Context, roomID int64) ([]views.Person, error) {
	members, err := h.store.Members(ctx, roomID)
	if err != nil {
		return nil, err
	}
	online := make(map[int64]bool)
	for _, id := range h.presence.Online(roomID) {
		online[id] = true
	}
	people := make([]views.Person, 0, len(members))
	for _, on := range []bool{true, false} {
		for _, m := range members {
			if online[m.ID] == on {
				people = append(people, views.Person{Name: m.Username, Online: on})
			}
		}
	}
	return people, nil
}

func roomPath(id int64) string { return "/rooms/" + strconv.FormatInt(id, 10) }

func roomTitle(r views.RoomLink) string {
	if r.Kind == string(models.RoomDirect) {
		return "@" + r.Name
	}
	return "#" + r.Name
}

func roomLinks(items []models.RoomListItem, active int64) []views.RoomLink {
	links := make([]views.RoomLink, 0, len(items))
	for _, it := range items {
		name := it.Name
		if it.Kind == models.RoomDirect {
			name = it.Peer
		}
		links = append(links, views.RoomLink{ID: it.ID, Name: name, Kind: string(it.Kind), Unread: it.Unread, Member: it.Member, Active: it.ID == active})
	}
	return links
}

func toMessage(m models.Message) views.Message {
	v := views.Message{ID: m.ID, Author: m.Author, Kind: string(m.Kind), Text: m.Text, At: m.CreatedAt}
	if m.ClientID != nil {
		v.ClientID = *m.ClientID
	}
	return v
}

// toMessages converts a run of messages in order, grouping each with the one before it when they share author
// and minute (pushes are grouped by the page itself, which knows what it shows).
func toMessages(ms []models.Message) []views.Message {
	out := make([]views.Message, len(ms))
	for i, m := range ms {
		out[i] = toMessage(m)
		if i > 0 {
			prev := ms[i-1]
			out[i].Grouped = m.Kind == models.MessageText && prev.Kind == models.MessageText && prev.UserID == m.UserID &&
				prev.CreatedAt.UTC().Truncate(time.Minute).Equal(m.CreatedAt.UTC().Truncate(time.Minute))
		}
	}
	return out
}
