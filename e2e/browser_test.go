package e2e

// The browser: one headless Chromium per test binary; every user is a page in its own browser context (cookies and
// localStorage apart). A page records console errors, CSP violations (securitypolicyviolation events) and
// JavaScript dialogs; a test fails on any CSP violation or dialog, and console errors go to the test log.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"switchboard/internal/sbbuild"
)

const (
	waitTimeout   = 20 * time.Second // one wait for a condition in a page (slow CI machines: 2 cores)
	actionTimeout = 30 * time.Second // one chromedp action (navigate, type, screenshot)
	pollEvery     = 50 * time.Millisecond
	password      = "correct-horse-battery"
	artifactsDir  = "artifacts"
	noChromium    = "e2e: no Chromium found (install Debian's chromium, or set CHROMIUM_PATH)"
)

func TestMain(m *testing.M) {
	code := m.Run()
	shared.close()
	sbbuild.Cleanup()
	os.Exit(code)
}

// chromiumPath finds the browser: $CHROMIUM_PATH, then chromium, chromium-browser and google-chrome on PATH.
func chromiumPath() string {
	if p := os.Getenv("CHROMIUM_PATH"); p != "" {
		if found, err := exec.LookPath(p); err == nil {
			return found
		}
		return ""
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if found, err := exec.LookPath(name); err == nil {
			return found
		}
	}
	return ""
}

// sharedBrowser is the one browser of the test binary, started by the first test that needs it.
type sharedBrowser struct {
	once        sync.Once
	ctx         context.Context // a chromedp context with the browser running
	cancel      func()
	cancelAlloc func()
	dir         string // --user-data-dir
	err         error
}

var shared sharedBrowser

// browser returns the shared browser's context, starting Chromium on first use; it skips the test when there is
// no Chromium.
func browser(t *testing.T) context.Context {
	t.Helper()
	path := chromiumPath()
	if path == "" {
		t.Skip(noChromium)
	}
	shared.once.Do(func() {
		if shared.dir, shared.err = os.MkdirTemp("", "switchboard-e2e-chromium-"); shared.err != nil {
			return
		}
		opts := append(chromedp.DefaultExecAllocatorOptions[:],
			chromedp.ExecPath(path),
			chromedp.UserDataDir(shared.dir),
			chromedp.NoSandbox,
			chromedp.DisableGPU,
			chromedp.Flag("disable-background-networking", true),
			chromedp.Flag("disable-component-update", true),
			chromedp.Flag("disable-sync", true),
			chromedp.Flag("disable-quic", true),
			chromedp.NoFirstRun,
			chromedp.WindowSize(1280, 800),
		)
		allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
		ctx, cancel := chromedp.NewContext(allocCtx)
		start, cancelStart := context.WithTimeout(ctx, actionTimeout)
		defer cancelStart()
		// The first Do binds the browser's life to the context it gets: give it ctx, and time out around it.
		errc := make(chan error, 1)
		go func() { errc <- chromedp.Do(ctx) }()
		select {
		case shared.err = <-errc:
		case <-start.Done():
			shared.err = fmt.Errorf("no browser after %v", actionTimeout)
		}
		shared.ctx, shared.cancel, shared.cancelAlloc = ctx, cancel, cancelAlloc
		if shared.err != nil {
			shared.err = fmt.Errorf("e2e: start %s: %w", path, shared.err)
		}
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.ctx
}

// close stops the browser and removes its profile.
func (s *sharedBrowser) close() {
	if s.cancel != nil {
		s.cancel()
		s.cancelAlloc()
	}
	if s.dir != "" {
		os.RemoveAll(s.dir)
	}
}

// artifactPath names a file under artifacts/ for the test: artifacts/<TestName>-<name>.
func artifactPath(t *testing.T, name string) string {
	if err := os.MkdirAll(artifactsDir, 0o755); err != nil {
		t.Logf("e2e: mkdir %s: %v", artifactsDir, err)
	}
	test := regexp.MustCompile(`[^A-Za-z0-9_.-]+`).ReplaceAllString(t.Name(), "_")
	return filepath.Join(artifactsDir, test+"-"+name)
}

// violation is one securitypolicyviolation event, as the page reports it.
type violation struct {
	Directive string `json:"directive"`
	Blocked   string `json:"blocked"`
	Source    string `json:"source"`
	Line      int    `json:"line"`
	Sample    string `json:"sample"`
	Page      string `json:"page"`
}

// reportJS runs in every document of a page, before its own scripts: it passes CSP violations to Go.
const reportJS = `document.addEventListener("securitypolicyviolation", function (e) {
  window.__e2eViolation({directive: e.violatedDirective, blocked: e.blockedURI, source: e.sourceFile,
    line: e.lineNumber, sample: e.sample, page: location.href});
});`

// tab is one user's page in its own browser context.
type tab struct {
	t    *testing.T
	name string
	ctx  context.Context

	mu         sync.Mutex
	console    []string // errors and exceptions, formatted
	violations []violation
	dialogs    []string
}

type tabOption func(*tabConfig)

type tabConfig struct {
	width, height int64
	mobile        bool
	noScript      bool
	reducedMotion bool
}

// withViewport sets the page's size (CSS pixels); mobile also emulates a phone (touch, mobile meta viewport).
func withViewport(width, height int64, mobile bool) tabOption {
	return func(c *tabConfig) { c.width, c.height, c.mobile = width, height, mobile }
}

// withoutJavaScript turns script execution off for the page.
func withoutJavaScript() tabOption {
	return func(c *tabConfig) { c.noScript = true }
}

// withReducedMotion makes the page prefer reduced motion (no flashing ticker rows: a calmer picture).
func withReducedMotion() tabOption {
	return func(c *tabConfig) { c.reducedMotion = true }
}

// newTab opens a page for one user in a fresh browser context (default 1280x800). When the test ends it fails on
// CSP violations and dialogs, logs console errors, and closes the context.
func newTab(t *testing.T, name string, opts ...tabOption) *tab {
	t.Helper()
	cfg := tabConfig{width: 1280, height: 800}
	for _, o := range opts {
		o(&cfg)
	}
	ctx, cancel := chromedp.NewContext(browser(t), chromedp.WithNewBrowserContext())
	p := &tab{t: t, name: name, ctx: ctx}
	// The first Do creates the target and binds its life to ctx (no timeout here).
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		t.Fatalf("e2e: open a tab for %s: %v", name, err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		p.check()
		cancel()
		wg.Wait()
	})

	// Subscribe before anything loads, so that nothing is missed.
	console := chromedp.Console(ctx)
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	wg.Go(func() {
		for m, err := range console {
			if err != nil {
				return
			}
			if m.Type != chromedp.ConsoleError && m.Type != chromedp.ConsoleException && m.Type != "assert" {
				continue
			}
			p.mu.Lock()
			p.console = append(p.console, fmt.Sprintf("%s (%s:%d)", m.String(), m.URL, m.Line))
			p.mu.Unlock()
		}
	})
	wg.Go(func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			p.mu.Lock()
			p.dialogs = append(p.dialogs, fmt.Sprintf("%s: %q", ev.Type, ev.Message))
			p.mu.Unlock()
			// An open dialog blocks the page: dismiss it (from here, not from an action that waits on the page).
			dctx, dcancel := context.WithTimeout(ctx, 5*time.Second)
			_, _ = chromedp.Call(dctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
			dcancel()
		}
	})

	actions := []chromedp.Action[chromedp.Void]{
		chromedp.ExposeFunc("__e2eViolation", func(_ context.Context, v violation) (chromedp.Void, error) {
			p.mu.Lock()
			p.violations = append(p.violations, v)
			p.mu.Unlock()
			return chromedp.Void{}, nil
		}),
		chromedp.Func(func(ctx context.Context, tt *chromedp.Target) error {
			_, err := cdp.Call(ctx, tt, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: reportJS})
			return err
		}),
	}
	if cfg.mobile {
		actions = append(actions, chromedp.EmulateViewport(cfg.width, cfg.height, chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulatePortrait))
	} else {
		actions = append(actions, chromedp.EmulateViewport(cfg.width, cfg.height))
	}
	if cfg.reducedMotion {
		actions = append(actions, chromedp.Func(func(ctx context.Context, tt *chromedp.Target) error {
			_, err := cdp.Call(ctx, tt, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
				Features: []*emulation.MediaFeature{{Name: "prefers-reduced-motion", Value: "reduce"}},
			})
			return err
		}))
	}
	if cfg.noScript {
		actions = append(actions, chromedp.Func(func(ctx context.Context, tt *chromedp.Target) error {
			_, err := cdp.Call(ctx, tt, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
			return err
		}))
	}
	p.do(actions...)
	return p
}

// check fails the test on CSP violations and dialogs, and logs console errors.
func (p *tab) check() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, v := range p.violations {
		p.t.Errorf("%s: CSP violation on %s: %s blocked %q (%s:%d) %q", p.name, v.Page, v.Directive, v.Blocked, v.Source, v.Line, v.Sample)
	}
	for _, d := range p.dialogs {
		p.t.Errorf("%s: a JavaScript dialog opened: %s", p.name, d)
	}
	// The same message again and again (a refused reconnect, a 429 while seeding) is logged once, with a count.
	counts := map[string]int{}
	var order []string
	for _, c := range p.console {
		if counts[c] == 0 {
			order = append(order, c)
		}
		counts[c]++
	}
	for _, c := range order {
		p.t.Logf("%s: console (%d×): %s", p.name, counts[c], c)
	}
}

// fatalf saves a screenshot of the page and ends the test.
func (p *tab) fatalf(format string, args ...any) {
	p.t.Helper()
	msg := fmt.Sprintf(format, args...)
	if p.ctx.Err() == nil {
		p.screenshot("failure-" + p.name)
	}
	p.t.Fatalf("%s: %s", p.name, msg)
}

// do runs actions with a timeout.
func (p *tab) do(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, actionTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.fatalf("%v", err)
	}
}

// eval evaluates a JavaScript expression in the page and decodes its value.
func eval[T any](p *tab, js string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, actionTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		p.fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// waitFor polls a JavaScript boolean expression until it is true; it fails the test after waitTimeout with what.
// Errors while polling (a navigation in between) count as false.
func (p *tab) waitFor(what, js string) {
	p.t.Helper()
	p.waitForWithin(waitTimeout, what, js)
}

func (p *tab) waitForWithin(d time.Duration, what, js string) {
	p.t.Helper()
	deadline := time.Now().Add(d)
	var last error
	for {
		ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("!!("+js+")"))
		cancel()
		if err == nil && ok {
			return
		}
		if err != nil {
			last = err
		}
		if time.Now().After(deadline) || p.ctx.Err() != nil {
			if last != nil {
				p.fatalf("waited %v for %s; last error: %v", d, what, last)
			}
			p.fatalf("waited %v for %s", d, what)
		}
		time.Sleep(pollEvery)
	}
}

// navigate loads url and waits for the load event.
func (p *tab) navigate(url string) {
	p.t.Helper()
	p.do(chromedp.Navigate(url))
}

// screenshot saves a full-page PNG as artifacts/<Test>-<name>.png and returns its path.
func (p *tab) screenshot(name string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, actionTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Logf("%s: screenshot %s: %v", p.name, name, err)
		return ""
	}
	path := artifactPath(p.t, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Logf("%s: save %s: %v", p.name, path, err)
		return ""
	}
	return path
}

// signup creates the account through the sign-up form and waits for the rooms page.
func (p *tab) signup(s *server, username string) {
	p.t.Helper()
	p.navigate(s.URL + "/signup")
	p.do(
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), username),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.CSS(`form[action="/signup"] button[type=submit]`)),
	)
	p.waitFor("the rooms page after signing up as "+username, `location.pathname === "/rooms" && document.readyState === "complete"`)
}

// openRoom opens a room page by path and waits until its connection (socket or stream) is open.
func (p *tab) openRoom(s *server, path string) {
	p.t.Helper()
	p.navigate(s.URL + path)
	p.waitConnected()
}

// waitConnected waits until the page's live connection is open (app.js marks #conn-state data-state="open").
func (p *tab) waitConnected() {
	p.t.Helper()
	p.waitFor("the live connection to open (#conn-state[data-state=open], empty)",
		`(function(){var c=document.getElementById("conn-state");return c&&c.dataset.state==="open"&&c.textContent===""})()`)
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// countMessages is a JavaScript expression: how many messages in #messages have exactly this text.
func countMessages(text string) string {
	return `Array.from(document.querySelectorAll("#messages article.msg > p")).filter(function(p){return p.textContent === ` + jsString(text) + `}).length`
}

// messageTexts is a JavaScript expression: the texts of the messages in #messages, in page order.
const messageTexts = `Array.from(document.querySelectorAll("#messages article.msg > p")).map(function(p){return p.textContent})`

// typeAndEnter types text into the compose box and presses Enter (keyboard, not touch).
func (p *tab) typeAndEnter(text string) {
	p.t.Helper()
	p.do(
		chromedp.Focus(chromedp.ID("compose-text")),
		chromedp.SendKeys(chromedp.ID("compose-text"), text),
		pressEnter(),
	)
}

// pressEnter presses and releases Enter on the focused element as a keyboard does: one keyDown that carries the
// text "\r", so that the browser makes the char event itself and drops it when the page cancels the keydown (as
// app.js does to send). chromedp.KeyEvent sends its own char event after the keydown, which a real keyboard never
// does: it would type a newline into the field the page just cleared.
func pressEnter(mods ...chromedp.Modifier) chromedp.Action[chromedp.Void] {
	var m int64
	for _, mod := range mods {
		m |= int64(mod)
	}
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		down := input.DispatchKeyEventParams{
			Type: input.DispatchKeyEventTypeKeyDown, Modifiers: m, Key: "Enter", Code: "Enter",
			Text: "\r", UnmodifiedText: "\r", WindowsVirtualKeyCode: 13, NativeVirtualKeyCode: 13,
		}
		if _, err := cdp.Call(ctx, t, input.DispatchKeyEvent, down); err != nil {
			return err
		}
		up := down
		up.Type, up.Text, up.UnmodifiedText = input.DispatchKeyEventTypeKeyUp, "", ""
		_, err := cdp.Call(ctx, t, input.DispatchKeyEvent, up)
		return err
	})
}
