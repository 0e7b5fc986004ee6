package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

const (
	reconnectTimeout = 30 * time.Second // the ws extension backs off with full jitter: up to 1, 2, 4, 8 s…
	fallbackTimeout  = 15 * time.Second // three failed WebSocket attempts, then the SSE stream
)

// notConnected is a JavaScript expression: the page shows it is not connected.
const notConnected = `(function(){var c=document.getElementById("conn-state");return c&&c.dataset.state!=="open"&&c.textContent!==""})()`

// pendingCount is a JavaScript expression: how many messages the page shows as waiting to be sent.
const pendingCount = `document.querySelectorAll("#pending li").length`

// liveMode is a JavaScript expression: how the page is connected, "ws" or "sse".
const liveMode = `document.querySelector("#live[sse-connect]") ? "sse" : "ws"`

// wantTail fails unless the page's messages end with want, each exactly once in the whole page.
func wantTail(p *tab, want []string) {
	p.t.Helper()
	texts := eval[[]string](p, messageTexts)
	for _, w := range want {
		if n := count(texts, w); n != 1 {
			p.fatalf("%q shows %d times, want exactly once; messages: %q", w, n, texts)
		}
	}
	if len(texts) < len(want) || !slices.Equal(texts[len(texts)-len(want):], want) {
		p.fatalf("the messages end with %q, want %q", texts[max(0, len(texts)-len(want)):], want)
	}
}

func count(texts []string, s string) int {
	n := 0
	for _, t := range texts {
		if t == s {
			n++
		}
	}
	return n
}

// messageIDs is a JavaScript expression: the ids of the elements in #messages, in page order.
const messageIDs = `Array.from(document.querySelectorAll("#messages > article")).map(function(a){return a.id})`

// wantSameIncreasingIDs fails unless both pages show the same messages, in increasing id order.
func wantSameIncreasingIDs(a, b *tab) {
	a.t.Helper()
	ids := eval[[]string](a, messageIDs)
	if other := eval[[]string](b, messageIDs); !slices.Equal(ids, other) {
		a.fatalf("the pages differ: %s shows %v, %s shows %v", a.name, ids, b.name, other)
	}
	last := 0
	for _, id := range ids {
		var n int
		if _, err := fmt.Sscanf(id, "msg-%d", &n); err != nil || n <= last {
			a.fatalf("message ids are not increasing in page order at %q: %v", id, ids)
		}
		last = n
	}
}

// TestRestartReconnectsAndReplays: the server is stopped gracefully (SIGTERM: sockets close with 1012) and started
// again, after several failed reconnects, on the same port and database; both pages reconnect by themselves, on
// their WebSockets (an outage is not a blocking proxy), and the messages sent meanwhile (through the POST route by
// a third user, and typed into one page while the server was down) appear exactly once, in the same order on both
// pages, followed by live ones.
func TestRestartReconnectsAndReplays(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	a, b := newTab(t, "alice"), newTab(t, "bob")
	a.signup(s, "alice")
	b.signup(s, "bob")
	carol := signupHTTP(t, s, "carol") // posts through the form route, without a browser
	a.openRoom(s, general)
	b.openRoom(s, general)

	a.typeAndEnter("before the restart")
	b.waitFor("the first message in bob's page", countMessages("before the restart")+" === 1")
	for _, p := range []*tab{a, b} {
		eval[bool](p, `(function(){window.__e2eAttempts=0;document.addEventListener("htmx:wsConnecting",function(){window.__e2eAttempts++});return true})()`)
	}

	s.Stop()
	for _, p := range []*tab{a, b} {
		p.waitFor(p.name+"'s page to show it lost the connection", notConnected)
	}
	a.typeAndEnter("typed during the restart")
	a.screenshot("alice-down")
	// Down long enough for three failed reconnects (0–1 s, 0–2 s, 0–4 s apart), as a deploy's restart can be: a
	// page whose socket worked must not take that for a proxy that blocks WebSockets.
	for _, p := range []*tab{a, b} {
		p.waitForWithin(reconnectTimeout, "three failed reconnects in "+p.name+"'s page", `window.__e2eAttempts >= 4 || !!document.querySelector("#live[sse-connect]")`)
	}
	s.Start()

	// Posted while the pages are still reconnecting (the ws extension waits a random 0–1 s, then 0–2 s, …).
	meanwhile := []string{"posted meanwhile 1", "posted meanwhile 2", "posted meanwhile 3"}
	for _, text := range meanwhile {
		carol.post(1, text)
	}
	for _, p := range []*tab{a, b} {
		p.waitForWithin(reconnectTimeout, p.name+"'s page to reconnect by itself", `(function(){var c=document.getElementById("conn-state");return c.dataset.state==="open"&&c.textContent===""})()`)
	}
	for _, p := range []*tab{a, b} {
		if mode := eval[string](p, liveMode); mode != "ws" {
			p.fatalf("after the restart the page is on %s, want its WebSocket back (only a blocked upgrade should switch it to SSE)", mode)
		}
	}
	for _, p := range []*tab{a, b} {
		for _, text := range append(meanwhile, "typed during the restart") {
			p.waitFor(fmt.Sprintf("%q in %s's page", text, p.name), countMessages(text)+" >= 1")
		}
	}
	a.waitFor("alice's pending list to empty", pendingCount+" === 0")

	// And live again: a new message from bob reaches alice.
	b.typeAndEnter("after the restart")
	for _, p := range []*tab{a, b} {
		p.waitFor("the live message after the restart in "+p.name+"'s page", countMessages("after the restart")+" === 1")
		texts := eval[[]string](p, messageTexts)
		for _, text := range append(meanwhile, "before the restart", "typed during the restart") {
			if n := count(texts, text); n != 1 {
				p.fatalf("%q shows %d times, want exactly once; messages: %q", text, n, texts)
			}
		}
		if texts[0] != "before the restart" || texts[len(texts)-1] != "after the restart" {
			p.fatalf("messages: %q, want the first before the restart first and the live one last", texts)
		}
		var posted []string
		for _, text := range texts {
			if strings.HasPrefix(text, "posted meanwhile") {
				posted = append(posted, text)
			}
		}
		if !slices.Equal(posted, meanwhile) {
			p.fatalf("carol's messages show as %q, want %q", posted, meanwhile)
		}
	}
	wantSameIncreasingIDs(a, b)
	a.screenshot("alice-up")
	b.screenshot("bob-up")
}

// TestOutboxKeepsTypedMessages: a message typed while the server is down is never silently dropped: the field
// clears, the page shows it as pending (Enter twice queues it once), and once the server is back it is sent exactly
// once. It survives a reload while the server is down, too.
func TestOutboxKeepsTypedMessages(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	a, b := newTab(t, "alice"), newTab(t, "bob")
	a.signup(s, "alice")
	b.signup(s, "bob")
	a.openRoom(s, general)
	b.openRoom(s, general)

	// 1. Typed while down, sent on reconnect.
	s.Stop()
	a.waitFor("alice's page to show it lost the connection", notConnected)
	a.typeAndEnter("typed while the server was down")
	a.do(pressEnter()) // an impatient second Enter on the empty field sends nothing more
	if v := eval[string](a, `document.getElementById("compose-text").value`); v != "" {
		a.fatalf("the field holds %q after Enter, want it cleared", v)
	}
	a.waitFor("one pending message", pendingCount+" === 1")
	if txt := eval[string](a, `document.querySelector("#pending li").textContent`); !strings.Contains(txt, "typed while the server was down") {
		a.fatalf("the pending item reads %q", txt)
	}
	a.screenshot("pending")
	s.Start()
	for _, p := range []*tab{a, b} {
		p.waitForWithin(reconnectTimeout, "the queued message in "+p.name+"'s page", countMessages("typed while the server was down")+" >= 1")
	}
	a.waitFor("the pending list to empty", pendingCount+" === 0")
	a.typeAndEnter("and one more") // a barrier: once it is in, a late duplicate of the first would be too
	for _, p := range []*tab{a, b} {
		p.waitFor("the next message in "+p.name+"'s page", countMessages("and one more")+" === 1")
		wantTail(p, []string{"typed while the server was down", "and one more"})
	}

	// 2. Typed while down, then the page is reloaded (still down: an error page), then the server comes back and
	// the user opens the room again: the message kept in the outbox is sent, once.
	s.Stop()
	a.waitFor("alice's page to show it lost the connection", notConnected)
	a.typeAndEnter("typed before a reload")
	a.waitFor("one pending message", pendingCount+" === 1")
	_ = chromedp.Do(a.ctx, chromedp.Reload()) // fails: the server is down
	a.waitFor("the browser's error page", `!document.getElementById("compose")`)
	s.Start()
	a.openRoom(s, general)
	for _, p := range []*tab{a, b} {
		p.waitForWithin(reconnectTimeout, "the message kept over the reload in "+p.name+"'s page", countMessages("typed before a reload")+" >= 1")
	}
	a.waitFor("the pending list to empty", pendingCount+" === 0")
	b.typeAndEnter("got it")
	for _, p := range []*tab{a, b} {
		p.waitFor("the next message in "+p.name+"'s page", countMessages("got it")+" === 1")
		wantTail(p, []string{"typed while the server was down", "and one more", "typed before a reload", "got it"})
	}
	if n := eval[int](a, `Object.keys(localStorage).filter(function(k){return k.indexOf("sb-outbox:")===0}).length`); n != 0 {
		a.fatalf("%d outbox entries are left in localStorage", n)
	}
	a.screenshot("alice-sent")
}

// TestFallbackToSSEWhenWebSocketsAreBlocked: behind a proxy that refuses WebSocket upgrades the room page gives up
// on the socket after repeated failures and switches to the SSE stream plus POST; messages flow both ways between
// it and a page on a WebSocket, exactly once.
func TestFallbackToSSEWhenWebSocketsAreBlocked(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	proxy, refused := upgradeRefusingProxy(t, s)
	behind := &server{URL: proxy.URL} // alice's view of the server: through the proxy
	a, b := newTab(t, "alice"), newTab(t, "bob")
	a.signup(behind, "alice")
	b.signup(s, "bob")
	b.openRoom(s, general)

	start := time.Now()
	a.navigate(proxy.URL + general)
	a.waitForWithin(fallbackTimeout, "the page to switch to the SSE stream (div#live[sse-connect])", `!!document.querySelector("div#live[sse-connect]")`)
	a.waitConnected()
	t.Logf("switched to SSE after %v and %d refused upgrades", time.Since(start).Round(time.Millisecond), refused.Load())
	if refused.Load() < 3 {
		t.Errorf("the proxy refused %d upgrades, want at least 3 before the switch", refused.Load())
	}
	if eval[bool](a, `!!document.querySelector("[ws-connect]")`) {
		a.fatalf("the WebSocket element is still in the page next to the stream")
	}

	b.typeAndEnter("from bob, over his socket")
	a.waitFor("bob's message in alice's page", countMessages("from bob, over his socket")+" >= 1")
	a.typeAndEnter("from alice, by POST")
	if v := eval[string](a, `document.getElementById("compose-text").value`); v != "" {
		a.fatalf("the field holds %q after Enter, want it cleared", v)
	}
	b.waitFor("alice's message in bob's page", countMessages("from alice, by POST")+" >= 1")
	a.waitFor("alice's own message back over the stream", countMessages("from alice, by POST")+" >= 1")
	a.waitFor("the pending list to empty", pendingCount+" === 0")
	b.typeAndEnter("both ways, then") // a barrier for late duplicates
	for _, p := range []*tab{a, b} {
		p.waitFor("the last message in "+p.name+"'s page", countMessages("both ways, then")+" === 1")
		wantTail(p, []string{"from bob, over his socket", "from alice, by POST", "both ways, then"})
	}
	a.screenshot("alice-sse")
	// The switch happens in the handler of the third failure, after the ws extension has scheduled its next
	// attempt (htmx.remove does not cancel that timer): one stray attempt may follow, but no more.
	if got := refused.Load(); got > 4 {
		t.Errorf("%d room socket upgrades refused in all, want 3 (or 4): the page kept trying WebSockets after the switch", got)
	}
}
