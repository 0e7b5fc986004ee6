package handlers_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func TestTypingIsRelayedAndThrottled(t *testing.T) {
	srv := newTestServer(t)
	ana, bob := srv.signup("ana"), srv.signup("bob")
	path := fmt.Sprintf("/rooms/%d/ws", srv.roomID("general", srv.user("ana").ID))
	a, b := ana.mustDial(path), bob.mustDial(path)
	frames(b, 300*time.Millisecond)
	for i := 0; i < 3; i++ {
		if err := a.Write(context.Background(), websocket.MessageText, []byte(`{"typing":true}`)); err != nil {
			t.Fatal(err)
		}
	}
	got := readUntil(t, b, `data-typer="ana"`)
	if !strings.Contains(got, `hx-swap-oob="beforeend:#typers"`) {
		t.Fatalf("typing fragment: %s", got)
	}
	if fs := frames(b, 500*time.Millisecond); count(fs, "data-typer") != 0 {
		t.Fatalf("typing relayed more than once within the throttle: %v", fs)
	}
	if n := textMessages(t, srv, srv.roomID("general", srv.user("ana").ID)); n != 0 {
		t.Fatalf("typing stored %d messages", n)
	}
}

func TestRoomPageGroupsByAuthorAndMinute(t *testing.T) {
	srv := newTestServer(t)
	ana, bob := srv.signup("ana"), srv.signup("bob")
	room := fmt.Sprintf("/rooms/%d", srv.roomID("general", srv.user("ana").ID))
	bob.get(room)
	for _, p := range []struct {
		c    *client
		text string
	}{{ana, "one"}, {ana, "two"}, {bob, "three"}, {ana, "four"}} {
		p.c.post(room+"/messages", url.Values{"text": {p.text}})
	}
	_, body := ana.get(room)
	grouped := func(text string) bool {
		i := strings.Index(body, ">"+text+"</p>")
		start := strings.LastIndex(body[:i], "<article")
		return strings.Contains(body[start:i], "grouped")
	}
	msgs, _ := srv.Store.RecentMessages(context.Background(), srv.roomID("general", srv.user("ana").ID), 10)
	sameMinute := len(msgs) >= 2 && msgs[len(msgs)-4].CreatedAt.Truncate(time.Minute).Equal(msgs[len(msgs)-3].CreatedAt.Truncate(time.Minute))
	if grouped("one") || grouped("two") != sameMinute || grouped("three") || grouped("four") {
		t.Fatalf("grouping: one=%v two=%v three=%v four=%v", grouped("one"), grouped("two"), grouped("three"), grouped("four"))
	}
}
