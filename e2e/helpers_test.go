package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/domsnapshot"
	"github.com/chromedp/chromedp"
)

// pseudoText returns the text the browser rendered for an element's pseudo-element (e.g. "after"), or "" when it
// rendered none. getComputedStyle(el, "::after").content gives the declared value ("counter(unread)"), not the
// rendered count, so this reads the layout from a DOM snapshot.
func (p *tab) pseudoText(id, pseudo string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, actionTimeout)
	defer cancel()
	snap, err := chromedp.Run(ctx, chromedp.Action[domsnapshot.CaptureSnapshotResult](
		func(ctx context.Context, t *chromedp.Target) (domsnapshot.CaptureSnapshotResult, error) {
			return cdp.Call(ctx, t, domsnapshot.CaptureSnapshot, domsnapshot.CaptureSnapshotParams{ComputedStyles: []string{}})
		}))
	if err != nil {
		p.fatalf("DOM snapshot: %v", err)
	}
	if len(snap.Documents) == 0 {
		p.fatalf("DOM snapshot: no document")
	}
	doc := snap.Documents[0]
	str := func(i int64) string {
		if i < 0 || int(i) >= len(snap.Strings) {
			return ""
		}
		return snap.Strings[i]
	}
	nodes := doc.Nodes
	// The element: the node whose attributes hold id=<id>.
	elem := int64(-1)
	for i, attrs := range nodes.Attributes {
		for k := 0; k+1 < len(attrs); k += 2 {
			if str(int64(attrs[k])) == "id" && str(int64(attrs[k+1])) == id {
				elem = int64(i)
			}
		}
	}
	if elem < 0 {
		p.fatalf("DOM snapshot: no element #%s", id)
	}
	// Its pseudo-element, and the rendered text of that node and its children.
	inPseudo := map[int64]bool{}
	if nodes.PseudoType != nil {
		for k, idx := range nodes.PseudoType.Index {
			if nodes.ParentIndex[idx] == elem && str(int64(nodes.PseudoType.Value[k])) == pseudo {
				inPseudo[idx] = true
			}
		}
	}
	for i, parent := range nodes.ParentIndex {
		if inPseudo[parent] {
			inPseudo[int64(i)] = true
		}
	}
	var text strings.Builder
	for li, ni := range doc.Layout.NodeIndex {
		if inPseudo[ni] && li < len(doc.Layout.Text) {
			text.WriteString(str(int64(doc.Layout.Text[li])))
		}
	}
	return text.String()
}

// postMessagesJS posts n messages "<prefix>001"… through the room's POST route with the page's CSRF token, one at a
// time, waiting and retrying (same client id) when the send limit answers 429. It resolves to the number stored.
func postMessagesJS(room int, prefix string, n int) string {
	return fmt.Sprintf(`(async function () {
  var token = document.querySelector("#compose input[name=_csrf]").value;
  var prefix = %s, stored = 0;
  for (var i = 1; i <= %d; i++) {
    var text = prefix + String(i).padStart(3, "0");
    var body = new URLSearchParams({text: text, client_id: "seed-" + text, _csrf: token});
    for (;;) {
      var r = await fetch("/rooms/%d/messages", {method: "POST", body: body, credentials: "same-origin",
        headers: {"HX-Request": "true", "X-Csrf-Token": token}});
      if (r.status === 429) { await new Promise(function (ok) { setTimeout(ok, 250); }); continue; }
      if (!r.ok) throw new Error("POST " + text + ": " + r.status);
      stored++;
      break;
    }
  }
  return stored;
})()`, jsString(prefix), n, room)
}

// evalErr evaluates without failing the test (for use from other goroutines).
func evalErr[T any](p *tab, js string, timeout time.Duration) (T, error) {
	ctx, cancel := context.WithTimeout(p.ctx, timeout)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
}

// httpUser is a signed-in user without a browser: a plain HTTP client with a cookie jar that posts through the
// room form route (the no-JavaScript path).
type httpUser struct {
	t      *testing.T
	s      *server
	client *http.Client
}

var csrfInput = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)

// signupHTTP creates an account through the sign-up form over plain HTTP.
func signupHTTP(t *testing.T, s *server, username string) *httpUser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	u := &httpUser{t: t, s: s, client: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
	token := u.csrf("/signup")
	resp, err := u.client.PostForm(s.URL+"/signup", url.Values{"username": {username}, "password": {password}, "_csrf": {token}})
	if err != nil {
		t.Fatalf("e2e: sign up %s over HTTP: %v", username, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/rooms" {
		t.Fatalf("e2e: sign up %s over HTTP: %s at %s\n%s", username, resp.Status, resp.Request.URL, trim(string(body), 500))
	}
	return u
}

// csrf loads a page and returns the CSRF token of its first form.
func (u *httpUser) csrf(path string) string {
	u.t.Helper()
	resp, err := u.client.Get(u.s.URL + path)
	if err != nil {
		u.t.Fatalf("e2e: GET %s: %v", path, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfInput.FindSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil {
		u.t.Fatalf("e2e: GET %s: %s, CSRF token found: %v", path, resp.Status, m != nil)
	}
	return string(m[1])
}

// post sends a message through POST /rooms/:id/messages as the compose form does without JavaScript, and expects
// the redirect back to the room.
func (u *httpUser) post(room int, text string) {
	u.t.Helper()
	path := fmt.Sprintf("/rooms/%d", room)
	token := u.csrf(path)
	resp, err := u.client.PostForm(u.s.URL+path+"/messages", url.Values{"text": {text}, "_csrf": {token}})
	if err != nil {
		u.t.Fatalf("e2e: POST %s/messages: %v", path, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != path {
		u.t.Fatalf("e2e: POST %s/messages: %s, ended at %s", path, resp.Status, resp.Request.URL)
	}
}

// upgradeRefusingProxy is a reverse proxy in front of the server that answers every WebSocket upgrade with 502
// (as some corporate proxies do) and forwards everything else, streams included. Chromium's request blocking
// (Network.setBlockedURLs, Fetch interception) does not apply to WebSocket handshakes, so this is how the tests
// block them. refused counts the refused upgrades of room sockets (/rooms/:id/ws).
func upgradeRefusingProxy(t *testing.T, s *server) (proxy *httptest.Server, refused *atomic.Int64) {
	t.Helper()
	target, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	refused = new(atomic.Int64)
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host // the app sees the origin the browser uses
		},
		FlushInterval: -1,
	}
	proxy = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "" {
			if strings.HasPrefix(r.URL.Path, "/rooms/") {
				refused.Add(1)
			}
			http.Error(w, "upgrades are not allowed here", http.StatusBadGateway)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		proxy.CloseClientConnections() // open SSE streams would keep Close waiting
		proxy.Close()
	})
	return proxy, refused
}

func trim(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
