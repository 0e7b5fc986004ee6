package handlers_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"switchboard/handlers"
	"switchboard/models"
)

var msgIDPattern = regexp.MustCompile(`id="msg-(\d+)"`)

func count(frames []string, s string) int {
	n := 0
	for _, f := range frames {
		n += strings.Count(f, s)
	}
	return n
}

func TestRoomSocketFansOutEscapedOnce(t *testing.T) {
	srv := newTestServer(t)
	ana, bob, cat := srv.signup("ana"), srv.signup("bob"), srv.signup("cat")
	general := srv.roomID("general", srv.user("ana").ID)
	resp, _ := cat.post("/rooms", url.Values{"name": {"elsewhere"}})
	elsewhere := resp.Header.Get("Location")

	path := fmt.Sprintf("/rooms/%d/ws", general)
	a1, a2, b := ana.mustDial(path), ana.mustDial(path), bob.mustDial(path)
	c := cat.mustDial(elsewhere + "/ws")
	time.Sleep(100 * time.Millisecond) // let the join notices and people pushes settle
	frames(a1, 300*time.Millisecond)
	frames(a2, 10*time.Millisecond)
	frames(b, 10*time.Millisecond)
	frames(c, 10*time.Millisecond)

	send(t, a1, "<script>alert(1)</script> hi", "c-1")
	got := readUntil(t, a1, "&lt;script&gt;alert(1)&lt;/script&gt; hi")
	if strings.Contains(got, "<script>alert") {
		t.Fatalf("text not escaped: %s", got)
	}
	if !strings.Contains(got, `hx-swap-oob="beforeend:#messages"`) || !msgIDPattern.MatchString(got) {
		t.Fatalf("not an out-of-band append of a msg-<id> element: %s", got)
	}
	id := msgIDPattern.FindString(got)
	// Everyone in the room, the sender's other tab included, gets it exactly once.
	for name, conn := range map[string]*wsConn{"a1": a1, "a2": a2, "bob": b} {
		fs := frames(conn, 400*time.Millisecond)
		if name == "a1" {
			fs = append(fs, got)
		}
		if n := count(fs, id); n != 1 {
			t.Errorf("%s received %s %d times", name, id, n)
		}
	}
	if fs := frames(c, 200*time.Millisecond); count(fs, "alert(1)") != 0 {
		t.Errorf("a user in another room received the message: %v", fs)
	}
}

func TestSocketRefusedBeforeUpgrade(t *testing.T) {
	srv := newTestServer(t)
	ana := srv.signup("ana")
	bob := srv.signup("bob")
	general := fmt.Sprintf("/rooms/%d/ws", srv.roomID("general", srv.user("ana").ID))
	resp, _ := ana.post("/rooms", url.Values{"name": {"hideout"}, "kind": {"private"}})
	private := resp.Header.Get("Location") + "/ws"
	host := strings.TrimPrefix(srv.URL, "http://")

	tests := []struct {
		name   string
		c      *client
		path   string
		origin string
		want   int
	}{
		{"evil origin", ana, general, "https://evil.example", 403},
		{"look-alike origin", ana, general, "http://" + host + ".evil.example", 403},
		{"null origin", ana, general, "null", 403},
		{"no session", srv.newClient(), general, srv.URL, 401},
		{"tampered session", tampered(srv), general, srv.URL, 401},
		{"private room, non-member", bob, private, srv.URL, 403},
		{"unknown room", ana, "/rooms/9999/ws", srv.URL, 404},
		{"bad after", ana, general + "?after=x", srv.URL, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.c.t = t
			conn, resp, err := tt.c.dial(tt.path, tt.origin)
			if err == nil {
				conn.CloseNow()
				t.Fatal("upgrade accepted")
			}
			if resp == nil || resp.StatusCode != tt.want {
				status := 0
				if resp != nil {
					status = resp.StatusCode
				}
				t.Fatalf("status %d, want %d", status, tt.want)
			}
		})
	}
	if n := srv.Hub.Topics(); n != 0 {
		t.Errorf("refused upgrades left %d hub topics", n)
	}
	// A plain GET is not an upgrade.
	if resp, _ := ana.get(general); resp.StatusCode != http.StatusUpgradeRequired {
		t.Errorf("plain GET: %d, want 426", resp.StatusCode)
	}
}

func tampered(srv *testServer) *client {
	c := srv.newClient()
	u, _ := url.Parse(srv.URL)
	c.http.Jar.SetCookies(u, []*http.Cookie{{Name: "sb_session", Value: "00000000-0000-4000-8000-000000000000"}})
	return c
}

func TestOversizeMessageCloses1009AndStoresNothing(t *testing.T) {
	srv := newTestServer(t)
	ana := srv.signup("ana")
	general := srv.roomID("general", srv.user("ana").ID)
	conn := ana.mustDial(fmt.Sprintf("/rooms/%d/ws", general))
	big := `{"text":"` + strings.Repeat("x", 70<<10) + `"}`
	_ = conn.Write(context.Background(), websocket.MessageText, []byte(big))
	if code := closeCode(t, conn); code != websocket.StatusMessageTooBig {
		t.Fatalf("close code %d, want 1009", code)
	}
	if n := textMessages(t, srv, general); n != 0 {
		t.Fatalf("%d messages stored", n)
	}
}

func textMessages(t *testing.T, srv *testServer, room int64) int {
	t.Helper()
	msgs, err := srv.Store.RecentMessages(context.Background(), room, 10000)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range msgs {
		if m.Kind == "text" {
			n++
		}
	}
	return n
}

func TestSocketRefusesBadSendsToTheSenderOnly(t *testing.T) {
	srv := newTestServer(t)
	ana, bob := srv.signup("ana"), srv.signup("bob")
	general := srv.roomID("general", srv.user("ana").ID)
	path := fmt.Sprintf("/rooms/%d/ws", general)
	a, b := ana.mustDial(path), bob.mustDial(path)
	frames(a, 300*time.Millisecond)
	frames(b, 10*time.Millisecond)

	send(t, a, "   ", "")
	readUntil(t, a, "The message is empty.")
	send(t, a, strings.Repeat("y", 4001), "")
	readUntil(t, a, "at most 4000 characters")
	_ = a.Write(context.Background(), websocket.MessageText, []byte(`{"text":123}`))
	readUntil(t, a, "could not be read")
	_ = a.Write(context.Background(), websocket.MessageText, []byte(`not json`))
	readUntil(t, a, "could not be read")
	send(t, a, "fine now", "")
	readUntil(t, a, "fine now")
	if fs := frames(b, 300*time.Millisecond); count(fs, "compose-error") != 0 || count(fs, "fine now") != 1 {
		t.Fatalf("bob saw ana's errors or not her message: %v", fs)
	}
	if n := textMessages(t, srv, general); n != 1 {
		t.Fatalf("%d messages stored, want 1", n)
	}
	// Invalid UTF-8 closes the socket with 1007.
	_ = a.Write(context.Background(), websocket.MessageText, []byte("{\"text\":\"\xff\xfe\"}"))
	if code := closeCode(t, a); code != websocket.StatusInvalidFramePayloadData {
		t.Fatalf("invalid UTF-8: close %d, want 1007", code)
	}
}

func TestDirectMessageRaisesUnreadOnPersonalChannel(t *testing.T) {
	srv := newTestServer(t)
	ana, bob := srv.signup("ana"), srv.signup("bob")
	bobHome := bob.mustDial("/ws") // bob is on another page, e.g. the rooms list
	srv.waitSubscribers(fmt.Sprintf("user:%d", srv.user("bob").ID), 1)
	resp, _ := ana.get("/dm/bob")
	dm := resp.Header.Get("Location")
	var room int64
	fmt.Sscanf(dm, "/rooms/%d", &room)
	// The new direct room appears in bob's list live.
	readUntil(t, bobHome, `href="`+dm+`"`)

	a := ana.mustDial(dm + "/ws")
	send(t, a, "psst", "")
	readUntil(t, a, "psst")
	mark := readUntil(t, bobHome, fmt.Sprintf(`id="unread-%d"`, room))
	if !strings.Contains(mark, `hx-swap-oob="beforeend"`) || strings.Contains(mark, "psst") {
		t.Fatalf("unexpected unread mark: %s", mark)
	}
	// And the count is in bob's rooms page.
	if _, body := bob.get("/rooms"); !strings.Contains(body, fmt.Sprintf(`id="unread-%d" class="unread-badge ml-auto" aria-label="unread messages"><i></i></span>`, room)) {
		t.Fatal("bob's rooms page does not show one unread message")
	}
	// Opening the room marks it read.
	bob.get(dm)
	if _, body := bob.get("/rooms"); strings.Contains(body, fmt.Sprintf(`id="unread-%d" class="unread-badge ml-auto" aria-label="unread messages"><i>`, room)) {
		t.Fatal("still unread after opening the room")
	}
}

func TestUnreadMarksForOpenRoomsOnOtherPages(t *testing.T) {
	srv := newTestServer(t)
	ana, bob := srv.signup("ana"), srv.signup("bob")
	general := srv.roomID("general", srv.user("ana").ID)
	bob.get(fmt.Sprintf("/rooms/%d", general)) // bob joins general
	bobHome := bob.mustDial("/ws")
	srv.waitSubscribers(fmt.Sprintf("activity:%d", general), 1)
	a := ana.mustDial(fmt.Sprintf("/rooms/%d/ws", general))
	send(t, a, "news", "")
	readUntil(t, bobHome, fmt.Sprintf(`id="unread-%d"`, general))
}

func TestReplayAfterReconnect(t *testing.T) {
	srv := newTestServer(t)
	ana, bob := srv.signup("ana"), srv.signup("bob")
	general := srv.roomID("general", srv.user("ana").ID)
	room := fmt.Sprintf("/rooms/%d", general)
	bob.get(room)
	var ids []string
	for i := 1; i <= 5; i++ {
		resp, _ := ana.post(room+"/messages", url.Values{"text": {fmt.Sprintf("gap %d", i)}})
		ids = append(ids, strings.TrimPrefix(resp.Header.Get("Location"), room+"#msg-"))
	}
	// bob's page had the first message; his reconnect asks for what came after it.
	conn := bob.mustDial(room + "/ws?after=" + ids[0])
	first := readUntil(t, conn, "gap 2")
	for i := 2; i <= 5; i++ {
		if !strings.Contains(first, fmt.Sprintf("gap %d", i)) {
			t.Fatalf("replay lacks gap %d: %s", i, first)
		}
	}
	if strings.Contains(first, "gap 1<") || strings.Index(first, "gap 2") > strings.Index(first, "gap 5") {
		t.Fatalf("replay holds an old message or is out of order: %s", first)
	}
	send(t, ana.mustDial(room+"/ws"), "live one", "")
	fs := append([]string{readUntil(t, conn, "live one")}, frames(conn, 300*time.Millisecond)...)
	if count(fs, "gap ") != 0 || count(fs, "live one") != 1 {
		t.Fatalf("duplicates after the replay: %v", fs)
	}
}

func TestReplayPastCapReplacesTheList(t *testing.T) {
	srv := newTestServer(t)
	ana := srv.signup("ana")
	general := srv.roomID("general", srv.user("ana").ID)
	ana.get(fmt.Sprintf("/rooms/%d", general))
	for i := 1; i <= 520; i++ {
		if _, _, err := srv.Store.CreateMessage(context.Background(), models.NewMessage{RoomID: general, UserID: srv.user("ana").ID, Text: fmt.Sprintf("bulk %d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	conn := ana.mustDial(fmt.Sprintf("/rooms/%d/ws?after=1", general))
	got := readUntil(t, conn, "bulk 520")
	if !strings.Contains(got, `id="messages" hx-swap-oob="innerHTML"`) || strings.Contains(got, "bulk 470<") || !strings.Contains(got, `id="older"`) {
		t.Fatalf("expected the newest page replacing #messages: %.400s", got)
	}
}

func TestResendWithSameClientIDStoresOnce(t *testing.T) {
	srv := newTestServer(t)
	ana := srv.signup("ana")
	general := srv.roomID("general", srv.user("ana").ID)
	a := ana.mustDial(fmt.Sprintf("/rooms/%d/ws", general))
	send(t, a, "only once", "c-42")
	send(t, a, "only once", "c-42")
	readUntil(t, a, "only once")
	if fs := frames(a, 400*time.Millisecond); count(fs, "only once") != 0 {
		t.Fatalf("resend broadcast again: %v", fs)
	}
	if n := textMessages(t, srv, general); n != 1 {
		t.Fatalf("%d rows, want 1", n)
	}
}

func TestJoinNoticeAndPeopleGoLive(t *testing.T) {
	srv := newTestServer(t)
	ana, bob := srv.signup("ana"), srv.signup("bob")
	general := srv.roomID("general", srv.user("ana").ID)
	path := fmt.Sprintf("/rooms/%d/ws", general)
	a := ana.mustDial(path)
	readUntil(t, a, `id="people"`) // ana's own arrival
	b := bob.mustDial(path)
	notice := readUntil(t, a, "bob joined")
	if !strings.Contains(notice, `class="notice`) {
		t.Fatalf("join notice: %s", notice)
	}
	people := readUntilMatch(t, a, `data-online="true"><span[^>]*></span> <a href="/dm/bob"`, 5*time.Second)
	if !strings.Contains(people, `hx-swap-oob="true"`) {
		t.Fatalf("people push is not out-of-band: %s", people)
	}
	// bob leaves for good: after the linger he is shown offline.
	b.Close(websocket.StatusNormalClosure, "")
	readUntilMatch(t, a, `data-online="false"><span[^>]*></span> <a href="/dm/bob"`, 10*time.Second)
	// A second visit is no second join.
	bob.mustDial(path)
	if fs := frames(a, 500*time.Millisecond); count(fs, "bob joined") != 0 {
		t.Fatal("join notice sent twice")
	}
}

func TestLogoutClosesTheSessionsSockets(t *testing.T) {
	srv := newTestServer(t)
	ana := srv.signup("ana")
	other := srv.newClient() // ana on a second device: another session
	other.post("/login", url.Values{"username": {"ana"}, "password": {"correct horse"}})
	general := fmt.Sprintf("/rooms/%d/ws", srv.roomID("general", srv.user("ana").ID))
	a, home, kept := ana.mustDial(general), ana.mustDial("/ws"), other.mustDial(general)
	frames(kept, 200*time.Millisecond)
	start := time.Now()
	ana.post("/logout", nil)
	for _, conn := range []*wsConn{a, home} {
		if code := closeCode(t, conn); code != websocket.StatusPolicyViolation {
			t.Fatalf("close %d, want 1008", code)
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("sockets closed after %v", d)
	}
	if _, resp, err := ana.dial(general, srv.URL); err == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatal("old cookie still opens sockets")
	}
	// The other session's socket lives on.
	select {
	case <-kept.closed:
		t.Fatalf("the other session's socket closed: %v", kept.err)
	case <-time.After(300 * time.Millisecond):
	}
}

func TestShutdownClosesSocketsWith1012(t *testing.T) {
	srv := newTestServer(t)
	ana := srv.signup("ana")
	general := fmt.Sprintf("/rooms/%d/ws", srv.roomID("general", srv.user("ana").ID))
	a, home := ana.mustDial(general), ana.mustDial("/ws")
	frames(a, 200*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.H.Shutdown(ctx) }()
	for _, conn := range []*wsConn{a, home} {
		if code := closeCode(t, conn); code != websocket.StatusServiceRestart {
			t.Fatalf("close %d, want 1012", code)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("shutdown did not finish: %v", err)
	}
}

func TestSendRateLimitPerUser(t *testing.T) {
	srv := newTestServer(t)
	ana, bob := srv.signup("ana"), srv.signup("bob")
	general := srv.roomID("general", srv.user("ana").ID)
	path := fmt.Sprintf("/rooms/%d/ws", general)
	a, b := ana.mustDial(path), bob.mustDial(path)
	frames(a, 200*time.Millisecond)
	start := time.Now()
	for i := 0; i < 100; i++ {
		send(t, a, fmt.Sprintf("flood %d", i), fmt.Sprintf("f-%d", i))
	}
	readUntil(t, a, "sending messages too fast")
	send(t, b, "bob is unaffected", "")
	readUntil(t, a, "bob is unaffected")
	frames(a, 300*time.Millisecond)
	stored := textMessages(t, srv, general) - 1 // bob's
	allowed := 20 + int(5*time.Since(start).Seconds()) + 1
	if stored < 20 || stored > allowed {
		t.Fatalf("%d of the flood stored, want 20..%d", stored, allowed)
	}
	if fs := frames(b, 300*time.Millisecond); count(fs, "too fast") != 0 {
		t.Fatal("the limit's error went to another user")
	}
}

func TestConnectionCapPerUser(t *testing.T) {
	srv := newTestServer(t)
	ana, bob := srv.signup("ana"), srv.signup("bob")
	var open []*wsConn
	for i := 0; i < 16; i++ {
		open = append(open, ana.mustDial("/ws"))
	}
	srv.waitSubscribers(fmt.Sprintf("user:%d", srv.user("ana").ID), 16)
	extra := ana.mustDial("/ws")
	if code := closeCode(t, extra); code != websocket.StatusPolicyViolation {
		t.Fatalf("17th socket: close %d, want 1008", code)
	}
	if resp, _, _ := ana.streamRequest("/ticker/stream", nil); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a stream over the cap: %d, want 429", resp.StatusCode)
	}
	bob.mustDial("/ws") // other users are unaffected
	open[0].Close(websocket.StatusNormalClosure, "")
	srv.waitSubscribers(fmt.Sprintf("user:%d", srv.user("ana").ID), 15)
	time.Sleep(50 * time.Millisecond)
	ana.mustDial("/ws")
	srv.waitSubscribers(fmt.Sprintf("user:%d", srv.user("ana").ID), 16)
}

func TestExpiredSessionClosesSockets(t *testing.T) {
	srv := newTestServer(t, func(d *handlers.Deps) { d.SessionCheck = 100 * time.Millisecond })
	ana := srv.signup("ana")
	conn := ana.mustDial("/ws")
	st := ana.openStream("/ticker/stream", nil)
	srv.waitSubscribers(fmt.Sprintf("user:%d", srv.user("ana").ID), 1)
	// The session expires (here: it is deleted behind the app's back, as the expiry sweep does).
	if err := srv.Store.Sessions().Reset(); err != nil {
		t.Fatal(err)
	}
	if code := closeCode(t, conn); code != websocket.StatusPolicyViolation {
		t.Fatalf("close %d, want 1008", code)
	}
	select {
	case <-st.ended:
	case <-time.After(2 * time.Second):
		t.Fatal("stream still open 2 s after its session expired")
	}
}

func TestSecurityHeaders(t *testing.T) {
	srv := newTestServer(t)
	resp, _ := srv.newClient().get("/login")
	want := map[string]string{
		"Content-Security-Policy": "script-src 'self'",
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "same-origin",
	}
	for k, v := range want {
		if !strings.Contains(resp.Header.Get(k), v) {
			t.Errorf("%s = %q, want it to contain %q", k, resp.Header.Get(k), v)
		}
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe") {
		t.Errorf("CSP %q", csp)
	}
}

// Membership is checked on every send, not only at connect: a member removed from a private room while
// connected can post no more.
func TestMembershipCheckedOnEverySend(t *testing.T) {
	srv := newTestServer(t)
	ana, bob := srv.signup("ana"), srv.signup("bob")
	resp, _ := ana.post("/rooms", url.Values{"name": {"inner circle"}, "kind": {"private"}})
	room := resp.Header.Get("Location")
	ana.post(room+"/members", url.Values{"username": {"bob"}})
	var id int64
	fmt.Sscanf(room, "/rooms/%d", &id)
	conn := bob.mustDial(room + "/ws")
	send(t, conn, "while a member", "")
	readUntil(t, conn, "while a member")
	if err := srv.Store.Leave(context.Background(), id, srv.user("bob").ID); err != nil {
		t.Fatal(err)
	}
	send(t, conn, "after removal", "")
	if code := closeCode(t, conn); code != websocket.StatusPolicyViolation {
		t.Fatalf("close %d, want 1008", code)
	}
	msgs, _ := srv.Store.RecentMessages(context.Background(), id, 100)
	for _, m := range msgs {
		if m.Text == "after removal" {
			t.Fatal("a removed member's message was stored")
		}
	}
}
