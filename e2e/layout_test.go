package e2e

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// docsScreenshotsEnv names the environment variable that makes TestLayout also write the README's screenshots
// (docs/screenshots/room.png and ticker.png, which are committed): E2E_DOCS_SCREENSHOTS=1 go test ./e2e/ -run Layout.
// Without it the suite leaves tracked files alone.
const docsScreenshotsEnv = "E2E_DOCS_SCREENSHOTS"

// docsScreenshotLimit is the most a committed screenshot may weigh.
const docsScreenshotLimit = 300 << 10

// noOverflow is a JavaScript expression: nothing is wider than the window (no sideways scrolling).
const noOverflow = `document.documentElement.scrollWidth <= window.innerWidth`

// widest is a JavaScript expression naming the elements that stick out on the right, for the failure message.
const widest = `Array.from(document.querySelectorAll("body *")).filter(function(e){return e.getBoundingClientRect().right > window.innerWidth + 0.5}).slice(0, 5).map(function(e){return e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + "." + String(e.className).split(" ").join(".") + " right=" + Math.round(e.getBoundingClientRect().right)}).join("; ")`

// TestLayout: on a phone (360x740) and a desktop (1280x800) window the room and the ticker fit the width; it saves
// the screenshots artifacts/room-{phone,desktop}.png and artifacts/ticker-{phone,desktop}.png, with a short
// conversation between two users in the room and a few seconds of ticks in the ticker.
func TestLayout(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	a, b := newTab(t, "ana"), newTab(t, "ben")
	a.signup(s, "ana")
	b.signup(s, "ben")
	a.openRoom(s, general)
	b.openRoom(s, general)
	conversation := []struct {
		from *tab
		text string
	}{
		{a, "Hi! Is the deploy still on for today?"},
		{b, "Yes. Migrations are done, we're waiting on one last review."},
		{b, "I'll post here when it's merged."},
		{a, "Great, I'll keep an eye on the dashboards."},
		{b, "Merged. Rolling out now."},
		{a, "Error rate is flat. Nice work!"},
	}
	for _, m := range conversation {
		m.from.typeAndEnter(m.text)
		for _, p := range []*tab{a, b} {
			p.waitFor(m.text+" in "+p.name+"'s page", countMessages(m.text)+" === 1")
		}
	}

	// The ticker in its own tab for ana, so that it gathers ticks while the room is checked.
	tk := newTab(t, "ana-ticker", withReducedMotion())
	tk.signup(s, "cleo")
	tk.navigate(s.URL + "/ticker")
	tickerOpened := time.Now()

	a.waitFor("the typing notices to end", `!document.getElementById("typing") || document.getElementById("typing").textContent === ""`)
	checkFits(a, "room desktop")
	room := a.screenshotAs("room-desktop.png")

	// A few seconds of ticks, so that the sparklines have a shape.
	tk.waitFor("a VOIDX sparkline with some history", `(function(){var p=document.querySelector("#row-VOIDX polyline");return p&&p.getAttribute("points").trim().split(/\s+/).length>=15})()`)
	t.Logf("the ticker had %v of ticks for its picture", time.Since(tickerOpened).Round(100*time.Millisecond))
	checkFits(tk, "ticker desktop")
	ticker := tk.screenshotAs("ticker-desktop.png")

	phone := newTab(t, "phone", withViewport(360, 740, true))
	phone.signup(s, "dan")
	phone.openRoom(s, general)
	phone.waitFor("the conversation on the phone", countMessages("Error rate is flat. Nice work!")+" === 1")
	checkFits(phone, "room phone")
	if eval[bool](phone, `getComputedStyle(document.getElementById("sidebar")).display !== "none"`) {
		phone.fatalf("the rooms sidebar shows on a phone, want it collapsed")
	}
	phone.screenshotAs("room-phone.png")
	phone.navigate(s.URL + "/ticker")
	phone.waitFor("the ticker rows", `document.querySelectorAll("#quotes tr").length > 0`)
	checkFits(phone, "ticker phone")
	phone.screenshotAs("ticker-phone.png")

	if os.Getenv(docsScreenshotsEnv) != "" {
		docs := filepath.Join("..", "docs", "screenshots")
		if err := os.MkdirAll(docs, 0o755); err != nil {
			t.Fatal(err)
		}
		for src, dst := range map[string]string{room: "room.png", ticker: "ticker.png"} {
			png, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			if len(png) > docsScreenshotLimit {
				t.Errorf("%s weighs %d KB, more than %d KB", src, len(png)>>10, docsScreenshotLimit>>10)
				continue
			}
			if err := os.WriteFile(filepath.Join(docs, dst), png, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("wrote %s (%d KB)", filepath.Join(docs, dst), len(png)>>10)
		}
	}
}

// checkFits fails the test when the page is wider than the window.
func checkFits(p *tab, what string) {
	p.t.Helper()
	if !eval[bool](p, noOverflow) {
		p.fatalf("%s: the page is %d px wide in a %d px window; too wide: %s", what,
			eval[int](p, `document.documentElement.scrollWidth`), eval[int](p, `window.innerWidth`), eval[string](p, widest))
	}
}

// screenshotAs saves a full-page PNG as artifacts/<name> (a fixed name, for the README) and returns its path.
func (p *tab) screenshotAs(name string) string {
	p.t.Helper()
	path := p.screenshot("tmp-" + name[:len(name)-len(filepath.Ext(name))])
	if path == "" {
		p.fatalf("no screenshot for %s", name)
	}
	dst := filepath.Join(artifactsDir, name)
	if err := os.Rename(path, dst); err != nil {
		p.fatalf("rename %s: %v", path, err)
	}
	return dst
}
