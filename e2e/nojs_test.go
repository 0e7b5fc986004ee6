package e2e

import (
	"fmt"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestWithoutJavaScript: with script execution off, a user signs up, opens a room, posts through the compose
// form's button and sees the message on the page the redirect lands on.
func TestWithoutJavaScript(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	p := newTab(t, "nojs", withoutJavaScript())
	p.signup(s, "dora")
	if eval[bool](p, `typeof htmx !== "undefined"`) {
		p.fatalf("htmx ran: scripts are not off")
	}

	p.navigate(s.URL + general)
	p.do(chromedp.WaitVisible(chromedp.ID("compose-text")))
	if state := eval[string](p, `document.getElementById("conn-state").dataset.state || ""`); state != "" {
		p.fatalf("#conn-state is %q: app.js ran", state)
	}
	const text = "posted without JavaScript <b>bold?</b>"
	p.do(
		chromedp.SendKeys(chromedp.ID("compose-text"), text),
		chromedp.Click(chromedp.CSS(`#compose button[type=submit]`)),
	)
	p.waitFor("the redirect back to the room, to the new message", `location.pathname === "/rooms/1" && location.hash.indexOf("#msg-") === 0 && document.readyState === "complete"`)
	hash := eval[string](p, `location.hash`)
	if got := eval[string](p, fmt.Sprintf(`(document.querySelector(%q + " > p") || {}).textContent`, hash)); got != text {
		p.fatalf("the message the redirect points at (%s) reads %q, want %q", hash, got, text)
	}
	if n := eval[int](p, countMessages(text)); n != 1 {
		p.fatalf("the message shows %d times, want 1", n)
	}
	if n := eval[int](p, `document.querySelectorAll("#messages b").length`); n != 0 {
		p.fatalf("the message was rendered as HTML")
	}
	p.screenshot("posted")
}
