package handlers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"switchboard/handlers"
	"switchboard/models"
)

// bot is a program with an API token: a signed-up user whose token was made on the settings page.
type bot struct {
	*client
	token string
}

func (s *testServer) newBot(name string) *bot {
	s.t.Helper()
	c := s.signup(name)
	return &bot{client: c, token: c.createToken("bot")}
}

// apiConn is a test client of GET /api/ws.
type apiConn struct {
	*wsConn
	t *testing.T
}

// apiData holds the data of any server event; each event fills its own fields.
type apiData struct {
	ID        int64  `json:"id"`
	Room      int64  `json:"room"`
	RoomName  string `json:"room_name"`
	Kind      string `json:"kind"`
	User      string `json:"user"`
	Text      string `json:"text"`
	ClientID  string `json:"client_id"`
	CreatedAt string `json:"created_at"`
	After     int64  `json:"after"`
	Message   string `json:"message"`
	Event     string `json:"event"`
	Status    int    `json:"status"`
}

type apiFrame struct {
	Event string  `json:"event"`
	Data  apiData `json:"data"`
	Raw   string  `json:"-"`
}

// dialAPI opens /api/ws with the given headers.
func dialAPI(t *testing.T, srv *testServer, header http.Header) (*apiConn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/api/ws", &websocket.DialOptions{HTTPHeader: header})
	if err != nil {
		return nil, resp, err
	}
	return &apiConn{wsConn: newWSConn(t, conn), t: t}, resp, nil
}

// dial opens /api/ws authenticated by the bot's token in the Authorization header.
func (b *bot) dial(t *testing.T) *apiConn {
	t.Helper()
	c, resp, err := dialAPI(t, b.srv, http.Header{"Authorization": {"Bearer " + b.token}})
	if err != nil {
		t.Fatalf("dial /api/ws: %v (response %v)", err, resp)
	}
	return c
}

// emit sends one event.
func (c *apiConn) emit(event string, data any) {
	c.t.Helper()
	b, err := json.Marshal(map[string]any{"event": event, "data": data})
	if err != nil {
		c.t.Fatal(err)
	}
	c.raw(string(b))
}

func (c *apiConn) raw(frame string) {
	c.t.Helper()
	if err := c.Write(context.Background(), websocket.MessageText, []byte(frame)); err != nil {
		c.t.Fatal(err)
	}
}

// next returns the next frame, failing after 5 s.
func (c *apiConn) next() apiFrame {
	c.t.Helper()
	select {
	case s := <-c.in:
		var f apiFrame
		if err := json.Unmarshal([]byte(s), &f); err != nil {
			c.t.Fatalf("not a JSON event: %q", s)
		}
		f.Raw = s
		return f
	case <-c.closed:
		c.t.Fatalf("socket closed: %v", c.err)
	case <-time.After(5 * time.Second):
		c.t.Fatal("no frame after 5 s")
	}
	return apiFrame{}
}

// await skips frames until one of the event and returns its data.
func (c *apiConn) await(event string) apiData {
	c.t.Helper()
	for {
		if f := c.next(); f.Event == event {
			return f.Data
		}
	}
}

// join joins a room (a name or an id) and waits until the server confirms.
func (c *apiConn) join(room any) apiData {
	c.t.Helper()
	c.emit("join_room", map[string]any{"room": room})
	return c.await("joined")
}

// quiet returns the frames of the event that arrive within d.
func (c *apiConn) quiet(event string, d time.Duration) []apiData {
	var out []apiData
	for _, s := range frames(c.wsConn, d) {
		var f apiFrame
		if json.Unmarshal([]byte(s), &f) == nil && f.Event == event {
			out = append(out, f.Data)
		}
	}
	return out
}

// apiRequest makes a REST call with an optional bearer token and extra headers.
func apiRequest(t *testing.T, srv *testServer, method, path, token, body string, header http.Header) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// postAPI posts a message by REST and returns the stored message.
func (b *bot) post(t *testing.T, room int64, text, clientID string) apiData {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"text": text, "client_id": clientID})
	status, resp, _ := apiRequest(t, b.srv, http.MethodPost, fmt.Sprintf("/api/rooms/%d/messages", room), b.token, string(body), nil)
	if status != http.StatusCreated {
		t.Fatalf("post %q: %d %s", text, status, resp)
	}
	var m apiData
	if err := json.Unmarshal([]byte(resp), &m); err != nil {
		t.Fatalf("post answer %q: %v", resp, err)
	}
	return m
}

func TestAPISocketJoinSendReceiveAck(t *testing.T) {
	srv := newTestServer(t)
	ana, bob := srv.newBot("ana"), srv.newBot("bob")
	general := srv.roomID("general", srv.user("ana").ID)
	a, b := ana.dial(t), bob.dial(t)

	if j := a.join("general"); j.Room != general || j.RoomName != "general" || j.Kind != "open" {
		t.Fatalf("joined: %+v", j)
	}
	if j := b.join(general); j.Room != general { // by id
		t.Fatalf("joined by id: %+v", j)
	}
	if j := a.await("user_joined"); j.User != "bob" || j.Room != general || j.RoomName != "general" || j.ID == 0 {
		t.Fatalf("user_joined: %+v", j)
	}

	a.emit("send_message", map[string]any{"room": "general", "text": "hi <b>there</b>", "client_id": "c-1"})
	// The sender sees its message, then the ack with the same id.
	var echo, ack apiData
	for ack.ID == 0 {
		switch f := a.next(); f.Event {
		case "new_message":
			echo = f.Data
		case "ack":
			ack = f.Data
		}
	}
	if echo.ID == 0 || echo.ID != ack.ID || ack.ClientID != "c-1" || ack.Room != general {
		t.Fatalf("echo %+v then ack %+v", echo, ack)
	}
	got := b.await("new_message")
	if got.ID != ack.ID || got.User != "ana" || got.Text != "hi <b>there</b>" || got.ClientID != "c-1" ||
		got.Room != general || got.RoomName != "general" || got.Kind != "text" {
		t.Fatalf("new_message %+v, ack %+v", got, ack)
	}
	at, err := time.Parse(time.RFC3339, got.CreatedAt)
	if err != nil || time.Since(at) > time.Minute || time.Since(at) < -time.Minute {
		t.Fatalf("created_at %q: %v", got.CreatedAt, err)
	}
	if n := len(b.quiet("new_message", 300*time.Millisecond)); n != 0 {
		t.Fatalf("bob got %d more new_message", n)
	}
	// Joining made both members, as opening the room does; reading the pushes marked the room read.
	if _, err := srv.Store.Membership(context.Background(), general, srv.user("bob").ID); err != nil {
		t.Fatalf("bob is not a member: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second) // read marks are saved in batches every few seconds
	for {
		m, _ := srv.Store.Membership(context.Background(), general, srv.user("bob").ID)
		if m.LastReadID == got.ID {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("bob's read mark %d, want %d", m.LastReadID, got.ID)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestAPISocketAckComesWithTheStoredID(t *testing.T) {
	srv := newTestServer(t)
	ana := srv.newBot("ana")
	a := ana.dial(t)
	// Sending needs no join: no new_message follows, only the ack.
	a.emit("send_message", map[string]any{"room": "general", "text": "no echo", "client_id": "c-9"})
	ack := a.await("ack")
	msgs, err := srv.Store.RecentMessages(context.Background(), srv.roomID("general", srv.user("ana").ID), 1)
	if err != nil || len(msgs) != 1 || ack.ID != msgs[0].ID || ack.ClientID != "c-9" || msgs[0].Text != "no echo" {
		t.Fatalf("ack %+v, stored %+v %v", ack, msgs, err)
	}
	if n := len(a.quiet("new_message", 300*time.Millisecond)); n != 0 {
		t.Fatalf("%d new_message for a room not joined", n)
	}
}

func TestAPISocketResumeGetsExactlyTheGap(t *testing.T) {
	srv := newTestServer(t, noSendLimit)
	ana, bob := srv.newBot("ana"), srv.newBot("bob")
	general := srv.roomID("general", srv.user("ana").ID)
	bob.post(t, general, "bob is here", "") // bob's join notice comes before ana's socket
	a := ana.dial(t)
	a.join("general")
	var last int64
	for i := range 3 {
		m := bob.post(t, general, fmt.Sprintf("before %d", i), "")
		if got := a.await("new_message"); got.ID != m.ID {
			t.Fatalf("live: got %d, want %d", got.ID, m.ID)
		}
		last = m.ID
	}
	a.CloseNow()

	// Missed while away: more than two store batches, stored directly (nobody listens), so no wake-up helps.
	ctx := context.Background()
	bobID := srv.user("bob").ID
	for i := range 230 {
		if _, _, err := srv.Store.CreateMessage(ctx, models.NewMessage{RoomID: general, UserID: bobID, Text: fmt.Sprintf("gap %d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	a2 := ana.dial(t)
	a2.emit("resume", map[string]any{"room": "general", "after": last})
	if j := a2.await("joined"); j.After != last {
		t.Fatalf("joined after %d, want %d", j.After, last)
	}
	last = expectExactly(t, srv, a2, general, last, 230)

	// Again, with live messages stored while the socket replays the gap.
	a2.CloseNow()
	for i := range 30 {
		bob.post(t, general, fmt.Sprintf("gap2 %d", i), "")
	}
	liveDone := make(chan struct{})
	go func() {
		defer close(liveDone)
		for i := range 20 {
			bob.post(t, general, fmt.Sprintf("live %d", i), fmt.Sprintf("l-%d", i))
		}
	}()
	a3 := ana.dial(t)
	a3.emit("resume", map[string]any{"room": general, "after": last})
	<-liveDone
	expectExactly(t, srv, a3, general, last, 50)
	// And then live.
	m := bob.post(t, general, "after the resume", "")
	if got := a3.await("new_message"); got.ID != m.ID {
		t.Fatalf("live after resume: %+v", got)
	}
}

// expectExactly reads new_message events and checks they are the n messages stored after `after`, in order, and
// that nothing follows; it returns the last id.
func expectExactly(t *testing.T, srv *testServer, c *apiConn, room, after int64, n int) int64 {
	t.Helper()
	want, err := srv.Store.MessagesAfter(context.Background(), room, after, 1000)
	if err != nil || len(want) != n {
		t.Fatalf("stored after %d: %d, %v", after, len(want), err)
	}
	for i, w := range want {
		got := c.await("new_message")
		if got.ID != w.ID || got.Text != w.Text {
			t.Fatalf("message %d: got %d %q, want %d %q", i, got.ID, got.Text, w.ID, w.Text)
		}
	}
	if extra := c.quiet("new_message", 300*time.Millisecond); len(extra) != 0 {
		t.Fatalf("%d messages after the gap, first %+v", len(extra), extra[0])
	}
	return want[n-1].ID
}

func TestAPISocketIdempotentResend(t *testing.T) {
	srv := newTestServer(t)
	ana, bob := srv.newBot("ana"), srv.newBot("bob")
	general := srv.roomID("general", srv.user("ana").ID)
	a, b := ana.dial(t), bob.dial(t)
	a.join("general")
	b.join("general")
	send := map[string]any{"room": "general", "text": "only once", "client_id": "c-7"}
	a.emit("send_message", send)
	first := a.await("ack")
	a.emit("send_message", send)
	second := a.await("ack")
	if first.ID == 0 || second.ID != first.ID || second.ClientID != "c-7" {
		t.Fatalf("acks %+v and %+v", first, second)
	}
	got := b.quiet("new_message", 500*time.Millisecond)
	if len(got) != 1 || got[0].ID != first.ID {
		t.Fatalf("bob got %+v, want one new_message %d", got, first.ID)
	}
	if n := textMessages(t, srv, general); n != 1 {
		t.Fatalf("%d rows stored, want 1", n)
	}
}

func TestAPISocketBadEventsGetErrors(t *testing.T) {
	srv := newTestServer(t)
	ana, cat := srv.newBot("ana"), srv.signup("cat")
	resp, _ := cat.post("/rooms", url.Values{"name": {"Vault"}, "kind": {"private"}})
	var vault int64
	fmt.Sscanf(resp.Header.Get("Location"), "/rooms/%d", &vault)
	general := srv.roomID("general", srv.user("ana").ID)
	a := ana.dial(t)
	a.join("general")

	long := strings.Repeat("y", 4001)
	tests := []struct {
		name, frame, want, clientID string
		status                      int
	}{
		{"unknown event", `{"event":"dance","data":{}}`, "Unknown event", "", 400},
		{"no event", `{"data":{}}`, "event name is missing", "", 400},
		{"bad JSON", `{"event":"send_message","data":`, "not a JSON event", "", 400},
		{"data not an object", `{"event":"join_room","data":"general"}`, "must be a JSON object", "", 400},
		{"text as a number", `{"event":"send_message","data":{"room":"general","text":123,"client_id":"c-n"}}`, "text must be a string", "c-n", 400},
		{"room as an object", `{"event":"send_message","data":{"room":{},"text":"x"}}`, "room must be a room name or id", "", 400},
		{"missing room", `{"event":"send_message","data":{"text":"hi","client_id":"c-m"}}`, "room is required", "c-m", 400},
		{"missing room on join", `{"event":"join_room","data":{}}`, "room is required", "", 400},
		{"unknown room name", `{"event":"join_room","data":{"room":"nowhere"}}`, "no such room", "", 404},
		{"unknown room id", `{"event":"join_room","data":{"room":99999}}`, "no such room", "", 404},
		{"private room, not a member", fmt.Sprintf(`{"event":"join_room","data":{"room":%d}}`, vault), "members only", "", 403},
		{"send to a private room", fmt.Sprintf(`{"event":"send_message","data":{"room":%d,"text":"let me in","client_id":"c-p"}}`, vault), "members only", "c-p", 403},
		{"private room by name stays hidden", `{"event":"join_room","data":{"room":"vault"}}`, "no such room", "", 404},
		{"4001 characters", `{"event":"send_message","data":{"room":"general","text":"` + long + `","client_id":"c-l"}}`, "at most 4000 characters", "c-l", 422},
		{"empty text", `{"event":"send_message","data":{"room":"general","text":"  "}}`, "The message is empty.", "", 422},
		{"control characters", `{"event":"send_message","data":{"room":"general","text":"a\u0007b"}}`, "control characters", "", 422},
		{"resume without after", `{"event":"resume","data":{"room":"general"}}`, "after is required", "", 400},
		{"resume before zero", `{"event":"resume","data":{"room":"general","after":-3}}`, "after is required", "", 400},
		{"after as a string", `{"event":"resume","data":{"room":"general","after":"5"}}`, "after must be a number", "", 400},
		{"auth again", `{"event":"auth","data":{"token":"sb_x"}}`, "authenticated already", "", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a.t = t
			a.raw(tt.frame)
			e := a.await("error")
			if !strings.Contains(e.Message, tt.want) || e.Status != tt.status || e.ClientID != tt.clientID {
				t.Fatalf("error %+v, want %q, status %d, client id %q", e, tt.want, tt.status, tt.clientID)
			}
		})
	}
	a.t = t
	// The socket is still fine, and only the good message was stored.
	a.emit("send_message", map[string]any{"room": "general", "text": "fine now", "client_id": "c-ok"})
	if ack := a.await("ack"); ack.ClientID != "c-ok" {
		t.Fatalf("ack %+v", ack)
	}
	if n := textMessages(t, srv, general); n != 1 {
		t.Fatalf("%d messages stored in general, want 1", n)
	}
	if n := textMessages(t, srv, vault); n != 0 {
		t.Fatalf("%d messages stored in the private room", n)
	}
	// Invalid UTF-8 closes with 1007, as on the page socket.
	a.raw("{\"event\":\"send_message\",\"data\":{\"room\":\"general\",\"text\":\"\xff\"}}")
	if code := closeCode(t, a.wsConn); code != websocket.StatusInvalidFramePayloadData {
		t.Fatalf("invalid UTF-8: close %d, want 1007", code)
	}
}

func TestAPISocketRateLimitAndClientIDOfAnotherUser(t *testing.T) {
	srv := newTestServer(t, func(d *handlers.Deps) { d.SendRate, d.SendBurst = 0.001, 2 })
	ana, bob := srv.newBot("ana"), srv.newBot("bob")
	a, b := ana.dial(t), bob.dial(t)
	a.emit("send_message", map[string]any{"room": "general", "text": "one", "client_id": "same"})
	a.await("ack")
	b.emit("send_message", map[string]any{"room": "general", "text": "mine?", "client_id": "same"})
	if e := b.await("error"); e.Status != 409 || e.ClientID != "same" {
		t.Fatalf("another user's client id: %+v", e)
	}
	a.emit("send_message", map[string]any{"room": "general", "text": "two", "client_id": "c-2"})
	a.await("ack")
	a.emit("send_message", map[string]any{"room": "general", "text": "three", "client_id": "c-3"})
	if e := a.await("error"); e.Status != 429 || !strings.Contains(e.Message, "too fast") || e.ClientID != "c-3" {
		t.Fatalf("rate limit: %+v", e)
	}
	// REST shares the bucket.
	status, body, _ := apiRequest(t, srv, http.MethodPost, fmt.Sprintf("/api/rooms/%d/messages", srv.roomID("general", srv.user("ana").ID)),
		ana.token, `{"text":"four"}`, nil)
	if status != http.StatusTooManyRequests || !strings.Contains(body, `"error":"You're sending messages too fast.`) {
		t.Fatalf("REST over the limit: %d %s", status, body)
	}
}

func TestAPISocketAuthByFirstMessage(t *testing.T) {
	srv := newTestServer(t)
	ana := srv.newBot("ana")
	a, _, err := dialAPI(t, srv, nil)
	if err != nil {
		t.Fatal(err)
	}
	a.emit("auth", map[string]any{"token": ana.token})
	if j := a.join("general"); j.RoomName != "general" {
		t.Fatalf("joined %+v", j)
	}
	a.emit("send_message", map[string]any{"room": "general", "text": "authenticated in band", "client_id": "c-a"})
	if m := a.await("new_message"); m.User != "ana" || m.Text != "authenticated in band" {
		t.Fatalf("new_message %+v", m)
	}

	for name, first := range map[string]string{
		"bad token":           `{"event":"auth","data":{"token":"sb_not-a-token"}}`,
		"no token":            `{"event":"auth","data":{}}`,
		"another event first": `{"event":"join_room","data":{"room":"general"}}`,
		"not JSON":            `hello`,
	} {
		t.Run(name, func(t *testing.T) {
			c, _, err := dialAPI(t, srv, nil)
			if err != nil {
				t.Fatal(err)
			}
			c.t = t
			c.raw(first)
			if code := closeCode(t, c.wsConn); code != websocket.StatusPolicyViolation {
				t.Fatalf("close %d, want 1008", code)
			}
		})
	}
}

func TestAPISocketRefusedBeforeUpgrade(t *testing.T) {
	srv := newTestServer(t)
	ana := srv.newBot("ana")
	u, _ := url.Parse(srv.URL)
	var cookies []string
	for _, ck := range ana.http.Jar.Cookies(u) {
		cookies = append(cookies, ck.Name+"="+ck.Value)
	}
	cookie := strings.Join(cookies, "; ")
	tests := []struct {
		name   string
		header http.Header
		query  string
		want   int
	}{
		{"unknown token", http.Header{"Authorization": {"Bearer sb_nope"}}, "", 401},
		{"not a bearer", http.Header{"Authorization": {"Basic YW5hOnB3"}}, "", 401},
		{"cookie session without a token", http.Header{"Cookie": {cookie}, "Origin": {srv.URL}}, "", 401},
		{"token in the URL", nil, "?token=" + ana.token, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			conn, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/api/ws"+tt.query,
				&websocket.DialOptions{HTTPHeader: tt.header})
			if err == nil {
				conn.CloseNow()
				t.Fatal("upgrade accepted")
			}
			if resp == nil || resp.StatusCode != tt.want {
				t.Fatalf("response %v, want %d", resp, tt.want)
			}
		})
	}
	// A cookie with a token is fine: the token decides.
	c, _, err := dialAPI(t, srv, http.Header{"Cookie": {cookie}, "Authorization": {"Bearer " + ana.token}})
	if err != nil {
		t.Fatalf("token and cookie: %v", err)
	}
	c.join("general")
	// Not an upgrade.
	if status, body, _ := apiRequest(t, srv, http.MethodGet, "/api/ws", ana.token, "", nil); status != http.StatusUpgradeRequired || !strings.Contains(body, `"error"`) {
		t.Fatalf("plain GET: %d %s", status, body)
	}
}

// TestAPISocketUnauthenticatedTimesOut waits out the 5 s allowed for the first message, in parallel with the
// other slow test.
func TestAPISocketUnauthenticatedTimesOut(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	c, _, err := dialAPI(t, srv, nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	select {
	case <-c.closed:
	case <-time.After(8 * time.Second):
		t.Fatal("still open after 8 s")
	}
	if code := websocket.CloseStatus(c.err); code != websocket.StatusPolicyViolation || time.Since(start) < 4*time.Second {
		t.Fatalf("close %d after %v, want 1008 after 5 s", code, time.Since(start))
	}
}

// TestAPISocketUserLeft waits out the presence linger (5 s), in parallel with the other slow test.
func TestAPISocketUserLeft(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	ana, bob := srv.newBot("ana"), srv.signup("bob")
	general := srv.roomID("general", srv.user("ana").ID)
	a := ana.dial(t)
	a.join("general")
	page := bob.mustDial(fmt.Sprintf("/rooms/%d/ws", general))
	if j := a.await("user_joined"); j.User != "bob" {
		t.Fatalf("user_joined %+v", j)
	}
	time.Sleep(500 * time.Millisecond) // bob is seen online (the people list is pushed 200 ms after a change)
	page.CloseNow()
	deadline := time.After(8 * time.Second)
	for {
		select {
		case s := <-a.in:
			var f apiFrame
			_ = json.Unmarshal([]byte(s), &f)
			if f.Event != "user_left" {
				continue
			}
			if f.Data.User != "bob" || f.Data.Room != general || f.Data.RoomName != "general" {
				t.Fatalf("user_left %s", s)
			}
			return
		case <-deadline:
			t.Fatal("no user_left 8 s after bob went away")
		}
	}
}

func TestAPISocketLimitsAndShutdown(t *testing.T) {
	srv := newTestServer(t)
	ana := srv.newBot("ana")
	big := ana.dial(t)
	// The server may close before the client has written it all.
	_ = big.Write(context.Background(), websocket.MessageText, []byte(`{"event":"send_message","data":{"room":"general","text":"`+strings.Repeat("x", 70<<10)+`"}}`))
	if code := closeCode(t, big.wsConn); code != websocket.StatusMessageTooBig {
		t.Fatalf("oversize: close %d, want 1009", code)
	}
	bin := ana.dial(t)
	_ = bin.Write(context.Background(), websocket.MessageBinary, []byte(`{}`))
	if code := closeCode(t, bin.wsConn); code != websocket.StatusUnsupportedData {
		t.Fatalf("binary: close %d, want 1003", code)
	}
	a := ana.dial(t)
	a.join("general")
	waiting, _, err := dialAPI(t, srv, nil) // not authenticated yet
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.H.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	for _, c := range []*apiConn{a, waiting} {
		if code := closeCode(t, c.wsConn); code != websocket.StatusServiceRestart {
			t.Fatalf("shutdown: close %d, want 1012", code)
		}
	}
}

func TestAPIRest(t *testing.T) {
	srv := newTestServer(t)
	ana, bob, cat := srv.newBot("ana"), srv.newBot("bob"), srv.signup("cat")
	resp, _ := cat.post("/rooms", url.Values{"name": {"vault"}, "kind": {"private"}})
	var vault int64
	fmt.Sscanf(resp.Header.Get("Location"), "/rooms/%d", &vault)
	general := srv.roomID("general", srv.user("ana").ID)
	messages := fmt.Sprintf("/api/rooms/%d/messages", general)
	u, _ := url.Parse(srv.URL)
	cookie := http.Header{}
	for _, ck := range ana.http.Jar.Cookies(u) {
		cookie.Add("Cookie", ck.Name+"="+ck.Value)
	}

	// Rooms.
	status, body, header := apiRequest(t, srv, http.MethodGet, "/api/rooms", "", "", nil)
	if status != 401 || !strings.Contains(body, `"error":"An API token is required`) || header.Get("WWW-Authenticate") == "" {
		t.Fatalf("no token: %d %s %v", status, body, header)
	}
	if status, body, _ := apiRequest(t, srv, http.MethodGet, "/api/rooms", "", "", cookie); status != 401 {
		t.Fatalf("cookie session only: %d %s", status, body)
	}
	if status, _, _ := apiRequest(t, srv, http.MethodGet, "/api/rooms", "sb_wrong", "", nil); status != 401 {
		t.Fatalf("bad token: %d", status)
	}
	rooms := func() map[string]map[string]any {
		status, body, header := apiRequest(t, srv, http.MethodGet, "/api/rooms", ana.token, "", nil)
		var list []map[string]any
		if status != 200 || json.Unmarshal([]byte(body), &list) != nil || !strings.HasPrefix(header.Get("Content-Type"), "application/json") {
			t.Fatalf("rooms: %d %s", status, body)
		}
		byName := make(map[string]map[string]any)
		for _, r := range list {
			byName[r["name"].(string)] = r
		}
		return byName
	}
	list := rooms()
	if g := list["general"]; g == nil || g["id"].(float64) != float64(general) || g["kind"] != "open" || g["member"] != false || g["unread"].(float64) != 0 {
		t.Fatalf("general listed as %v", g)
	}
	if list["vault"] != nil {
		t.Fatal("another user's private room is listed")
	}

	// Posting.
	first := ana.post(t, general, "hello <api>", "r-1")
	if first.User != "ana" || first.Text != "hello <api>" || first.ClientID != "r-1" || first.Room != general || first.Kind != "text" {
		t.Fatalf("posted %+v", first)
	}
	status, body, _ = apiRequest(t, srv, http.MethodPost, messages, ana.token, `{"text":"hello <api>","client_id":"r-1"}`, nil)
	var again apiData
	_ = json.Unmarshal([]byte(body), &again)
	if status != 200 || again.ID != first.ID {
		t.Fatalf("resend: %d %s, want 200 with id %d", status, body, first.ID)
	}
	if n := textMessages(t, srv, general); n != 1 {
		t.Fatalf("%d rows after a resend", n)
	}
	if g := rooms()["general"]; g["member"] != true {
		t.Fatalf("posting did not join: %v", g)
	}
	// The post reaches sockets.
	b := bob.dial(t)
	b.join("general")
	second := ana.post(t, general, "to the socket", "")
	if got := b.await("new_message"); got.ID != second.ID || got.Text != "to the socket" {
		t.Fatalf("socket got %+v", got)
	}
	for _, tt := range []struct {
		name, path, token, body string
		header                  http.Header
		want                    int
		error                   string
	}{
		{"empty", messages, ana.token, `{"text":" "}`, nil, 422, "The message is empty."},
		{"too long", messages, ana.token, `{"text":"` + strings.Repeat("z", 4001) + `"}`, nil, 422, "at most 4000"},
		{"not JSON", messages, ana.token, `text=hi`, nil, 400, "The body must be JSON"},
		{"text as a number", messages, ana.token, `{"text":5}`, nil, 400, "The body must be JSON"},
		{"unknown room", "/api/rooms/99999/messages", ana.token, `{"text":"x"}`, nil, 404, "no such room"},
		{"private room", fmt.Sprintf("/api/rooms/%d/messages", vault), ana.token, `{"text":"x"}`, nil, 403, "members only"},
		{"another user's client id", messages, bob.token, `{"text":"x","client_id":"r-1"}`, nil, 409, "client id"},
		{"cookie session only", messages, "", `{"text":"x"}`, cookie, 401, "API token"},
		{"no token", messages, "", `{"text":"x"}`, nil, 401, "API token"},
	} {
		t.Run("post "+tt.name, func(t *testing.T) {
			status, body, _ := apiRequest(t, srv, http.MethodPost, tt.path, tt.token, tt.body, tt.header)
			var e struct{ Error string }
			if status != tt.want || json.Unmarshal([]byte(body), &e) != nil || !strings.Contains(e.Error, tt.error) {
				t.Fatalf("%d %s, want %d with %q", status, body, tt.want, tt.error)
			}
		})
	}
	if n := textMessages(t, srv, general); n != 2 {
		t.Fatalf("%d rows after refused posts, want 2", n)
	}

	// Reading.
	var ids []int64
	for i := range 8 {
		ids = append(ids, ana.post(t, general, fmt.Sprintf("m%d", i), "").ID)
	}
	list2 := func(query string) []apiData {
		t.Helper()
		status, body, _ := apiRequest(t, srv, http.MethodGet, messages+query, bob.token, "", nil)
		var out []apiData
		if status != 200 || json.Unmarshal([]byte(body), &out) != nil {
			t.Fatalf("messages%s: %d %s", query, status, body)
		}
		return out
	}
	texts := func(ms []apiData) string {
		var s []string
		for _, m := range ms {
			s = append(s, m.Text)
		}
		return strings.Join(s, ",")
	}
	all := list2("")
	if len(all) != 12 || all[0].Kind != "join" || all[0].User != "ana" || all[len(all)-1].Text != "m7" {
		t.Fatalf("default page: %+v", all)
	}
	for i := 1; i < len(all); i++ {
		if all[i].ID <= all[i-1].ID {
			t.Fatalf("not oldest first: %+v", all)
		}
	}
	for query, want := range map[string]string{
		"?limit=3":                                         "m5,m6,m7",
		fmt.Sprintf("?after=%d&limit=2", ids[1]):           "m2,m3",
		fmt.Sprintf("?before=%d&limit=2", ids[3]):          "m1,m2",
		fmt.Sprintf("?after=%d&before=%d", ids[2], ids[6]): "m3,m4,m5",
		fmt.Sprintf("?after=%d", ids[7]):                   "",
	} {
		if got := texts(list2(query)); got != want {
			t.Errorf("messages%s: %q, want %q", query, got, want)
		}
	}
	if got := list2(fmt.Sprintf("?after=%d", ids[7])); got == nil {
		t.Error("an empty page is not []")
	}
	for _, tt := range []struct {
		path, token string
		want        int
	}{
		{messages + "?limit=501", bob.token, 400},
		{messages + "?limit=0", bob.token, 400},
		{messages + "?after=-1", bob.token, 400},
		{messages + "?before=abc", bob.token, 400},
		{fmt.Sprintf("/api/rooms/%d/messages", vault), bob.token, 403},
		{"/api/rooms/99999/messages", bob.token, 404},
		{"/api/rooms/x/messages", bob.token, 404},
		{messages, "", 401},
	} {
		if status, body, _ := apiRequest(t, srv, http.MethodGet, tt.path, tt.token, "", nil); status != tt.want || !strings.Contains(body, `"error"`) {
			t.Errorf("GET %s: %d %s, want %d", tt.path, status, body, tt.want)
		}
	}
	if status, body, _ := apiRequest(t, srv, http.MethodGet, messages+"?limit=500", bob.token, "", nil); status != 200 || !strings.HasPrefix(body, "[") {
		t.Errorf("limit=500: %d", status)
	}
}
