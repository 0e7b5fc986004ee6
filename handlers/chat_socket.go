package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gofiber/contrib/websocket"
	"github.com/gofiber/fiber/v2"

	"switchboard/models"
	"switchboard/realtime"
	"switchboard/views"
)

const (
	writeWait     = 10 * time.Second // time allowed to write one frame
	pongWait      = 60 * time.Second // a peer silent for this long is gone (server pings come every 9/10 of it)
	closeGrace    = time.Second      // after our close frame, how long to wait for the peer's
	maxFrame      = 64 << 10         // read limit: a larger message closes the socket with 1009
	sendQueue     = 256              // a subscriber's bounded queue; a full queue drops the client (1013)
	replayLimit   = 500              // a reconnect that missed more gets the newest page instead
	noReplay      = int64(-1)        // the socket did not ask for a replay
	markReadEvery = 2 * time.Second  // how soon after a burst of messages an open room marks them read
	typingFor     = 5 * time.Second  // a "typing" notice shows this long unless renewed
	typingEvery   = 2 * time.Second  // a socket relays "typing" at most this often (pages send it every 3 s)
)

// socketConfig is the upgrader's configuration. Origins stay open here because requireSocket checks the Origin
// itself, before the upgrade, and answers 403 (the library would answer 426).
func socketConfig(log *slog.Logger, writeBuffers *sync.Pool) websocket.Config {
	return websocket.Config{
		ReadBufferSize:  1024,
		WriteBufferSize: 1024,
		// Data frames go straight to the connection (socket.write); the library's writer serves only the rare
		// control frame, so its buffer comes from a pool instead of living with every connection.
		WriteBufferPool: writeBuffers,
		RecoverHandler:  recoverSocket(log),
	}
}

// recoverSocket turns a panic in a socket handler into close 1011 with a generic reason; the panic text is logged,
// never sent.
func recoverSocket(log *slog.Logger) func(*websocket.Conn) {
	return func(conn *websocket.Conn) {
		if r := recover(); r != nil {
			log.Error("socket handler panicked", slog.String("panic", fmt.Sprint(r)), slog.String("stack", string(debug.Stack())))
			msg := websocket.FormatCloseMessage(websocket.CloseInternalServerErr, "internal error")
			_ = conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(writeWait))
		}
	}
}

// requireSocket refuses, before any upgrade, a request that is not an upgrade (426), has no session (401) or
// comes from a page of another site (403: cross-site WebSocket hijacking).
func (h *Handlers) requireSocket(c *fiber.Ctx) error {
	if !websocket.IsWebSocketUpgrade(c) {
		return fiber.ErrUpgradeRequired
	}
	if viewer(c) == nil {
		return fiber.NewError(fiber.StatusUnauthorized, "Sign in first.")
	}
	if !h.originAllowed(c.Get("Origin"), string(c.Request().Host())) {
		h.log.Warn("socket refused: foreign origin", slog.String("origin", c.Get("Origin")), slog.String("ip", c.IP()))
		return fiber.NewError(fiber.StatusForbidden, "This origin may not connect.")
	}
	return c.Next()
}

// originAllowed accepts the page's own host and the configured origins. A request without Origin is not from a
// browser page (browsers always send it on WebSockets), so it cannot be a hijack and is let through.
func (h *Handlers) originAllowed(origin, host string) bool {
	if origin == "" || h.origins[origin] {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return false
	}
	return strings.EqualFold(u.Host, host)
}

// checkRoomSocket checks the room before the upgrade: it must exist (404) and the user may enter it (403).
func (h *Handlers) checkRoomSocket(c *fiber.Ctx) error {
	room, err := h.enterRoom(c.UserContext(), viewer(c), c.Params("id"), true)
	if err != nil {
		return err
	}
	after := noReplay
	if s := c.Query("after"); s != "" {
		if after, err = strconv.ParseInt(s, 10, 64); err != nil || after < 0 {
			return fiber.NewError(fiber.StatusBadRequest, "after must be a message id")
		}
	}
	c.Locals("room", room)
	c.Locals("after", after)
	return c.Next()
}

// roomSocket is a room's live connection: it replays what the page missed, then carries the room's messages,
// people and notices, the user's own events, and the user's sends.
func (h *Handlers) roomSocket(conn *websocket.Conn) {
	ctx := context.Background()
	u := conn.Locals("viewer").(*models.User)
	room := conn.Locals("room").(models.Room)
	session := conn.Locals("session").(sessionRef)
	if err := h.openConn(connRoomSocket, u.ID, session); err != nil {
		refuseSocket(conn, err)
		return
	}
	defer h.closeConn(connRoomSocket, u.ID, session)

	// The setup's queries and renders run on a spare goroutine, so this connection's goroutine keeps a small stack.
	var (
		sub         *realtime.Subscriber
		first       []byte
		skip        int64
		err         error
		setupFailed string
	)
	onSpareStack(func() {
		var rooms []models.RoomListItem
		sub, rooms, err = h.subscribeSocket(ctx, u, session.Topic, room.ID)
		if err != nil {
			setupFailed = "socket subscribe"
			return
		}
		// Subscribed before the replay query: a message stored meanwhile is both replayed and queued, and the
		// writer skips the queued copy by id.
		var replay []byte
		replay, skip, err = h.replay(ctx, room.ID, conn.Locals("after").(int64))
		if err != nil {
			setupFailed = "socket replay"
			return
		}
		first = append(h.fragment(ctx, views.RoomList(roomLinks(rooms, room.ID), true)), replay...)
		h.presence.Connect(room.ID, u.ID)
		h.gaps.enter(h, room.ID)
	})
	if sub != nil {
		defer h.hub.Unsubscribe(sub)
	}
	if err != nil {
		h.log.Error(setupFailed, slog.Any("error", err))
		closeSocket(conn, websocket.CloseInternalServerErr, "internal error")
		return
	}
	defer h.presence.Disconnect(room.ID, u.ID)
	defer h.gaps.leave(room.ID)

	markRead := func(id int64) { h.marks.note(room.ID, u.ID, id) }
	s := h.startSocket(conn, sub, first, skip, markRead)
	defer func() {
		if last := s.stop(); last > 0 {
			markRead(last)
		}
	}()
	failed := false
	var typed time.Time // when this socket last relayed "typing"
	s.readLoop(func(data []byte) int {
		var in struct {
			Text     string `json:"text"`
			ClientID string `json:"client_id"`
			Typing   bool   `json:"typing"`
		}
		if !utf8.Valid(data) {
			return websocket.CloseInvalidFramePayloadData
		}
		if err := json.Unmarshal(data, &in); err != nil {
			failed = true
			sub.Offer(&realtime.Message{Data: h.fragment(ctx, views.ComposeError("That message could not be read. Reload the page.", ""))})
			return 0
		}
		if in.Typing {
			if time.Since(typed) >= typingEvery {
				typed = time.Now()
				until := typed.Add(typingFor).UnixMilli()
				h.publish(ctx, &realtime.Message{Topic: roomTopic(room.ID), Data: h.fragment(ctx, views.Typing(u.Username, until))})
			}
			return 0
		}
		// The room comes from the URL only; access is checked again on every send.
		if err := h.mayPost(ctx, u, room); err != nil {
			var fe *fiber.Error
			if errors.As(err, &fe) {
				return websocket.ClosePolicyViolation // no longer allowed: the page does not reconnect
			}
			h.log.Error("socket access check", slog.Any("error", err))
			return websocket.CloseInternalServerErr // a fault: the page reconnects
		}
		_, err := h.send(ctx, u, room, in.Text, in.ClientID)
		var fe *fiber.Error
		switch {
		case errors.As(err, &fe):
			failed = true
			sub.Offer(&realtime.Message{Data: h.fragment(ctx, views.ComposeError(fe.Message, in.ClientID))})
		case err != nil:
			h.log.Error("socket send", slog.Int64("room", room.ID), slog.Any("error", err))
			failed = true
			sub.Offer(&realtime.Message{Data: h.fragment(ctx, views.ComposeError("Your message was not sent. Try again.", in.ClientID))})
		case failed:
			failed = false
			sub.Offer(&realtime.Message{Data: h.fragment(ctx, views.ComposeError("", ""))})
		}
		return 0
	})
}

// userSocket is the live connection of pages other than a room: the user's own events and unread marks.
func (h *Handlers) userSocket(conn *websocket.Conn) {
	ctx := context.Background()
	u := conn.Locals("viewer").(*models.User)
	session := conn.Locals("session").(sessionRef)
	if err := h.openConn(connUserSocket, u.ID, session); err != nil {
		refuseSocket(conn, err)
		return
	}
	defer h.closeConn(connUserSocket, u.ID, session)
	var (
		sub   *realtime.Subscriber
		first []byte
		err   error
	)
	onSpareStack(func() { // as in roomSocket: keep this goroutine's stack small
		var rooms []models.RoomListItem
		if sub, rooms, err = h.subscribeSocket(ctx, u, session.Topic, 0); err == nil {
			first = h.fragment(ctx, views.RoomList(roomLinks(rooms, 0), false))
		}
	})
	if err != nil {
		h.log.Error("socket subscribe", slog.Any("error", err))
		closeSocket(conn, websocket.CloseInternalServerErr, "internal error")
		return
	}
	defer h.hub.Unsubscribe(sub)
	s := h.startSocket(conn, sub, first, 0, nil)
	defer s.stop()
	s.readLoop(func([]byte) int { return 0 })
}

// subscribeSocket subscribes a socket to what it listens to: the user's and the session's topics, the open room,
// and the activity (unread marks) of the user's other rooms; direct rooms mark unread on the user's own topic
// instead. It subscribes first and then lists the rooms (returned for the socket's first frame), so nothing
// published in between is missed.
func (h *Handlers) subscribeSocket(ctx context.Context, u *models.User, session string, current int64) (*realtime.Subscriber, []models.RoomListItem, error) {
	topics := []string{userTopic(u.ID), session, kickTopic(u.ID)}
	if current != 0 {
		topics = append(topics, roomTopic(current))
	}
	sub := h.hub.Subscribe(sendQueue, topics...)
	items, err := h.store.RoomsForUser(ctx, u.ID)
	if err != nil {
		h.hub.Unsubscribe(sub)
		return nil, nil, err
	}
	var activity []string
	for _, it := range items {
		if it.Member && it.Kind != models.RoomDirect && it.ID != current {
			activity = append(activity, activityTopic(it.ID))
		}
	}
	h.hub.AddTopics(sub, activity...)
	return sub, items, nil
}

// replay renders what a reconnecting page missed: every message after `after` in one frame, or past replayLimit
// the newest page in place of the whole list. skip is the newest message id the page then has.
func (h *Handlers) replay(ctx context.Context, roomID, after int64) (first []byte, skip int64, err error) {
	if after == noReplay {
		return nil, 0, nil
	}
	msgs, err := h.store.MessagesAfter(ctx, roomID, after, replayLimit+1)
	if err != nil || len(msgs) == 0 {
		return nil, after, err
	}
	if len(msgs) <= replayLimit {
		h.metrics.replays.WithLabelValues("gap").Inc()
		return h.fragment(ctx, views.MessagesAppend(toMessages(msgs))), msgs[len(msgs)-1].ID, nil
	}
	h.metrics.replays.WithLabelValues("page").Inc()
	recent, err := h.store.RecentMessages(ctx, roomID, pageSize+1)
	if err != nil {
		return nil, 0, err
	}
	hasOlder := len(recent) > pageSize
	if hasOlder {
		recent = recent[1:]
	}
	return h.fragment(ctx, views.MessagesReplace(roomID, toMessages(recent), hasOlder)), recent[len(recent)-1].ID, nil
}

// socket runs one WebSocket: the handler's goroutine reads, and exactly one writer goroutine writes everything
// else (messages, pings, pongs, the close frame). The handler returns only after the writer has exited, because
// the connection is recycled once it returns.
//
// The writer writes ready-made frames straight to the network connection: each message's frame is built once
// and shared by every connection (Message.TextFrame), and the messages queued when the writer wakes go out in one
// write. Every write is one whole frame or several, so they never interleave with the library's own control
// frames (the reply to a close, 1009 on an oversize message), which are single writes too.
type socket struct {
	conn    *websocket.Conn
	nc      net.Conn // the network connection under conn, which the writer writes frames to
	sub     *realtime.Subscriber
	skip    int64         // queued room messages with an id up to this were replayed already
	lastID  atomic.Int64  // the newest room message written
	closing atomic.Bool   // the writer sent a close frame: the reader must not extend its deadline
	pongs   chan []byte   // pings from the peer, answered by the writer
	stopped chan struct{} // closed when the reader is finished
	done    chan struct{} // closed when the writer has exited

	pongWait time.Duration  // a peer silent this long is gone
	markRead func(id int64) // called a little after room messages are written, with the newest (nil: no room)
	marking  atomic.Bool    // a markRead is scheduled

	deadline time.Time // the write deadline set on the connection (writer only)
	batch    []byte    // frames gathered for one write (writer only)
}

const maxBatch = 64 // queued messages written together at most

func (h *Handlers) startSocket(conn *websocket.Conn, sub *realtime.Subscriber, first []byte, skip int64, markRead func(int64)) *socket {
	s := &socket{conn: conn, nc: conn.NetConn(), sub: sub, skip: skip, pongs: make(chan []byte, 1), stopped: make(chan struct{}),
		done: make(chan struct{}), pongWait: h.pongWait, markRead: markRead}
	// A client too slow to keep up is dropped now, not when its stuck write times out: that write is cut short.
	sub.OnClose(func(code int) {
		if code == realtime.CloseTryAgainLater {
			_ = conn.NetConn().SetWriteDeadline(time.Now())
		}
	})
	go s.writeLoop(first)
	return s
}

// stop ends the writer, waits for it, and returns the newest room message it wrote.
func (s *socket) stop() int64 {
	close(s.stopped)
	<-s.done
	return s.lastID.Load()
}

var pingFrame = []byte{0x89, 0x00} // an empty ping

// writeLoop is the connection's only writer.
func (s *socket) writeLoop(first []byte) {
	defer close(s.done)
	ping := time.NewTicker(s.pongWait * 9 / 10) // pings keep proxies open and find dead peers
	defer ping.Stop()
	if first != nil && s.write(realtime.AppendTextFrame(nil, first)) != nil {
		return
	}
	for {
		select {
		case m := <-s.sub.C():
			if frames := s.gather(m); frames != nil && s.write(frames) != nil {
				return
			}
		case p := <-s.pongs:
			if s.write(append([]byte{0x8A, byte(len(p))}, p...)) != nil {
				return
			}
		case <-ping.C:
			if s.write(pingFrame) != nil {
				return
			}
		case <-s.sub.Done():
			code := s.sub.CloseCode()
			s.closing.Store(true)
			msg := websocket.FormatCloseMessage(code, closeReason(code))
			_ = s.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(writeWait))
			_ = s.conn.SetReadDeadline(time.Now().Add(closeGrace))
			return
		case <-s.stopped:
			return
		}
	}
}

// gather returns the frames to write for m and whatever else is queued already (up to maxBatch more), skipping
// what the replay sent. One message is written from its shared frame; several are copied into one buffer.
func (s *socket) gather(m *realtime.Message) []byte {
	var one []byte
	s.batch = s.batch[:0]
	for n := 0; ; n++ {
		if m.ID == 0 || m.ID > s.skip {
			if m.ID > s.lastID.Load() {
				s.lastID.Store(m.ID)
				s.scheduleMarkRead()
			}
			switch {
			case one == nil && len(s.batch) == 0:
				one = m.TextFrame()
			case one != nil:
				s.batch = append(append(s.batch, one...), m.TextFrame()...)
				one = nil
			default:
				s.batch = append(s.batch, m.TextFrame()...)
			}
		}
		if n == maxBatch {
			break
		}
		var more bool
		select {
		case m = <-s.sub.C():
			more = true
		default:
		}
		if !more {
			break
		}
	}
	if one != nil {
		return one
	}
	if len(s.batch) == 0 {
		return nil
	}
	return s.batch
}

// scheduleMarkRead moves the reader's last-read mark a little later, off the writer (a database write must not
// delay frames), once per burst: the mark then covers the burst's last message.
func (s *socket) scheduleMarkRead() {
	if s.markRead == nil || !s.marking.CompareAndSwap(false, true) {
		return
	}
	time.AfterFunc(markReadEvery, func() {
		s.marking.Store(false)
		select {
		case <-s.done: // stop marks the last one itself
		default:
			s.markRead(s.lastID.Load())
		}
	})
}

// write sends whole frames; on failure it unblocks the reader so the handler can finish. The write deadline is
// moved only when it is more than half used, which saves a timer update per write.
func (s *socket) write(frames []byte) error {
	if s.nc == nil {
		s.nc = s.conn.NetConn()
	}
	now := time.Now()
	if s.deadline.Sub(now) < writeWait/2 {
		s.deadline = now.Add(writeWait)
		_ = s.nc.SetWriteDeadline(s.deadline)
	}
	_, err := s.nc.Write(frames)
	if err != nil {
		s.closing.Store(true)
		_ = s.conn.SetReadDeadline(time.Now())
	}
	if cap(s.batch) > 64<<10 {
		s.batch = nil // a big burst's buffer is not kept for the connection's life
	}
	return err
}

// readLoop reads until the peer goes away, a deadline passes, or handle returns a close code.
func (s *socket) readLoop(handle func([]byte) int) {
	s.conn.SetReadLimit(maxFrame)
	extend := func(string) error {
		if !s.closing.Load() {
			return s.conn.SetReadDeadline(time.Now().Add(s.pongWait))
		}
		return nil
	}
	_ = extend("")
	s.conn.SetPongHandler(extend)
	// The writer answers pings, so that every data write stays with one goroutine.
	s.conn.SetPingHandler(func(data string) error {
		select {
		case s.pongs <- []byte(data):
		default: // a pong is on its way already
		}
		return nil
	})
	for {
		kind, data, err := s.conn.ReadMessage()
		if err != nil {
			return
		}
		_ = extend("")
		if kind != websocket.TextMessage {
			s.closeBy(websocket.CloseUnsupportedData)
			return
		}
		if code := handle(data); code != 0 {
			s.closeBy(code)
			return
		}
	}
}

// onSpareStack runs f on a short-lived goroutine and waits for it. A connection's goroutine lives as long as the
// connection, and a stack that grew stays grown for a while; a connection's setup (queries, renders) grows the
// spare goroutine's stack instead, which the runtime takes back when it exits. A panic in f panics here.
func onSpareStack(f func()) {
	done := make(chan struct{})
	var p any
	go func() {
		defer func() {
			p = recover()
			close(done)
		}()
		f()
	}()
	<-done
	if p != nil {
		panic(p)
	}
}

// closeBy has the writer send the close frame (it is the only one that writes) and waits until it has.
func (s *socket) closeBy(code int) {
	s.sub.Close(code)
	<-s.done
}

// refuseSocket closes a socket that may not open, with the code its refusal names.
func refuseSocket(conn *websocket.Conn, err error) {
	code, reason := websocket.CloseInternalServerErr, "internal error"
	var refused errConnRefused
	if errors.As(err, &refused) {
		code, reason = refused.Code, refused.Reason
	}
	closeSocket(conn, code, reason)
}

// closeSocket sends a close frame; WriteControl is the one write that is safe beside the writer goroutine.
func closeSocket(conn *websocket.Conn, code int, reason string) {
	_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(writeWait))
}

func closeReason(code int) string {
	switch code {
	case realtime.CloseServiceRestart:
		return "server restart"
	case realtime.CloseTryAgainLater:
		return "too slow, reconnect"
	case realtime.ClosePolicyViolation:
		return "signed out or not allowed"
	case websocket.CloseInvalidFramePayloadData:
		return "invalid UTF-8"
	case websocket.CloseUnsupportedData:
		return "text only"
	}
	return ""
}
