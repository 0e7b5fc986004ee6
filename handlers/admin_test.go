package handlers_test

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/coder/websocket"
)

var resetShown = regexp.MustCompile(`id="reset-password" readonly value="([^"]+)"`)

func TestAdminManagesAccounts(t *testing.T) {
	srv := newTestServer(t)
	admin := srv.signup("root") // the first account is the admin
	bob := srv.signup("bob")
	bobID := srv.user("bob").ID
	if resp, _ := bob.get("/admin"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a non-admin opened /admin: %d", resp.StatusCode)
	}
	resp, body := admin.get("/admin")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `data-user="bob"`) || !strings.Contains(body, `sse-connect="/admin/stream"`) {
		t.Fatalf("admin page: %d", resp.StatusCode)
	}
	st := admin.openStream("/admin/stream", nil)
	if ev := st.next(t); ev.Event != "stats" || !strings.Contains(ev.Data, "admin_sse") {
		t.Fatalf("stats event: %+v", ev)
	}
	act := func(action string) {
		t.Helper()
		if resp, _ := admin.post(fmt.Sprintf("/admin/users/%d", bobID), url.Values{"action": {action}}); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("%s: %d", action, resp.StatusCode)
		}
	}

	// Disabling closes bob's sockets (1008), ends his session, refuses his login, and voids his API tokens.
	token := bob.createToken("script")
	conn := bob.mustDial("/ws")
	srv.waitSubscribers(fmt.Sprintf("kick:%d", bobID), 1)
	act("disable")
	if code := closeCode(t, conn); code != websocket.StatusPolicyViolation {
		t.Fatalf("bob's socket: close %d, want 1008", code)
	}
	if resp, _ := bob.get("/rooms"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("a disabled user is still signed in: %d", resp.StatusCode)
	}
	if resp, body := srv.newClient().post("/login", url.Values{"username": {"bob"}, "password": {"correct horse"}}); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "disabled") {
		t.Fatalf("a disabled user signed in: %d", resp.StatusCode)
	}
	if resp, _ := srv.newClient().do("GET", "/api/rooms", nil, http.Header{"Authorization": {"Bearer " + token}}); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a disabled user's token still works: %d", resp.StatusCode)
	}
	act("enable")

	// A reset shows a new password once; the old password and old sessions stop working.
	again := srv.newClient()
	again.post("/login", url.Values{"username": {"bob"}, "password": {"correct horse"}})
	act("reset-password")
	_, body = admin.get("/admin")
	m := resetShown.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("the new password is not shown")
	}
	if _, body := admin.get("/admin"); resetShown.MatchString(body) {
		t.Fatal("the new password is shown twice")
	}
	if resp, _ := again.get("/rooms"); resp.StatusCode != http.StatusSeeOther {
		t.Fatal("a session from before the reset still signs bob in")
	}
	if resp, _ := srv.newClient().post("/login", url.Values{"username": {"bob"}, "password": {"correct horse"}}); resp.StatusCode != http.StatusUnauthorized {
		t.Fatal("the old password still works")
	}
	if resp, _ := srv.newClient().post("/login", url.Values{"username": {"bob"}, "password": {m[1]}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatal("the new password does not work")
	}

	act("make-admin")
	if !srv.user("bob").IsAdmin {
		t.Fatal("bob is not an admin")
	}
	if resp, _ := admin.post(fmt.Sprintf("/admin/users/%d", srv.user("root").ID), url.Values{"action": {"remove-admin"}}); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("an admin demoted themselves: %d", resp.StatusCode)
	}
}
