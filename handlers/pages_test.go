package handlers_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"switchboard/handlers"
)

// noSendLimit lifts the per-user send rate limit, for tests that post many messages.
func noSendLimit(d *handlers.Deps) { d.SendRate, d.SendBurst = 1e6, 1e6 }

func TestPagesAndForms(t *testing.T) {
	srv := newTestServer(t)
	ana := srv.signup("ana")
	bob := srv.signup("bob")
	anon := srv.newClient()
	general := srv.roomID("general", srv.user("ana").ID)

	// A private room of ana's, which bob may not see.
	resp, _ := ana.post("/rooms", url.Values{"name": {"secret plans"}, "kind": {"private"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("create private room: %d", resp.StatusCode)
	}
	private := resp.Header.Get("Location")

	tests := []struct {
		name         string
		c            *client
		method, path string
		form         url.Values
		wantStatus   int
		wantLocation string
		wantBody     string
	}{
		{"home signed out", anon, "GET", "/", nil, 303, "/login", ""},
		{"home signed in", ana, "GET", "/", nil, 303, "/rooms", ""},
		{"rooms need sign-in", anon, "GET", "/rooms", nil, 303, "/login", ""},
		{"room needs sign-in", anon, "GET", fmt.Sprintf("/rooms/%d", general), nil, 303, "/login", ""},
		{"login page", anon, "GET", "/login", nil, 200, "", `action="/login"`},
		{"signup page", anon, "GET", "/signup", nil, 200, "", `action="/signup"`},
		{"rooms list", ana, "GET", "/rooms", nil, 200, "", "#general"},
		{"room page", ana, "GET", fmt.Sprintf("/rooms/%d", general), nil, 200, "", `id="messages"`},
		{"unknown room", ana, "GET", "/rooms/9999", nil, 404, "", "no such room"},
		{"malformed room id", ana, "GET", "/rooms/abc", nil, 404, "", "no such room"},
		{"unknown page", ana, "GET", "/nowhere", nil, 404, "", "couldn&#39;t find that page"},
		{"private room hidden from non-member", bob, "GET", private, nil, 403, "", "members only"},
		{"private room open to member", ana, "GET", private, nil, 200, "", "secret plans"},
		{"older messages need an id", ana, "GET", fmt.Sprintf("/rooms/%d/messages?before=x", general), nil, 400, "", "before must be"},
		{"signup short username", anon, "POST", "/signup", url.Values{"username": {"al"}, "password": {"long enough"}}, 422, "", "3–32 characters"},
		{"signup bad characters", anon, "POST", "/signup", url.Values{"username": {"al ice"}, "password": {"long enough"}}, 422, "", "3–32 characters"},
		{"signup short password", anon, "POST", "/signup", url.Values{"username": {"carol"}, "password": {"short"}}, 422, "", "at least 8"},
		{"signup 73-byte password", anon, "POST", "/signup", url.Values{"username": {"carol"}, "password": {strings.Repeat("x", 73)}}, 422, "", "at most 72 bytes"},
		{"signup taken ignoring case", anon, "POST", "/signup", url.Values{"username": {"ANA"}, "password": {"long enough"}}, 409, "", "taken"},
		{"login wrong password", anon, "POST", "/login", url.Values{"username": {"ana"}, "password": {"wrong password"}}, 401, "", "Wrong username or password"},
		{"login unknown user", anon, "POST", "/login", url.Values{"username": {"nobody"}, "password": {"wrong password"}}, 401, "", "Wrong username or password"},
		{"create room empty name", ana, "POST", "/rooms", url.Values{"name": {"  "}}, 422, "", "1–64 characters"},
		{"create room bad kind", ana, "POST", "/rooms", url.Values{"name": {"x"}, "kind": {"direct"}}, 422, "", "open or private"},
		{"create room taken", ana, "POST", "/rooms", url.Values{"name": {"GENERAL"}}, 409, "", "exists already"},
		{"post empty message", ana, "POST", fmt.Sprintf("/rooms/%d/messages", general), url.Values{"text": {"   "}}, 422, "", "empty"},
		{"post too long", ana, "POST", fmt.Sprintf("/rooms/%d/messages", general), url.Values{"text": {strings.Repeat("é", 4001)}}, 422, "", "at most 4000"},
		{"post control characters", ana, "POST", fmt.Sprintf("/rooms/%d/messages", general), url.Values{"text": {"a\x07b"}}, 422, "", "control characters"},
		{"post to unknown room", ana, "POST", "/rooms/9999/messages", url.Values{"text": {"hi"}}, 404, "", ""},
		{"post to a private room as non-member", bob, "POST", private + "/messages", url.Values{"text": {"hi"}}, 403, "", ""},
		{"dm unknown user", ana, "GET", "/dm/nobody", nil, 404, "", "no user"},
		{"dm yourself", ana, "GET", "/dm/ana", nil, 400, "", "That&#39;s you"},
		{"dm form", ana, "GET", "/dm?username=Bob", nil, 303, "/dm/bob", ""},
		{"csrf missing on post", ana, "POST", "/rooms", url.Values{"name": {"x"}, "_csrf": {""}}, 403, "", "expired or came from another site"},
		{"csrf wrong on post", ana, "POST", "/rooms", url.Values{"name": {"x"}, "_csrf": {"forged"}}, 403, "", "expired or came from another site"},
		{"csrf missing on login", anon, "POST", "/login", url.Values{"username": {"ana"}, "password": {"correct horse"}, "_csrf": {""}}, 403, "", ""},
		{"csrf missing on logout", ana, "POST", "/logout", url.Values{"_csrf": {""}}, 403, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.c.t = t
			var resp *http.Response
			var body string
			if tt.method == "GET" {
				resp, body = tt.c.get(tt.path)
			} else {
				resp, body = tt.c.post(tt.path, tt.form)
			}
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status = %d, want %d; body: %.300s", resp.StatusCode, tt.wantStatus, body)
			}
			if loc := resp.Header.Get("Location"); tt.wantLocation != "" && loc != tt.wantLocation {
				t.Errorf("Location = %q, want %q", loc, tt.wantLocation)
			}
			if !strings.Contains(body, tt.wantBody) {
				t.Errorf("body lacks %q: %.500s", tt.wantBody, body)
			}
			if strings.Contains(strings.ToLower(body), "bcrypt") {
				t.Errorf("body mentions bcrypt")
			}
		})
	}
}

func TestFirstAccountIsAdmin(t *testing.T) {
	srv := newTestServer(t)
	srv.signup("first")
	srv.signup("second")
	if !srv.user("first").IsAdmin || srv.user("second").IsAdmin {
		t.Fatalf("admin flags: first=%v second=%v", srv.user("first").IsAdmin, srv.user("second").IsAdmin)
	}
}

func TestLoginRegeneratesSessionAndSetsCookieFlags(t *testing.T) {
	srv := newTestServer(t)
	srv.signup("ana")
	c := srv.newClient()
	c.get("/login")
	u, _ := url.Parse(srv.URL)
	before := sessionCookie(c, u)
	if before == "" {
		t.Fatal("no pre-login session cookie")
	}
	resp, _ := c.post("/login", url.Values{"username": {"Ana"}, "password": {"correct horse"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/rooms" {
		t.Fatalf("login: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	var setCookie string
	for _, sc := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(sc, "sb_session=") {
			setCookie = sc
		}
	}
	for _, flag := range []string{"HttpOnly", "SameSite=Lax", "path=/"} {
		if !strings.Contains(setCookie, flag) {
			t.Errorf("session cookie %q lacks %s", setCookie, flag)
		}
	}
	after := sessionCookie(c, u)
	if after == before || after == "" {
		t.Fatalf("session id not regenerated at login: before %q after %q", before, after)
	}
	// The pre-login id signs no one in.
	fixated := srv.newClient()
	fixated.http.Jar.SetCookies(u, []*http.Cookie{{Name: "sb_session", Value: before}})
	if resp, _ := fixated.get("/rooms"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("old session id still signed in: %d", resp.StatusCode)
	}
	if resp, _ := c.get("/rooms"); resp.StatusCode != http.StatusOK {
		t.Fatalf("new session not signed in: %d", resp.StatusCode)
	}
}

func sessionCookie(c *client, u *url.URL) string {
	for _, ck := range c.http.Jar.Cookies(u) {
		if ck.Name == "sb_session" {
			return ck.Value
		}
	}
	return ""
}

func TestLogoutEndsSession(t *testing.T) {
	srv := newTestServer(t)
	ana := srv.signup("ana")
	resp, _ := ana.post("/logout", nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
		t.Fatalf("logout: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := ana.get("/rooms"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("still signed in after logout: %d", resp.StatusCode)
	}
}

func TestLoginThrottledPerAccount(t *testing.T) {
	srv := newTestServer(t)
	srv.signup("ana")
	attacker := srv.newClient()
	var last int
	for i := 0; i < 12; i++ {
		resp, _ := attacker.post("/login", url.Values{"username": {"ana"}, "password": {fmt.Sprintf("guess-%02d", i)}})
		last = resp.StatusCode
	}
	if last != http.StatusTooManyRequests {
		t.Fatalf("after 12 wrong passwords: %d, want 429", last)
	}
	// Even the right password is refused while the account is throttled.
	if resp, _ := attacker.post("/login", url.Values{"username": {"ana"}, "password": {"correct horse"}}); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("right password during throttle: %d", resp.StatusCode)
	}
	// Another account from the same address is not locked by ana's failures.
	srv.signup("bob")
	if resp, _ := srv.newClient().post("/login", url.Values{"username": {"bob"}, "password": {"correct horse"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("bob's login: %d", resp.StatusCode)
	}
}

func TestPostMessageWithoutJavaScript(t *testing.T) {
	srv := newTestServer(t)
	ana := srv.signup("ana")
	general := srv.roomID("general", srv.user("ana").ID)
	path := fmt.Sprintf("/rooms/%d", general)
	resp, _ := ana.post(path+"/messages", url.Values{"text": {"<script>alert(1)</script> hello"}})
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), path+"#msg-") {
		t.Fatalf("post: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	_, body := ana.get(path)
	if !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt; hello") || strings.Contains(body, "<script>alert(1)") {
		t.Fatalf("message not shown escaped after reload")
	}
	if !strings.Contains(body, `id="`+strings.TrimPrefix(resp.Header.Get("Location"), path+"#")+`"`) {
		t.Fatalf("message element id missing")
	}
}

func TestRoomPageShowsNewest50AndOlderPages(t *testing.T) {
	srv := newTestServer(t, noSendLimit)
	ana := srv.signup("ana")
	general := srv.roomID("general", srv.user("ana").ID)
	path := fmt.Sprintf("/rooms/%d", general)
	for i := 1; i <= 120; i++ {
		resp, _ := ana.post(path+"/messages", url.Values{"text": {fmt.Sprintf("message number %03d", i)}})
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("post %d: %d", i, resp.StatusCode)
		}
	}
	_, body := ana.get(path)
	if !strings.Contains(body, "message number 120") || !strings.Contains(body, "message number 071") || strings.Contains(body, "message number 070") {
		t.Fatal("room page does not hold exactly the newest 50")
	}
	if strings.Index(body, "message number 071") > strings.Index(body, "message number 120") {
		t.Fatal("messages not oldest first")
	}
	older := olderLink(t, body)
	_, frag := ana.get(older)
	if !strings.Contains(frag, "message number 070") || !strings.Contains(frag, "message number 021") || strings.Contains(frag, "message number 020") || strings.Contains(frag, "message number 071") {
		t.Fatalf("second page wrong: %.300s", frag)
	}
	_, last := ana.get(olderLink(t, frag))
	if !strings.Contains(last, "message number 001") || strings.Contains(last, `id="older"`) {
		t.Fatal("last page wrong or still offers older messages")
	}
}

func olderLink(t *testing.T, body string) string {
	t.Helper()
	i := strings.Index(body, `hx-get="`)
	if i < 0 {
		t.Fatal("no older-messages loader")
	}
	rest := body[i+len(`hx-get="`):]
	return strings.ReplaceAll(rest[:strings.Index(rest, `"`)], "&amp;", "&")
}

func TestDirectRoomAndPrivateMembers(t *testing.T) {
	srv := newTestServer(t)
	ana := srv.signup("ana")
	bob := srv.signup("bob")
	srv.signup("cat")
	resp, _ := ana.get("/dm/bob")
	dm := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(dm, "/rooms/") {
		t.Fatalf("dm: %d %q", resp.StatusCode, dm)
	}
	if resp, _ := bob.get("/dm/ana"); resp.Header.Get("Location") != dm {
		t.Fatalf("bob's dm with ana is %q, ana's is %q", resp.Header.Get("Location"), dm)
	}
	if _, body := bob.get("/rooms"); !strings.Contains(body, "@ana") {
		t.Fatal("bob's room list lacks the direct room")
	}
	cat := srv.newClient()
	cat.post("/login", url.Values{"username": {"cat"}, "password": {"correct horse"}})
	if resp, _ := cat.get(dm); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a third user opened the direct room: %d", resp.StatusCode)
	}

	resp, _ = ana.post("/rooms", url.Values{"name": {"team"}, "kind": {"private"}})
	team := resp.Header.Get("Location")
	if resp, _ := cat.get(team); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("non-member opened the private room: %d", resp.StatusCode)
	}
	if resp, _ := ana.post(team+"/members", url.Values{"username": {"cat"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("add member: %d", resp.StatusCode)
	}
	resp, body := cat.get(team)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "cat joined") {
		t.Fatalf("added member: %d, join notice shown: %v", resp.StatusCode, strings.Contains(body, "cat joined"))
	}
	if resp, _ := ana.post(team+"/members", url.Values{"username": {"nobody"}}); resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("adding an unknown user: %d", resp.StatusCode)
	}
}

// A visitor without a session gets a session (for the CSRF token) only on the pages with forms they can use, so
// a crawler or a flood of 404s adds no rows.
func TestAnonymousRequestsMakeNoSessions(t *testing.T) {
	srv := newTestServer(t)
	for _, path := range []string{"/", "/nowhere", "/rooms", "/healthz"} {
		resp, _ := srv.newClient().get(path)
		for _, c := range resp.Header.Values("Set-Cookie") {
			if strings.HasPrefix(c, "sb_session=") {
				t.Errorf("GET %s made a session", path)
			}
		}
	}
	if resp, _ := srv.newClient().get("/login"); !strings.Contains(strings.Join(resp.Header.Values("Set-Cookie"), ";"), "sb_session=") {
		t.Error("the login page has no session for its CSRF token")
	}
}
