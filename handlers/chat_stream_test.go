package handlers_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// The SSE fallback carries the same fragments as the socket, with id: = message id, so a browser whose
// WebSockets are blocked stays live and resumes with Last-Event-ID.
func TestRoomStreamFallback(t *testing.T) {
	srv := newTestServer(t)
	ana, bob := srv.signup("ana"), srv.signup("bob")
	general := srv.roomID("general", srv.user("ana").ID)
	room := fmt.Sprintf("/rooms/%d", general)
	bob.get(room)
	var ids []string
	for i := 1; i <= 3; i++ {
		resp, _ := ana.post(room+"/messages", url.Values{"text": {fmt.Sprintf("before %d", i)}, "client_id": {fmt.Sprintf("c-%d", i)}})
		ids = append(ids, strings.TrimPrefix(resp.Header.Get("Location"), room+"#msg-"))
	}

	st := bob.openStream(room+"/stream?after="+ids[0], nil)
	first := st.next(t)
	if !strings.Contains(first.Data, `id="room-list"`) || !strings.Contains(first.Data, "before 2") || !strings.Contains(first.Data, "before 3") || strings.Contains(first.Data, "before 1<") {
		t.Fatalf("first event should hold the room list and the gap: %+v", first)
	}
	if first.ID != ids[2] || first.Event != "" {
		t.Fatalf("first event id %q, want %s (a plain message event)", first.ID, ids[2])
	}
	// A send through the POST route (what the page does in this mode) comes back on the stream with its id.
	resp, _ := bob.do("POST", room+"/messages", strings.NewReader(url.Values{"text": {"via post"}, "client_id": {"c-bob"}, "_csrf": {bob.csrf}}.Encode()),
		http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "HX-Request": {"true"}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("htmx post: %d", resp.StatusCode)
	}
	var live sseEvent
	for !strings.Contains(live.Data, "via post") {
		live = st.next(t)
	}
	if live.ID == "" || !strings.Contains(live.Data, `data-client-id="c-bob"`) || !strings.Contains(live.Data, `hx-swap-oob="beforeend:#messages"`) {
		t.Fatalf("live event: %+v", live)
	}
	// Resuming with Last-Event-ID replays only what came after it.
	resumed := bob.openStream(room+"/stream", http.Header{"Last-Event-ID": {ids[1]}})
	if ev := resumed.next(t); !strings.Contains(ev.Data, "before 3") || strings.Contains(ev.Data, "before 2<") || !strings.Contains(ev.Data, "via post") {
		t.Fatalf("resume: %+v", ev)
	}
	// Logging out ends the stream.
	bob.post("/logout", nil)
	select {
	case <-st.ended:
	case <-time.After(2 * time.Second):
		t.Fatal("stream open 2 s after logout")
	}
	if resp, _, _ := srv.newClient().streamRequest(room+"/stream", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("signed out: %d", resp.StatusCode)
	}
}
