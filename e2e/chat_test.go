package e2e

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// general is the room every server starts with.
const general = "/rooms/1"

// noticeCount is a JavaScript expression: how many join notices with exactly this text #messages holds.
func noticeCount(text string) string {
	return `Array.from(document.querySelectorAll("#messages article.notice > span")).filter(function(s){return s.textContent === ` + jsString(text) + `}).length`
}

// onlineNames is a JavaScript expression: the names in the people list marked online, sorted and comma-joined.
const onlineNames = `Array.from(document.querySelectorAll("#people li[data-online=true] a")).map(function(a){return a.textContent.trim()}).sort().join(",")`

// TestChatLiveBetweenTwoUsers: a message typed in one browser appears in the other without a reload, escaped (a
// stored-XSS payload shows as text: no element, no dialog), exactly once; Enter sends and clears the field,
// Shift+Enter makes a new line; the join notice and the online list update live.
func TestChatLiveBetweenTwoUsers(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	a, b := newTab(t, "alice"), newTab(t, "bob")
	a.signup(s, "alice")
	b.signup(s, "bob")

	a.openRoom(s, general)
	a.waitFor("alice alone online", onlineNames+` === "alice"`)
	b.openRoom(s, general)

	// B's arrival reaches A live: one join notice, and B in the online list.
	a.waitFor(`one "bob joined" notice in alice's page`, noticeCount("bob joined")+" === 1")
	a.waitFor("alice and bob online in alice's page", onlineNames+` === "alice,bob"`)
	b.waitFor("alice and bob online in bob's page", onlineNames+` === "alice,bob"`)
	if n := eval[int](b, noticeCount("bob joined")); n != 1 {
		b.fatalf(`"bob joined" shows %d times in bob's page, want 1`, n)
	}

	// Enter sends, the field clears, and B sees the text as text.
	const xss = `<img src=x onerror=alert(1)>`
	a.typeAndEnter(xss)
	if v := eval[string](a, `document.getElementById("compose-text").value`); v != "" {
		a.fatalf("the compose field holds %q after Enter, want it empty", v)
	}
	b.waitFor("the message in bob's page", countMessages(xss)+" >= 1")
	a.waitFor("the message in alice's page", countMessages(xss)+" >= 1")
	b.screenshot("bob-escaped")

	// A later message is a barrier: once it is in, a duplicate of the first would be too.
	a.typeAndEnter("did that render as text?")
	for _, p := range []*tab{a, b} {
		p.waitFor("the second message in "+p.name+"'s page", countMessages("did that render as text?")+" === 1")
		if n := eval[int](p, countMessages(xss)); n != 1 {
			p.fatalf("the payload shows %d times, want exactly once", n)
		}
		if n := eval[int](p, `document.querySelectorAll("#messages img, #messages [onerror]").length`); n != 0 {
			p.fatalf("#messages holds %d img/onerror elements: the payload was rendered as HTML", n)
		}
		texts := eval[[]string](p, messageTexts)
		if len(texts) < 2 || texts[len(texts)-2] != xss || texts[len(texts)-1] != "did that render as text?" {
			p.fatalf("messages in page order: %q, want them to end with the payload, then the second message", texts)
		}
		p.mu.Lock()
		dialogs := append([]string(nil), p.dialogs...)
		p.mu.Unlock()
		if len(dialogs) > 0 {
			p.fatalf("JavaScript dialogs opened: %v", dialogs)
		}
	}

	// Shift+Enter makes a new line and sends nothing; Enter then sends both lines as one message.
	before := eval[int](b, `document.querySelectorAll("#messages article.msg").length`)
	a.do(
		chromedp.Focus(chromedp.ID("compose-text")),
		chromedp.SendKeys(chromedp.ID("compose-text"), "first line"),
		pressEnter(chromedp.ModifierShift),
		chromedp.SendKeys(chromedp.ID("compose-text"), "second line"),
	)
	if v := eval[string](a, `document.getElementById("compose-text").value`); v != "first line\nsecond line" {
		a.fatalf("after Shift+Enter the field holds %q, want %q", v, "first line\nsecond line")
	}
	if n := eval[int](a, `document.querySelectorAll("#pending li").length`); n != 0 {
		a.fatalf("Shift+Enter queued %d messages, want none", n)
	}
	a.do(pressEnter())
	b.waitFor("the two-line message in bob's page", countMessages("first line\nsecond line")+" === 1")
	if after := eval[int](b, `document.querySelectorAll("#messages article.msg").length`); after != before+1 {
		b.fatalf("%d new messages after Shift+Enter then Enter, want 1", after-before)
	}
	if n := eval[int](b, countMessages("first line")); n != 0 {
		b.fatalf("Shift+Enter sent the first line on its own")
	}
	a.screenshot("alice")
	b.screenshot("bob")
}

// typingText is a JavaScript expression: the typing notice's text ("" when there is none).
const typingText = `((document.getElementById("typing") || {}).textContent || "")`

// TestTypingNotice: while alice types, bob sees "alice is typing…"; her message ends the notice at once (well
// before its own 5 s expiry), and a notice she leaves by stopping to type expires by itself.
func TestTypingNotice(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	a, b := newTab(t, "alice"), newTab(t, "bob")
	a.signup(s, "alice")
	b.signup(s, "bob")
	a.openRoom(s, general)
	b.openRoom(s, general)

	// Typed and sent: the message ends the notice.
	started := time.Now()
	a.do(chromedp.Focus(chromedp.ID("compose-text")), chromedp.SendKeys(chromedp.ID("compose-text"), "on my way"))
	b.waitFor(`"alice is typing…" in bob's page`, typingText+` === "alice is typing…"`)
	if got := eval[string](a, typingText); got != "" {
		a.fatalf("alice sees her own typing notice: %q", got)
	}
	a.do(pressEnter())
	b.waitFor("alice's message in bob's page", countMessages("on my way")+" === 1")
	arrived := time.Now()
	b.waitForWithin(2500*time.Millisecond, "alice's message to end her typing notice in bob's page (the notice would expire by itself only 5 s after she began)",
		typingText+` === ""`)
	t.Logf("the notice ended %v after the message arrived", time.Since(arrived).Round(10*time.Millisecond))

	// Typed and left: the notice expires by itself, about 5 s after the last notice. (The sender sends at most one
	// notice every 3 s: wait that out first.)
	time.Sleep(time.Until(started.Add(3200 * time.Millisecond)))
	a.do(chromedp.SendKeys(chromedp.ID("compose-text"), "hmm"))
	b.waitFor(`"alice is typing…" again in bob's page`, typingText+` === "alice is typing…"`)
	shown := time.Now()
	b.waitForWithin(10*time.Second, "the typing notice to expire", typingText+` === ""`)
	if d := time.Since(shown); d < 2*time.Second {
		b.fatalf("the typing notice vanished after %v while alice still had text in the box, want it to last about 5 s", d)
	}
}

// TestDirectMessageRaisesUnreadBadge: bob sits on the rooms page; alice opens a direct chat with him and writes;
// bob's list gets the room live, and its badge shows 1 unread.
func TestDirectMessageRaisesUnreadBadge(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	a, b := newTab(t, "alice"), newTab(t, "bob")
	a.signup(s, "alice")
	b.signup(s, "bob") // bob stays on /rooms
	b.waitConnected()

	a.openRoom(s, "/dm/bob")
	var room int
	if _, err := fmt.Sscanf(eval[string](a, `location.pathname`), "/rooms/%d", &room); err != nil {
		a.fatalf("/dm/bob did not land on a room: %v", err)
	}
	badge := fmt.Sprintf("unread-%d", room)
	b.waitFor("the direct room in bob's list", fmt.Sprintf(`!!document.getElementById(%q)`, badge))
	if n := eval[int](b, fmt.Sprintf(`document.querySelectorAll("#%s i").length`, badge)); n != 0 {
		b.fatalf("the new direct room has %d unread marks before any message, want 0", n)
	}

	a.typeAndEnter("psst, bob")
	b.waitFor("one unread mark on bob's badge", fmt.Sprintf(`document.querySelectorAll("#%s i").length === 1`, badge))
	if d := eval[string](b, fmt.Sprintf(`getComputedStyle(document.getElementById(%q)).display`, badge)); d == "none" {
		b.fatalf("the badge is hidden (display: none)")
	}
	if c := eval[string](b, fmt.Sprintf(`getComputedStyle(document.getElementById(%q), "::after").content`, badge)); c == "none" || c == "normal" || c == "" {
		b.fatalf("the badge's ::after has content %q, want a counter", c)
	}
	if got := b.pseudoText(badge, "after"); got != "1" {
		b.fatalf("the badge reads %q, want \"1\"", got)
	}
	b.screenshot("bob-badge")

	// Alice's own page never counts her message as unread for her.
	if n := eval[int](a, fmt.Sprintf(`(function(){var e=document.getElementById(%q);return e?e.querySelectorAll("i:not([data-author=alice])").length:0})()`, badge)); n != 0 {
		a.fatalf("alice's page counts %d unread in her own direct room", n)
	}
}

// TestScrollUpLoadsOlderMessages: a room with 120 messages opens scrolled to the newest; scrolling to the top loads
// older pages above, keeping the reader's place, until every message is shown once, in order.
func TestScrollUpLoadsOlderMessages(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	a, b := newTab(t, "alice"), newTab(t, "bob")
	a.signup(s, "alice")
	b.signup(s, "bob")
	a.openRoom(s, general)
	b.openRoom(s, general)

	// Seed 120 messages through the POST route, 60 per user in parallel (the send limit is 5/s with a burst of
	// 20 per user: about 8 s).
	const perUser = 60
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, p := range []*tab{a, b} {
		wg.Go(func() {
			n, err := evalErr[int](p, postMessagesJS(1, p.name+" says hello #", perUser), 60*time.Second)
			if err == nil && n != perUser {
				err = fmt.Errorf("stored %d of %d", n, perUser)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("seeding as %s: %v", []string{"alice", "bob"}[i], err)
		}
	}
	t.Logf("seeded %d messages in %v", 2*perUser, time.Since(start).Round(time.Millisecond))
	const total = 2*perUser + 3 // and the join notices of alice, bob and carol

	// A fresh page: the newest 50, scrolled to the bottom, with a loader for older ones above.
	c := newTab(t, "carol")
	c.signup(s, "carol")
	c.openRoom(s, general)
	c.waitFor("the page scrolled to the newest message", `(function(){var m=document.getElementById("messages");return m.scrollHeight-m.scrollTop-m.clientHeight<4})()`)
	if n := eval[int](c, `document.querySelectorAll("#messages > article").length`); n != 50 {
		c.fatalf("the room opened with %d messages, want the newest 50", n)
	}
	if !eval[bool](c, `!!document.querySelector("#messages > #older")`) {
		c.fatalf("no #older loader above the first page")
	}
	if !eval[bool](c, `(function(){var m=document.getElementById("messages"),l=m.lastElementChild.getBoundingClientRect(),r=m.getBoundingClientRect();return l.bottom<=r.bottom+1&&l.top>=r.top})()`) {
		c.fatalf("the newest message is not in view")
	}
	c.screenshot("opened")

	shown := 50
	for page := 1; shown < total; page++ {
		// Scroll to the top; note where the first shown message ends on screen now. (Its bottom edge, not its top:
		// once older messages are above it, it may lose its day separator and author line, and shrink.)
		first := eval[string](c, `document.querySelector("#messages > article").id`)
		edgeBefore := eval[float64](c, `(function(){var m=document.getElementById("messages");m.scrollTop=0;return document.querySelector("#messages > article").getBoundingClientRect().bottom})()`)
		want := min(shown+50, total)
		c.waitFor(fmt.Sprintf("page %d of older messages (%d shown)", page, want), fmt.Sprintf(`document.querySelectorAll("#messages > article").length === %d`, want))
		c.waitFor("the loader settled", `!document.querySelector("#messages .htmx-request, #messages .htmx-added, #messages .htmx-settling")`)
		edgeAfter := eval[float64](c, fmt.Sprintf(`document.getElementById(%q).getBoundingClientRect().bottom`, first))
		if d := edgeAfter - edgeBefore; d < -20 || d > 20 {
			c.fatalf("page %d: the message that was first (#%s) moved by %.0f px on screen (its bottom from %.0f to %.0f): the reader lost their place", page, first, d, edgeBefore, edgeAfter)
		}
		if page == 1 {
			c.screenshot("older-loaded")
		}
		shown = want
	}
	if eval[bool](c, `!!document.querySelector("#messages #older")`) {
		c.fatalf("a loader is left after the oldest message")
	}
	ids := eval[[]string](c, `Array.from(document.querySelectorAll("#messages > article")).map(function(a){return a.id})`)
	seen := map[string]bool{}
	last := 0
	for _, id := range ids {
		var n int
		if _, err := fmt.Sscanf(id, "msg-%d", &n); err != nil || seen[id] || n <= last {
			c.fatalf("message ids in page order are not unique and increasing at %q: %s", id, strings.Join(ids, " "))
		}
		seen[id], last = true, n
	}
	// Every seeded message once, and each user's in the order sent.
	next := map[string]int{"alice": 1, "bob": 1}
	for _, text := range eval[[]string](c, messageTexts) {
		who, _, _ := strings.Cut(text, " ")
		if want := fmt.Sprintf("%s says hello #%03d", who, next[who]); text != want {
			c.fatalf("found %q where %q was due: a message is missing, doubled or out of order", text, want)
		}
		next[who]++
	}
	if next["alice"] != perUser+1 || next["bob"] != perUser+1 {
		c.fatalf("shown: %d of alice's and %d of bob's messages, want %d each", next["alice"]-1, next["bob"]-1, perUser)
	}
}
