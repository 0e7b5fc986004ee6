package handlers

import (
	"bufio"
	"context"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"switchboard/realtime"
	"switchboard/views"
)

// roomStream is a room's live connection for browsers whose WebSockets are blocked (a proxy that refuses the
// upgrade): the same fragments as the socket, as SSE, with id: = the message id so Last-Event-ID resumes; sends
// go through POST /rooms/:id/messages. It needs no sticky sessions: any instance can serve it.
func (h *Handlers) roomStream(c *fiber.Ctx) error {
	ctx := context.Background()
	u := viewer(c)
	room, err := h.enterRoom(ctx, u, c.Params("id"), true)
	if err != nil {
		return err
	}
	after := noReplay
	for _, s := range []string{c.Query("after"), c.Get("Last-Event-ID")} {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil && n >= 0 {
			after = max(after, n)
		}
	}
	session, _ := c.Locals("session").(sessionRef)
	if err := h.openConn(connRoomStream, u.ID, session); err != nil {
		return streamRefused(err)
	}
	sub, rooms, err := h.subscribeSocket(ctx, u, session.Topic, room.ID)
	if err != nil {
		h.closeConn(connRoomStream, u.ID, session)
		return err
	}
	cutStuckWrites(sub, c.Context().Conn())
	replay, skip, err := h.replay(ctx, room.ID, after)
	if err != nil {
		h.hub.Unsubscribe(sub)
		h.closeConn(connRoomStream, u.ID, session)
		return err
	}
	first := append(h.fragment(ctx, views.RoomList(roomLinks(rooms, room.ID), true)), replay...)
	markRead := func(id int64) { h.marks.note(room.ID, u.ID, id) }
	streamHeaders(c)
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		defer h.closeConn(connRoomStream, u.ID, session)
		defer h.hub.Unsubscribe(sub)
		h.presence.Connect(room.ID, u.ID)
		defer h.presence.Disconnect(room.ID, u.ID)
		h.gaps.enter(h, room.ID)
		defer h.gaps.leave(room.ID)
		if last := writeRoomStream(w, sub, first, skip, h.beat, markRead); last > 0 {
			markRead(last)
		}
	})
	return nil
}

// writeRoomStream writes the first frame, then every queued fragment in order (a room's messages are never
// conflated), and heartbeats (which also move the reader's last-read mark), until the subscriber closes or a
// flush fails. It returns the newest message id written.
func writeRoomStream(w *bufio.Writer, sub *realtime.Subscriber, first []byte, skip int64, beat time.Duration, markRead func(int64)) int64 {
	last, marked := skip, skip
	writeRetry(w)
	w.Write(sseEvent("", uint64(max(skip, 0)), first))
	if w.Flush() != nil {
		return 0
	}
	heartbeat := time.NewTicker(beat)
	defer heartbeat.Stop()
	for {
		select {
		case m := <-sub.C():
			if m.ID != 0 && m.ID <= skip {
				continue // replayed already; a later message that arrives late still goes out (pages order by id)
			}
			w.Write(sseEvent("", uint64(max(m.ID, 0)), m.Data)) // only room messages have ids

			if w.Flush() != nil {
				return last
			}
			last = max(last, m.ID)
		case <-heartbeat.C:
			if last > marked { // at most one read mark per heartbeat, off the hot path
				marked = last
				go markRead(last)
			}
			if _, err := w.WriteString(": ping\n\n"); err != nil || w.Flush() != nil {
				return last
			}
		case <-sub.Done():
			return last
		}
	}
}
