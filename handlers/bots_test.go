package handlers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"switchboard/handlers"
	"switchboard/models"
)

// allowPrivateBots lets bots' webhooks reach loopback, where the tests' webhooks listen.
func allowPrivateBots(d *handlers.Deps) { d.BotAllowPrivate = true }

// botCall is one request a test webhook received.
type botCall struct {
	Method      string
	ContentType string
	Event       struct {
		Event string `json:"event"`
		Bot   string `json:"bot"`
		Room  struct {
			ID   int64  `json:"id"`
			Name string `json:"name"`
			Kind string `json:"kind"`
		} `json:"room"`
		Message struct {
			ID        int64     `json:"id"`
			User      string    `json:"user"`
			Text      string    `json:"text"`
			CreatedAt time.Time `json:"created_at"`
		} `json:"message"`
	}
}

// webhook is a bot's webhook: an HTTP server on loopback that records every call and answers with answer's
// status and body (n counts the calls, from 1).
type webhook struct {
	*httptest.Server
	mu    sync.Mutex
	log   []botCall
	calls chan botCall
}

func newWebhook(t *testing.T, answer func(n int, c botCall) (int, string)) *webhook {
	t.Helper()
	w := &webhook{calls: make(chan botCall, 100)}
	w.Server = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		c := botCall{Method: r.Method, ContentType: r.Header.Get("Content-Type")}
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &c.Event); err != nil {
			t.Errorf("webhook body is not the event JSON: %v: %q", err, body)
		}
		w.mu.Lock()
		w.log = append(w.log, c)
		n := len(w.log)
		w.mu.Unlock()
		w.calls <- c
		status, reply := answer(n, c)
		rw.Header().Set("Content-Type", "application/json")
		rw.WriteHeader(status)
		io.WriteString(rw, reply)
	}))
	t.Cleanup(w.Close)
	return w
}

// next waits for the next call.
func (w *webhook) next(t *testing.T) botCall {
	t.Helper()
	select {
	case c := <-w.calls:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("the webhook was not called within 5 s")
		return botCall{}
	}
}

func (w *webhook) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.log)
}

func reply(text string) func(int, botCall) (int, string) {
	return func(int, botCall) (int, string) { return http.StatusOK, `{"text":` + jsonString(text) + `}` }
}

// createBot makes a bot on the admin page and returns its user id.
func (c *client) createBot(name, webhookURL string) int64 {
	c.t.Helper()
	resp, body := c.post("/admin/bots", url.Values{"name": {name}, "webhook_url": {webhookURL}})
	if resp.StatusCode != http.StatusSeeOther {
		c.t.Fatalf("create bot %s: %d %.300s", name, resp.StatusCode, body)
	}
	return c.srv.user(strings.ToLower(name)).ID
}

// awaitMessageBy skips frames until a new_message by user arrives.
func (c *apiConn) awaitMessageBy(user string) apiData {
	c.t.Helper()
	for {
		if m := c.await("new_message"); m.User == user {
			return m
		}
	}
}

// messagesBy counts a room's stored text messages by a user.
func (s *testServer) messagesBy(room int64, user string) int {
	s.t.Helper()
	msgs, err := s.Store.MessagesAfter(context.Background(), room, 0, 1000)
	if err != nil {
		s.t.Fatal(err)
	}
	n := 0
	for _, m := range msgs {
		if m.Author == user && m.Kind == models.MessageText {
			n++
		}
	}
	return n
}

func TestBotMentionReachesWebhookAndReplyAppears(t *testing.T) {
	srv := newTestServer(t, allowPrivateBots)
	root := srv.signup("root")
	hook := newWebhook(t, reply("@ana VOIDX: 101.23"))
	root.createBot("PriceBot", hook.URL+"/hook")
	ana := srv.newBot("ana")
	c := ana.dial(t)
	general := c.join("general").Room

	before := time.Now()
	sent := ana.post(t, general, "hi @PriceBot: !price VOIDX", "m1")
	call := hook.next(t)
	e := call.Event
	switch {
	case call.Method != http.MethodPost || call.ContentType != "application/json":
		t.Fatalf("webhook request: %s, Content-Type %q", call.Method, call.ContentType)
	case e.Event != "message" || e.Bot != "pricebot":
		t.Fatalf("event %q for bot %q", e.Event, e.Bot)
	case e.Room.ID != general || e.Room.Name != "general" || e.Room.Kind != "open":
		t.Fatalf("room %+v, want general (%d), open", e.Room, general)
	case e.Message.ID != sent.ID || e.Message.User != "ana" || e.Message.Text != "hi @PriceBot: !price VOIDX":
		t.Fatalf("message %+v, want id %d by ana", e.Message, sent.ID)
	case e.Message.CreatedAt.Before(before.Add(-time.Minute)) || e.Message.CreatedAt.After(time.Now().Add(time.Minute)) || e.Message.CreatedAt.Location() != time.UTC:
		t.Fatalf("created_at %v", e.Message.CreatedAt)
	}

	// The reply is the bot's message in the room, pushed like any other (the bot joined the open room for it).
	m := c.awaitMessageBy("pricebot")
	if m.Text != "@ana VOIDX: 101.23" || m.Room != general || m.ID <= sent.ID {
		t.Fatalf("bot reply %+v", m)
	}
	if _, err := srv.Store.Membership(context.Background(), general, srv.user("pricebot").ID); err != nil {
		t.Fatalf("the bot is not a member of general: %v", err)
	}
	// Words that merely contain the name, and mentions of people, call nobody.
	ana.post(t, general, "mail ana@pricebot.com or @pricebotx or @ana", "")
	time.Sleep(300 * time.Millisecond)
	if n := hook.count(); n != 1 {
		t.Fatalf("the webhook was called %d times, want 1", n)
	}
}

func TestBotDirectMessageReachesWebhook(t *testing.T) {
	srv := newTestServer(t, allowPrivateBots)
	root := srv.signup("root")
	hook := newWebhook(t, reply("ACME: 1.00"))
	root.createBot("pricebot", hook.URL)
	bob := srv.signup("bob")
	resp, _ := bob.get("/dm/pricebot")
	var room int64
	if _, err := fmt.Sscanf(resp.Header.Get("Location"), "/rooms/%d", &room); err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("open the direct room: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	conn := bob.mustDial(fmt.Sprintf("/rooms/%d/ws", room))
	srv.waitSubscribers(fmt.Sprintf("room:%d", room), 1)
	send(t, conn, "!price ACME", "d1") // no mention: a direct message is for the bot anyway
	call := hook.next(t)
	if call.Event.Room.ID != room || call.Event.Room.Kind != "direct" || call.Event.Message.User != "bob" || call.Event.Message.Text != "!price ACME" {
		t.Fatalf("webhook event %+v", call.Event)
	}
	frame := readUntil(t, conn, "ACME: 1.00")
	if !strings.Contains(frame, `data-author="pricebot"`) {
		t.Fatalf("the reply is not the bot's: %.300s", frame)
	}
}

func TestBotsDoNotTriggerBots(t *testing.T) {
	srv := newTestServer(t, allowPrivateBots)
	root := srv.signup("root")
	// pricebot's reply mentions itself and echobot: neither webhook may be called for it.
	price := newWebhook(t, reply("@pricebot @echobot ping"))
	echo := newWebhook(t, reply("echo"))
	root.createBot("pricebot", price.URL)
	root.createBot("echobot", echo.URL)
	ana := srv.newBot("ana")
	c := ana.dial(t)
	general := c.join("general").Room

	ana.post(t, general, "@pricebot hi", "")
	price.next(t)
	if m := c.awaitMessageBy("pricebot"); m.Text != "@pricebot @echobot ping" {
		t.Fatalf("reply %q", m.Text)
	}
	time.Sleep(500 * time.Millisecond)
	if p, e := price.count(), echo.count(); p != 1 || e != 0 {
		t.Fatalf("webhook calls: pricebot %d (want 1), echobot %d (want 0)", p, e)
	}
	// echobot works: a person's mention reaches it, and one message mentioning both bots reaches each once.
	ana.post(t, general, "@echobot @pricebot @echobot both", "")
	if call := echo.next(t); call.Event.Bot != "echobot" || call.Event.Message.Text != "@echobot @pricebot @echobot both" {
		t.Fatalf("echobot's event %+v", call.Event)
	}
	price.next(t)
	c.awaitMessageBy("echobot")
	time.Sleep(500 * time.Millisecond)
	if p, e := price.count(), echo.count(); p != 2 || e != 1 {
		t.Fatalf("webhook calls: pricebot %d (want 2), echobot %d (want 1)", p, e)
	}
}

func TestBotWebhookRetries(t *testing.T) {
	var log logBuffer
	srv := newTestServer(t, allowPrivateBots, withLog(&log))
	root := srv.signup("root")
	hook := newWebhook(t, func(n int, c botCall) (int, string) {
		switch {
		case strings.Contains(c.Event.Message.Text, "flaky") && n == 1:
			return http.StatusInternalServerError, `{"text":"not this"}`
		case strings.Contains(c.Event.Message.Text, "flaky"):
			return http.StatusOK, `{"text":"second time lucky"}`
		case strings.Contains(c.Event.Message.Text, "bad request"):
			return http.StatusBadRequest, `{"text":"not this either"}`
		default:
			return http.StatusOK, `{"text":"elsewhere","room":999999}`
		}
	})
	botID := root.createBot("pricebot", hook.URL)
	ana := srv.newBot("ana")
	c := ana.dial(t)
	general := c.join("general").Room

	// A 500, then a 200: called twice, after a backoff; the reply appears once.
	start := time.Now()
	ana.post(t, general, "@pricebot flaky secret-words", "")
	hook.next(t)
	hook.next(t)
	if d := time.Since(start); d < 400*time.Millisecond {
		t.Fatalf("retried after %v: no backoff", d)
	}
	if m := c.awaitMessageBy("pricebot"); m.Text != "second time lucky" {
		t.Fatalf("reply %q", m.Text)
	}
	// A 4xx is not retried, and a reply to another room is refused.
	ana.post(t, general, "@pricebot bad request", "")
	hook.next(t)
	ana.post(t, general, "@pricebot other room", "")
	hook.next(t)
	time.Sleep(1500 * time.Millisecond) // longer than a retry's backoff
	if n := hook.count(); n != 4 {
		t.Fatalf("webhook called %d times, want 4", n)
	}
	if n := srv.messagesBy(general, "pricebot"); n != 1 {
		t.Fatalf("the bot has %d messages, want 1", n)
	}
	out := log.String()
	for _, want := range []string{"bot webhook failed; retrying", "status=500", "status=400", "a reply to another room refused", fmt.Sprintf("bot=%d", botID)} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "secret-words") {
		t.Error("the log holds a message's text")
	}
}

func TestBotPrivateTargetRefusedByDefault(t *testing.T) {
	var log logBuffer
	srv := newTestServer(t, withLog(&log)) // private targets refused
	root := srv.signup("root")
	hook := newWebhook(t, reply("should never be asked"))

	// The admin form refuses a loopback URL outright...
	resp, body := root.post("/admin/bots", url.Values{"name": {"localbot"}, "webhook_url": {hook.URL}})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "private-network") {
		t.Fatalf("a loopback webhook was accepted: %d", resp.StatusCode)
	}
	// ...and a URL that only turns out to be loopback when connecting (as a DNS name may) is refused at dial time.
	u, _, err := srv.Store.CreateBot(context.Background(), "localbot", hook.URL+"/hook?key=s3cr3t", srv.user("root").ID)
	if err != nil {
		t.Fatal(err)
	}
	ana := srv.newBot("ana")
	general := srv.roomID("general", srv.user("ana").ID)
	ana.post(t, general, "@localbot secret-words", "")

	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(log.String(), "target address refused") {
		if time.Now().After(deadline) {
			t.Fatalf("no refusal logged:\n%s", log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	out := log.String()
	var line string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "target address refused") {
			line = l
		}
	}
	for _, want := range []string{fmt.Sprintf("bot=%d", u.ID), "reason=loopback", "address=127.0.0.1"} {
		if !strings.Contains(line, want) {
			t.Errorf("the refusal lacks %q: %s", want, line)
		}
	}
	if strings.Contains(out, "secret-words") || strings.Contains(out, "s3cr3t") {
		t.Errorf("the log holds a message's text or the webhook's key:\n%s", out)
	}
	time.Sleep(200 * time.Millisecond)
	if n := hook.count(); n != 0 {
		t.Fatalf("the loopback webhook was called %d times", n)
	}
}

func TestForbiddenWebhookAddr(t *testing.T) {
	tests := []struct {
		addr string
		want string // "" means allowed
	}{
		{"10.0.0.1", "private"},
		{"192.168.1.1", "private"},
		{"172.16.0.1", "private"},
		{"172.31.255.255", "private"},
		{"127.0.0.1", "loopback"},
		{"127.8.9.10", "loopback"},
		{"::1", "loopback"},
		{"fe80::1", "link-local"},
		{"169.254.169.254", "link-local"}, // cloud metadata
		{"100.64.0.1", "shared (CGNAT)"},
		{"100.127.255.254", "shared (CGNAT)"},
		{"0.0.0.0", "unspecified"},
		{"0.1.2.3", "unspecified"},
		{"::", "unspecified"},
		{"224.0.0.1", "multicast"},
		{"ff02::1", "multicast"},
		{"fc00::1", "private"},
		{"fd12:3456::1", "private"},
		{"::ffff:10.0.0.1", "private"},
		{"::ffff:127.0.0.1", "loopback"},
		{"64:ff9b::a00:1", "private (through NAT64)"},
		{"255.255.255.255", "reserved"},
		{"198.18.0.1", "reserved"},
		{"93.184.216.34", ""},
		{"100.128.0.1", ""},
		{"172.32.0.1", ""},
		{"2606:2800:220:1:248:1893:25c8:1946", ""},
		{"64:ff9b::5db8:d822", ""}, // NAT64 of 93.184.216.34
	}
	for _, tt := range tests {
		if got := handlers.ForbiddenWebhookAddr(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("ForbiddenWebhookAddr(%s) = %q, want %q", tt.addr, got, tt.want)
		}
	}
	if got := handlers.ForbiddenWebhookAddr(netip.Addr{}); got == "" {
		t.Error("the zero address is allowed")
	}
}

func TestAdminCreatesAndDeletesBots(t *testing.T) {
	srv := newTestServer(t)
	root := srv.signup("root")
	bob := srv.signup("bob")
	form := url.Values{"name": {"pricebot"}, "webhook_url": {"https://bots.example.com/hook"}}
	if resp, _ := bob.post("/admin/bots", form); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a non-admin created a bot: %d", resp.StatusCode)
	}
	if resp, _ := bob.get("/admin/bots"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a non-admin saw the bots: %d", resp.StatusCode)
	}
	if _, body := root.get("/admin"); !strings.Contains(body, `hx-get="/admin/bots"`) || !strings.Contains(body, `href="/admin/bots"`) {
		t.Fatal("the admin page has no bots section")
	}
	resp, body := root.do(http.MethodGet, "/admin/bots", nil, http.Header{"HX-Request": {"true"}})
	if resp.StatusCode != http.StatusOK || strings.Contains(body, "<html") || !strings.Contains(body, "No bots yet") || !strings.Contains(body, `name="return" value="/admin"`) {
		t.Fatalf("the bots section for htmx: %d %.300s", resp.StatusCode, body)
	}

	// Create, from the admin page's section: back to /admin.
	withReturn := url.Values{"name": {"PriceBot"}, "webhook_url": {"https://bots.example.com/hook"}, "return": {"/admin"}}
	resp, _ = root.post("/admin/bots", withReturn)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin" {
		t.Fatalf("create: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	bots, err := srv.Store.Bots(context.Background())
	if err != nil || len(bots) != 1 || bots[0].Username != "pricebot" || bots[0].CreatedBy != srv.user("root").ID {
		t.Fatalf("bots = %+v, %v", bots, err)
	}
	_, body = root.get("/admin/bots")
	if !strings.Contains(body, `data-bot="pricebot"`) || !strings.Contains(body, "https://bots.example.com/hook") {
		t.Fatalf("the bots page lacks the bot: %.500s", body)
	}
	// Nobody signs in as a bot, and an admin cannot give it a password.
	for _, pw := range []string{"correct horse", ""} {
		if resp, _ := srv.newClient().post("/login", url.Values{"username": {"pricebot"}, "password": {pw}}); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("sign in as the bot: %d", resp.StatusCode)
		}
	}
	if resp, _ := root.post(fmt.Sprintf("/admin/users/%d", bots[0].UserID), url.Values{"action": {"reset-password"}}); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a bot's password was reset: %d", resp.StatusCode)
	}

	// Refused forms show the page again with an error and the values typed.
	for _, tt := range []struct {
		name, url string
		status    int
		want      string
	}{
		{"pricebot", "https://bots.example.com/x", http.StatusConflict, "taken"},
		{"root", "https://bots.example.com/x", http.StatusConflict, "taken"},
		{"x", "https://bots.example.com/x", http.StatusUnprocessableEntity, "3–32"},
		{"bad name", "https://bots.example.com/x", http.StatusUnprocessableEntity, "3–32"},
		{"ftpbot", "ftp://bots.example.com/x", http.StatusUnprocessableEntity, "http://"},
		{"nohost", "https:///x", http.StatusUnprocessableEntity, "host"},
		{"nourl", "", http.StatusUnprocessableEntity, "URL"},
		{"lanbot", "http://192.168.1.10/hook", http.StatusUnprocessableEntity, "private"},
		{"localbot", "http://localhost:8080/hook", http.StatusUnprocessableEntity, "this machine"},
		{"metabot", "http://169.254.169.254/latest", http.StatusUnprocessableEntity, "link-local"},
	} {
		resp, body := root.post("/admin/bots", url.Values{"name": {tt.name}, "webhook_url": {tt.url}})
		if resp.StatusCode != tt.status || !strings.Contains(body, `id="bot-error"`) || !strings.Contains(body, tt.want) {
			t.Errorf("create %q %q: %d, want %d with %q", tt.name, tt.url, resp.StatusCode, tt.status, tt.want)
		}
	}
	if resp, _ := root.post("/admin/bots", url.Values{"name": {"csrfbot"}, "webhook_url": {"https://x.example/"}, "_csrf": {"forged"}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a forged CSRF token: %d", resp.StatusCode)
	}
	if bots, _ := srv.Store.Bots(context.Background()); len(bots) != 1 {
		t.Fatalf("%d bots after refused forms, want 1", len(bots))
	}

	// Delete: the bot goes, its user is disabled.
	id := bots[0].UserID
	if resp, _ := bob.post(fmt.Sprintf("/admin/bots/%d/delete", id), nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a non-admin deleted a bot: %d", resp.StatusCode)
	}
	resp, _ = root.post(fmt.Sprintf("/admin/bots/%d/delete", id), nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin/bots" {
		t.Fatalf("delete: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if _, body := root.get("/admin/bots"); strings.Contains(body, `data-bot="pricebot"`) {
		t.Fatal("the deleted bot is still listed")
	}
	if !srv.user("pricebot").Disabled {
		t.Fatal("the deleted bot's user is not disabled")
	}
	if resp, _ := root.post(fmt.Sprintf("/admin/bots/%d/delete", id), nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("delete again: %d", resp.StatusCode)
	}
	if resp, _ := root.post(fmt.Sprintf("/admin/bots/%d/delete", srv.user("bob").ID), nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("delete a person as a bot: %d", resp.StatusCode)
	}
}
