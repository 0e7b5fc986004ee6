package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gofiber/contrib/websocket"
	"github.com/gofiber/fiber/v2"

	"switchboard/models"
	"switchboard/realtime"
)

// GET /api/ws is the JSON WebSocket for programs. It speaks the reference tutorial's events, each one text frame
// {"event": name, "data": {...}}:
//
//	client → server: auth, join_room, leave_room, send_message, resume
//	server → client: joined, new_message, user_joined, user_left, ack, error
//
// The hub carries HTML fragments on room topics, which this socket never parses: a room message (Message.ID > 0)
// only wakes the writer, which reads what is new from the store (MessagesAfter the last id it sent) and writes
// it as JSON. The store is the one source, so the replay of a resume and the live messages after it come in id
// order without duplicates, and a burst of wake-ups costs one query per room.

const (
	apiAuthWait = 5 * time.Second // a socket opened without an Authorization header must authenticate this soon (1008)
	apiFetch    = 100             // messages read per room and query; a longer gap is read in turns with the queue
	apiCommands = 16              // the reader's events waiting for the writer; a full queue blocks the reader
	apiUserKey  = "apiUser"       // the Locals key of the user a bearer token authenticated
)

// The authentication states of an API socket.
const (
	apiAuthWaiting int32 = iota // no Authorization header: the first message must be "auth"
	apiAuthed
	apiAuthTimedOut
)

// apiEvent is the envelope of every frame in both directions.
type apiEvent struct {
	Event string `json:"event"`
	Data  any    `json:"data"`
}

// apiInbound is a client frame before its data is decoded for its event.
type apiInbound struct {
	Event string          `json:"event"`
	Data  json.RawMessage `json:"data"`
}

// jsonAck answers each send_message, a resend included (then with the id stored the first time).
type jsonAck struct {
	ClientID string `json:"client_id"`
	ID       int64  `json:"id"`
	Room     int64  `json:"room"`
}

// jsonError reports an event the server refused; Status is the HTTP status the same refusal gets from REST.
type jsonError struct {
	Message  string `json:"message"`
	ClientID string `json:"client_id,omitempty"`
	Event    string `json:"event,omitempty"`
	Status   int    `json:"status"`
}

// jsonJoined answers join_room and resume: every message of the room with an id above After follows.
type jsonJoined struct {
	Room     int64  `json:"room"`
	RoomName string `json:"room_name"`
	Kind     string `json:"kind"`
	After    int64  `json:"after"`
}

// jsonPresence is user_joined (from the room's join message, with its id) and user_left (no id: nothing stored).
type jsonPresence struct {
	ID        int64      `json:"id,omitempty"`
	Room      int64      `json:"room"`
	RoomName  string     `json:"room_name"`
	User      string     `json:"user"`
	CreatedAt *time.Time `json:"created_at,omitempty"`
}

// requireAPISocket checks an upgrade of /api/ws before it happens: an Authorization header must hold a valid API
// token (401). Without one the first message must authenticate, but a signed-in session is refused (401): this
// socket is for programs, which use tokens. No Origin check is needed, because a cookie grants nothing here.
// A token in the URL is refused (400): URLs end up in logs.
func (h *Handlers) requireAPISocket(c *fiber.Ctx) error {
	if !websocket.IsWebSocketUpgrade(c) {
		return fiber.ErrUpgradeRequired
	}
	if c.Query("token") != "" || c.Query("access_token") != "" {
		return fiber.NewError(fiber.StatusBadRequest, "Never put a token in a URL: send it in the Authorization header or the first message.")
	}
	if c.Get("Authorization") == "" {
		if viewer(c) != nil {
			return fiber.NewError(fiber.StatusUnauthorized, "This socket takes API tokens, not a signed-in session.")
		}
		return c.Next()
	}
	u, err := h.bearerUser(c)
	if err != nil {
		return err
	}
	c.Locals(apiUserKey, u)
	return c.Next()
}

// apiSocket runs one JSON socket: this goroutine reads and handles the client's events; the writer goroutine
// (apiWriter.writeLoop) writes everything. The handler returns only after the writer has exited.
func (h *Handlers) apiSocket(conn *websocket.Conn) {
	u, _ := conn.Locals(apiUserKey).(*models.User)
	if u != nil {
		if err := h.openConn(connAPISocket, u.ID, sessionRef{}); err != nil {
			refuseSocket(conn, err)
			return
		}
	}
	// Subscribed, to no topic yet, before anything else: Shutdown (CloseAll) then closes this socket with 1012
	// even while it waits for its first message.
	sub := h.hub.Subscribe(sendQueue)
	defer h.hub.Unsubscribe(sub)
	if u != nil {
		h.hub.AddTopics(sub, kickTopic(u.ID)) // disabling the account closes this socket
	}
	w := h.startAPIWriter(conn, sub)
	r := &apiReader{h: h, w: w, user: u, opened: u != nil,
		entered: make(map[int64]models.Room), byName: make(map[string]int64), joined: make(map[int64]bool)}
	if u != nil {
		r.auth.Store(apiAuthed)
	} else {
		timer := time.AfterFunc(apiAuthWait, func() {
			if r.auth.CompareAndSwap(apiAuthWaiting, apiAuthTimedOut) {
				sub.Close(realtime.ClosePolicyViolation)
			}
		})
		defer timer.Stop()
	}
	w.readLoop(r.handle)
	w.stop()
	for room := range r.joined {
		h.presence.Disconnect(room, r.user.ID)
		h.gaps.leave(room)
	}
	if r.opened {
		h.closeConn(connAPISocket, r.user.ID, sessionRef{})
	}
}

// apiCommand is one event of the reader for the writer: a ready frame to write (ack, error), or a change of the
// rooms the socket follows. Commands keep the order the client sent its events in.
type apiCommand struct {
	op     apiOp
	frame  []byte      // apiFrame: the JSON of one event
	room   models.Room // apiJoin, apiResume, apiLeave
	user   int64       // apiJoin, apiResume: whose reads to mark
	after  int64       // apiJoin, apiResume: send the room's messages with a greater id
	online []int64     // apiJoin, apiResume: who was online when the room was joined
}

type apiOp int

const (
	apiFrame  apiOp = iota
	apiJoin         // follow a room from its newest message on (a second join keeps the position)
	apiResume       // follow a room from a given message id on
	apiLeave        // stop following a room
)

// apiWriter is the connection's only writer. It reuses socket's reading half, deadlines and frame writes, but
// writes JSON that it builds from the store when the hub wakes it.
type apiWriter struct {
	*socket
	h      *Handlers
	cmds   chan apiCommand
	always chan struct{} // closed at start: a select case that is ready at once, taken while a room is behind

	// Writer only.
	rooms map[string]*apiRoomState // by room topic
	names map[int64]string         // usernames, for user_left
	out   []byte                   // frames gathered for one write
	user  int64                    // the socket's user, learnt from the first join (for read marks)
}

// apiRoomState is a room the socket follows.
type apiRoomState struct {
	room    models.Room
	last    int64          // every message up to this id was written, or came before the join
	behind  bool           // the store may have messages after last
	changed bool           // a room event other than a message arrived: who is online may have changed
	online  map[int64]bool // who was online at the last look
}

func (h *Handlers) startAPIWriter(conn *websocket.Conn, sub *realtime.Subscriber) *apiWriter {
	w := &apiWriter{
		socket: &socket{conn: conn, nc: conn.NetConn(), sub: sub, pongs: make(chan []byte, 1), stopped: make(chan struct{}),
			done: make(chan struct{}), pongWait: h.pongWait},
		h:      h,
		cmds:   make(chan apiCommand, apiCommands),
		always: make(chan struct{}),
		rooms:  make(map[string]*apiRoomState),
		names:  make(map[int64]string),
	}
	close(w.always)
	// As on the page sockets: a client too slow to keep up is dropped now, its stuck write cut short.
	sub.OnClose(func(code int) {
		if code == realtime.CloseTryAgainLater {
			_ = conn.NetConn().SetWriteDeadline(time.Now())
		}
	})
	go w.writeLoop()
	return w
}

// command hands c to the writer, waiting while its queue is full; it gives up once the writer has exited.
func (w *apiWriter) command(c apiCommand) {
	select {
	case w.cmds <- c:
	case <-w.done:
	}
}

// writeLoop writes until the connection fails, the subscriber is closed (then with its close code) or the
// handler stops it. After each wake-up it reads what the followed rooms have new, one batch per room; a room
// with more (a long resume) stays behind and is read again on the next turn, so the hub's queue keeps draining.
func (w *apiWriter) writeLoop() {
	defer close(w.done)
	ctx := context.Background()
	ping := time.NewTicker(w.pongWait * 9 / 10)
	defer ping.Stop()
	for {
		var catchUp <-chan struct{}
		if w.anyBehind() {
			catchUp = w.always
		}
		select {
		case m := <-w.sub.C():
			w.take(m)
			w.drain()
		case c := <-w.cmds:
			// What the hub queued before this command goes out before it: the new_message of a send before its ack.
			w.drain()
			w.fetch(ctx)
			w.apply(c)
		case <-catchUp:
		case p := <-w.pongs:
			w.out = append(append(w.out, 0x8A, byte(len(p))), p...)
		case <-ping.C:
			w.out = append(w.out, pingFrame...)
		case <-w.sub.Done():
			code := w.sub.CloseCode()
			w.closing.Store(true)
			msg := websocket.FormatCloseMessage(code, closeReason(code))
			_ = w.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(writeWait))
			_ = w.conn.SetReadDeadline(time.Now().Add(closeGrace))
			return
		case <-w.stopped:
			return
		}
		w.fetch(ctx)
		w.lookOnline(ctx)
		if len(w.out) == 0 {
			continue
		}
		if w.write(w.out) != nil {
			return
		}
		w.out = w.out[:0]
		if cap(w.out) > 64<<10 {
			w.out = nil // a long replay's buffer is not kept for the connection's life
		}
	}
}

// drain takes what else the hub has queued, up to maxBatch messages.
func (w *apiWriter) drain() {
	for range maxBatch {
		select {
		case m := <-w.sub.C():
			w.take(m)
		default:
			return
		}
	}
}

// take notes one hub message: a stored message of a followed room marks it behind, any other event of the room
// (the people list, typing) means presence may have changed. The fragment itself is never read.
func (w *apiWriter) take(m *realtime.Message) {
	r := w.rooms[m.Topic]
	switch {
	case r == nil: // a room the socket left, or joins right now (the join reads from the store anyway)
	case m.ID > r.last:
		r.behind = true
	case m.ID == 0:
		r.changed = true
	}
}

func (w *apiWriter) anyBehind() bool {
	for _, r := range w.rooms {
		if r.behind {
			return true
		}
	}
	return false
}

// apply carries out a command of the reader.
func (w *apiWriter) apply(c apiCommand) {
	switch c.op {
	case apiFrame:
		w.out = realtime.AppendTextFrame(w.out, c.frame)
		return
	case apiLeave:
		delete(w.rooms, roomTopic(c.room.ID))
		return
	}
	w.user = c.user
	topic := roomTopic(c.room.ID)
	r := w.rooms[topic]
	if r == nil {
		r = &apiRoomState{room: c.room, last: c.after, online: make(map[int64]bool, len(c.online))}
		for _, id := range c.online {
			r.online[id] = true
		}
		w.rooms[topic] = r
	}
	if c.op == apiResume {
		r.last = c.after
	}
	r.behind = true
	w.out = appendEvent(w.out, "joined", jsonJoined{Room: c.room.ID, RoomName: c.room.Name, Kind: string(c.room.Kind), After: r.last})
}

// fetch reads one batch of new messages for every room that is behind and adds their events to the output. A
// failed read closes the socket with 1011; the client resumes from the last id it got.
func (w *apiWriter) fetch(ctx context.Context) {
	for _, r := range w.rooms {
		if !r.behind {
			continue
		}
		msgs, err := w.h.store.MessagesAfter(ctx, r.room.ID, r.last, apiFetch)
		if err != nil {
			w.h.log.Error("api socket: read messages", slog.Int64("room", r.room.ID), slog.Any("error", err))
			r.behind = false
			w.sub.Close(websocket.CloseInternalServerErr)
			return
		}
		r.behind = len(msgs) == apiFetch
		for _, m := range msgs {
			if m.Kind == models.MessageJoin {
				at := m.CreatedAt.UTC()
				w.out = appendEvent(w.out, "user_joined", jsonPresence{ID: m.ID, Room: r.room.ID, RoomName: r.room.Name, User: m.Author, CreatedAt: &at})
			} else {
				w.out = appendEvent(w.out, "new_message", toJSONMessage(r.room, m))
			}
			r.last = m.ID
		}
		if len(msgs) > 0 {
			w.h.marks.note(r.room.ID, w.user, r.last) // written, so read: saved with everyone's at the next flush
		}
	}
}

// lookOnline compares who is online in the rooms that had an event with who was, and writes user_left for each
// user who went offline (presence lingers a few seconds, so a reconnect does not count).
func (w *apiWriter) lookOnline(ctx context.Context) {
	for _, r := range w.rooms {
		if !r.changed {
			continue
		}
		r.changed = false
		now := make(map[int64]bool, len(r.online))
		for _, id := range w.h.presence.Online(r.room.ID) {
			now[id] = true
		}
		for id := range r.online {
			if !now[id] {
				w.out = appendEvent(w.out, "user_left", jsonPresence{Room: r.room.ID, RoomName: r.room.Name, User: w.username(ctx, r.room.ID, id)})
			}
		}
		r.online = now
	}
}

// username names a user, from the room's member list the first time (someone online in a room is a member).
func (w *apiWriter) username(ctx context.Context, room, id int64) string {
	if name, ok := w.names[id]; ok {
		return name
	}
	members, err := w.h.store.Members(ctx, room)
	if err != nil {
		w.h.log.Warn("api socket: room members", slog.Int64("room", room), slog.Any("error", err))
	}
	for _, m := range members {
		w.names[m.ID] = m.Username
	}
	if _, ok := w.names[id]; !ok {
		u, err := w.h.store.UserByID(ctx, id)
		if err != nil {
			w.h.log.Warn("api socket: user", slog.Int64("user", id), slog.Any("error", err))
		}
		w.names[id] = u.Username
	}
	return w.names[id]
}

// appendEvent appends one event as a text frame. The event types here always encode.
func appendEvent(dst []byte, event string, data any) []byte {
	return realtime.AppendTextFrame(dst, encodeEvent(event, data))
}

func encodeEvent(event string, data any) []byte {
	b, err := json.Marshal(apiEvent{Event: event, Data: data})
	if err != nil {
		panic(fmt.Sprintf("api event %s does not encode: %v", event, err))
	}
	return b
}

// apiReader handles the client's events on the handler's goroutine. Its fields are the reader's own.
type apiReader struct {
	h      *Handlers
	w      *apiWriter
	user   *models.User // nil until authenticated
	auth   atomic.Int32 // apiAuthWaiting → apiAuthed or apiAuthTimedOut; shared with the auth timer
	opened bool         // openConn counted this socket; closeConn is due

	entered map[int64]models.Room // rooms the user may read, checked once by enterRoom
	byName  map[string]int64      // lower-cased room name → id, for rooms named by the client
	joined  map[int64]bool        // rooms the socket follows (subscribed, online in, gap-filled)
}

// errBadEvent is a client error in an event's shape (400).
func errBadEvent(msg string) error { return fiber.NewError(fiber.StatusBadRequest, msg) }

// handle handles one client frame; it returns a close code to end the connection, or 0.
func (r *apiReader) handle(data []byte) int {
	if !utf8.Valid(data) {
		return websocket.CloseInvalidFramePayloadData
	}
	var in apiInbound
	err := json.Unmarshal(data, &in)
	if r.auth.Load() != apiAuthed {
		if err != nil || in.Event != "auth" {
			return websocket.ClosePolicyViolation
		}
		return r.authenticate(in.Data)
	}
	if err != nil {
		r.fail("", "", errBadEvent(`That is not a JSON event: send {"event":"…","data":{…}}.`))
		return 0
	}
	ctx := context.Background()
	var clientID string
	switch in.Event {
	case "join_room":
		err = r.join(ctx, in.Data, false)
	case "resume":
		err = r.join(ctx, in.Data, true)
	case "leave_room":
		err = r.leave(ctx, in.Data)
	case "send_message":
		clientID, err = r.send(ctx, in.Data)
	case "auth":
		err = errBadEvent("This socket is authenticated already.")
	case "":
		err = errBadEvent(`The event name is missing: send {"event":"…","data":{…}}.`)
	default:
		err = errBadEvent("Unknown event. Events are join_room, leave_room, send_message and resume.")
	}
	if err != nil {
		r.fail(in.Event, clientID, err)
	}
	return 0
}

// authenticate checks the token of the first message. A bad token, or an auth that comes too late, closes the
// socket with 1008; so does a user over the connection cap.
func (r *apiReader) authenticate(data json.RawMessage) int {
	var in struct {
		Token string `json:"token"`
	}
	if json.Unmarshal(data, &in) != nil || in.Token == "" {
		return websocket.ClosePolicyViolation
	}
	u, err := r.h.store.UserByToken(context.Background(), strings.TrimSpace(in.Token))
	if errors.Is(err, models.ErrNotFound) || (err == nil && u.Disabled) {
		return websocket.ClosePolicyViolation
	}
	if err != nil {
		r.h.log.Error("api socket: token", slog.Any("error", err))
		return websocket.CloseInternalServerErr
	}
	if err := r.h.openConn(connAPISocket, u.ID, sessionRef{}); err != nil {
		var refused errConnRefused
		if errors.As(err, &refused) {
			return refused.Code
		}
		return websocket.CloseInternalServerErr
	}
	r.user, r.opened = &u, true
	r.h.hub.AddTopics(r.w.sub, kickTopic(u.ID)) // disabling the account closes this socket
	if !r.auth.CompareAndSwap(apiAuthWaiting, apiAuthed) {
		return websocket.ClosePolicyViolation // the timer closed the socket already
	}
	return 0
}

// fail sends the client an error event. Client errors carry their message; anything else is logged and reported
// without detail.
func (r *apiReader) fail(event, clientID string, err error) {
	var fe *fiber.Error
	e := jsonError{Event: event, ClientID: clientID}
	switch {
	case errors.As(err, &fe):
		e.Message, e.Status = fe.Message, fe.Code
	default:
		r.h.log.Error("api socket: event failed", slog.String("event", event), slog.Int64("user", r.user.ID), slog.Any("error", err))
		e.Message, e.Status = "Something went wrong on our side. Please try again.", fiber.StatusInternalServerError
	}
	r.w.command(apiCommand{op: apiFrame, frame: encodeEvent("error", e)})
}

// decodeData decodes an event's data, turning decoding errors into messages for the client.
func decodeData(data json.RawMessage, v any) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return errBadEvent("The event has no data.")
	}
	err := json.Unmarshal(data, v)
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &te) && te.Field != "":
		return errBadEvent(fmt.Sprintf("%s must be %s.", te.Field, jsonKind(te.Type.Kind().String())))
	case err != nil:
		return errBadEvent("The event's data must be a JSON object.")
	}
	return nil
}

func jsonKind(goKind string) string {
	switch {
	case goKind == "string":
		return "a string"
	case strings.HasPrefix(goKind, "int"), strings.HasPrefix(goKind, "uint"), strings.HasPrefix(goKind, "float"):
		return "a number"
	case goKind == "bool":
		return "true or false"
	}
	return "something else"
}

// roomRef reads a room named by the client: a JSON string is a room name (open and private rooms), a JSON
// number a room id (any room, direct ones included).
func roomRef(raw json.RawMessage) (id int64, name string, err error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return 0, "", errBadEvent("room is required: a room name or id.")
	}
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &name); err != nil {
			return 0, "", errBadEvent("room must be a room name or id.")
		}
		if name = strings.TrimSpace(name); name == "" {
			return 0, "", errBadEvent("room is required: a room name or id.")
		}
		return 0, name, nil
	}
	if err := json.Unmarshal(raw, &id); err != nil {
		return 0, "", errBadEvent("room must be a room name or id.")
	}
	return id, "", nil
}

// roomID finds the id of the room the client named. A name finds only rooms the user can see (open rooms and
// their own private ones), so a private room's name is never confirmed to outsiders.
func (r *apiReader) roomID(ctx context.Context, raw json.RawMessage) (int64, error) {
	id, name, err := roomRef(raw)
	if err != nil || name == "" {
		return id, err
	}
	key := strings.ToLower(name)
	if id, ok := r.byName[key]; ok {
		return id, nil
	}
	items, err := r.h.store.RoomsForUser(ctx, r.user.ID)
	if err != nil {
		return 0, err
	}
	for _, it := range items {
		if it.Kind != models.RoomDirect && strings.ToLower(it.Name) == key {
			r.byName[key] = it.ID
			return it.ID, nil
		}
	}
	return 0, fiber.NewError(fiber.StatusNotFound, "There is no such room.")
}

// room finds the room the client named and checks, once per socket, that the user may be in it, with the rules
// of the pages: opening an open room makes the user a member; private and direct rooms are for members only.
func (r *apiReader) room(ctx context.Context, raw json.RawMessage) (models.Room, error) {
	id, err := r.roomID(ctx, raw)
	if err != nil {
		return models.Room{}, err
	}
	if room, ok := r.entered[id]; ok {
		return room, nil
	}
	room, err := r.h.enterRoom(ctx, r.user, strconv.FormatInt(id, 10), true)
	if err != nil {
		return room, err
	}
	r.entered[id] = room
	return room, nil
}

// join follows a room: from its newest message on (join_room), or from a given id (resume: the messages the
// client missed first, in order, then live ones).
func (r *apiReader) join(ctx context.Context, data json.RawMessage, resume bool) error {
	var in struct {
		Room  json.RawMessage `json:"room"`
		After *int64          `json:"after"`
	}
	if err := decodeData(data, &in); err != nil {
		return err
	}
	if resume && (in.After == nil || *in.After < 0) {
		return errBadEvent("after is required: the id of the newest message you have (0 for all).")
	}
	room, err := r.room(ctx, in.Room)
	if err != nil {
		return err
	}
	if !r.joined[room.ID] {
		// Subscribed before the newest id is read: what is stored later wakes the writer.
		r.h.hub.AddTopics(r.w.sub, roomTopic(room.ID))
		r.h.presence.Connect(room.ID, r.user.ID)
		r.h.gaps.enter(r.h, room.ID)
		r.joined[room.ID] = true
	}
	c := apiCommand{op: apiJoin, room: room, user: r.user.ID, online: r.h.presence.Online(room.ID)}
	if resume {
		c.op, c.after = apiResume, *in.After
	} else if c.after, err = r.h.store.LatestMessageID(ctx, room.ID); err != nil {
		return err
	}
	r.w.command(c)
	return nil
}

// leave stops following a room (the user stays a member). Leaving a room the socket does not follow does nothing.
func (r *apiReader) leave(ctx context.Context, data json.RawMessage) error {
	var in struct {
		Room json.RawMessage `json:"room"`
	}
	if err := decodeData(data, &in); err != nil {
		return err
	}
	id, err := r.roomID(ctx, in.Room)
	if err != nil || !r.joined[id] {
		return err
	}
	// The hub keeps the topic (it has no per-topic unsubscribe); the writer ignores the room from now on.
	delete(r.joined, id)
	r.h.presence.Disconnect(id, r.user.ID)
	r.h.gaps.leave(id)
	r.w.command(apiCommand{op: apiLeave, room: models.Room{ID: id}})
	return nil
}

// send stores and publishes a message through the one send path (validation, rate limit, idempotency by client
// id) and acknowledges it with its id: for a resend, the id stored the first time.
func (r *apiReader) send(ctx context.Context, data json.RawMessage) (clientID string, err error) {
	var in struct {
		Room     json.RawMessage `json:"room"`
		Text     string          `json:"text"`
		ClientID string          `json:"client_id"`
	}
	err = decodeData(data, &in)
	if err != nil {
		return in.ClientID, err
	}
	room, err := r.room(ctx, in.Room)
	if err != nil {
		return in.ClientID, err
	}
	if err := r.h.mayPost(ctx, r.user, room); err != nil {
		return in.ClientID, err
	}
	m, err := r.h.send(ctx, r.user, room, in.Text, in.ClientID)
	if err != nil {
		return in.ClientID, err
	}
	if m.UserID != r.user.ID {
		return in.ClientID, errClientIDTaken
	}
	r.w.command(apiCommand{op: apiFrame, frame: encodeEvent("ack", jsonAck{ClientID: in.ClientID, ID: m.ID, Room: room.ID})})
	return in.ClientID, nil
}

// errClientIDTaken: client ids are unique per room, and another user's message has this one.
var errClientIDTaken = fiber.NewError(fiber.StatusConflict, "Another user's message in this room has that client id: use a new one.")
