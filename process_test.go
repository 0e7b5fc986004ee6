package main

// Process-level fault tests (hardening.md §7 items 31 and 38): they build the real binary, run it as a subprocess
// on a random loopback port and a fresh SQLite file, drive it the way browsers do (signup forms, room sockets, SSE
// streams), and then kill it with SIGKILL or stop it with SIGTERM.

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"switchboard/internal/sbbuild"
	"switchboard/models"
)

const (
	closeServiceRestart = websocket.StatusCode(1012) // what every socket must get on SIGTERM
	closeTryAgainLater  = websocket.StatusCode(1013) // a slow consumer is dropped with it and reconnects
	replayCap           = 500                        // handlers.replayLimit: a longer gap is replaced, not replayed
	gracePeriod         = 10 * time.Second           // main.shutdownTimeout
)

func TestMain(m *testing.M) {
	code := m.Run()
	sbbuild.Cleanup()
	os.Exit(code)
}

// buildBinary returns the switchboard binary (built once, without -race); it skips the test when there are no
// POSIX signals or with -short.
func buildBinary(t *testing.T) string {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("process tests send POSIX signals (SIGKILL, SIGTERM)")
	}
	if testing.Short() {
		t.Skip("process tests build and run the binary; skipped with -short")
	}
	return sbbuild.Binary(t)
}

// proc is one run of the binary.
type proc struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	out  *outputLog
	Addr string // host:port it listens on
	URL  string // http://Addr
	done chan struct{}
	err  error // what Wait returned; read it after done is closed
}

// startProc runs the binary with -addr addr -db db and the extra flags, and waits until it logs that it listens.
// When the test fails, the tail of the process's stdout and stderr goes into the test log.
func startProc(t *testing.T, name, db, addr string, extra ...string) *proc {
	t.Helper()
	bin := buildBinary(t)
	p := &proc{t: t, name: name, out: newOutputLog(), done: make(chan struct{})}
	p.cmd = exec.Command(bin, append([]string{"-addr", addr, "-db", db}, extra...)...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("%s: start %s: %v", name, bin, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("--- %s (pid %d, %v): last output ---\n%s", p.name, p.cmd.Process.Pid, p.err, p.out.tail(8<<10))
		}
	})
	select {
	case p.Addr = <-p.out.listening:
		p.URL = "http://" + p.Addr
		return p
	case <-p.done:
		t.Fatalf("%s exited before listening: %v\n%s", name, p.err, p.out.tail(8<<10))
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: no %q line after 20 s\n%s", name, "switchboard is listening", p.out.tail(8<<10))
	}
	return nil
}

// signal sends sig to the process.
func (p *proc) signal(sig os.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("%s: send %v: %v", p.name, sig, err)
	}
}

// waitExit waits up to d for the process to exit and reports whether it did.
func (p *proc) waitExit(d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

// stop sends SIGTERM and fails the test unless the process exits with status 0 within the grace period.
func (p *proc) stop() time.Duration {
	p.t.Helper()
	start := time.Now()
	p.signal(syscall.SIGTERM)
	if !p.waitExit(gracePeriod) {
		p.t.Fatalf("%s still running %v after SIGTERM", p.name, gracePeriod)
	}
	if p.err != nil {
		p.t.Fatalf("%s exited with %v after SIGTERM, want status 0", p.name, p.err)
	}
	return time.Since(start)
}

var listeningLine = regexp.MustCompile(`msg="switchboard is listening".*\baddr=(\S+)`)

// outputLog keeps the last bytes a process wrote to stdout and stderr, and reports the address of its listening
// line.
type outputLog struct {
	mu        sync.Mutex
	buf       []byte
	line      []byte // the unfinished last line
	listening chan string
}

const outputKept = 64 << 10

func newOutputLog() *outputLog { return &outputLog{listening: make(chan string, 1)} }

func (o *outputLog) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf = append(o.buf, p...)
	if len(o.buf) > 2*outputKept {
		o.buf = append([]byte(nil), o.buf[len(o.buf)-outputKept:]...)
	}
	o.line = append(o.line, p...)
	for {
		i := bytes.IndexByte(o.line, '\n')
		if i < 0 {
			break
		}
		if m := listeningLine.FindSubmatch(o.line[:i]); m != nil {
			select {
			case o.listening <- string(m[1]):
			default:
			}
		}
		o.line = o.line[i+1:]
	}
	if len(o.line) > outputKept {
		o.line = nil
	}
	return len(p), nil
}

// tail returns about the last n bytes written, from a line start.
func (o *outputLog) tail(n int) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	b := o.buf
	if len(b) > n {
		b = b[len(b)-n:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	if len(b) == 0 {
		return "(no output)"
	}
	return string(b)
}

// user is one browser: a cookie jar, no redirect following, and the CSRF token of the last page with a form.
type user struct {
	name   string
	base   string
	http   *http.Client // for pages and forms
	stream *http.Client // for SSE: same jar, no overall timeout
	tr     *http.Transport
	csrf   string
}

var (
	csrfInput   = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)
	messageSent = regexp.MustCompile(`^/rooms/1#msg-(\d+)$`)
)

func newTransport(t *testing.T) *http.Transport {
	tr := &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second}
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

// signup creates an account through the real forms and enters room 1 ("general"), which also gives the session's
// CSRF token (the session is regenerated at signup).
func signup(ctx context.Context, base string, tr *http.Transport, name string) (*user, error) {
	jar, _ := cookiejar.New(nil)
	noRedirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	u := &user{name: name, base: base, tr: tr,
		http:   &http.Client{Jar: jar, Transport: tr, Timeout: 10 * time.Second, CheckRedirect: noRedirect},
		stream: &http.Client{Jar: jar, Transport: tr, CheckRedirect: noRedirect},
	}
	if status, _, err := u.get(ctx, "/signup"); err != nil || status != http.StatusOK || u.csrf == "" {
		return nil, fmt.Errorf("GET /signup: status %d, csrf %q, err %v", status, u.csrf, err)
	}
	status, loc, err := u.post(ctx, "/signup", url.Values{"username": {name}, "password": {"correct horse battery"}})
	if err != nil || status != http.StatusSeeOther || loc != "/rooms" {
		return nil, fmt.Errorf("POST /signup %s: status %d, Location %q, err %v; want 303 to /rooms", name, status, loc, err)
	}
	u.csrf = ""
	if status, _, err := u.get(ctx, "/rooms/1"); err != nil || status != http.StatusOK || u.csrf == "" {
		return nil, fmt.Errorf("GET /rooms/1 as %s: status %d, csrf %q, err %v", name, status, u.csrf, err)
	}
	return u, nil
}

// signupAll signs up n users named prefix1…prefixN, concurrently (bcrypt is the slow part).
func signupAll(t *testing.T, base string, tr *http.Transport, prefix string, n int) []*user {
	t.Helper()
	users := make([]*user, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range users {
		wg.Go(func() { users[i], errs[i] = signup(context.Background(), base, tr, fmt.Sprintf("%s%d", prefix, i+1)) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("signup: %v", err)
	}
	return users
}

// get fetches a page, remembers its CSRF token, and returns the status and body.
func (u *user) get(ctx context.Context, path string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.base+path, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := u.http.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if m := csrfInput.FindSubmatch(b); m != nil {
		u.csrf = string(m[1])
	}
	return resp.StatusCode, string(b), err
}

// post sends a form with the user's CSRF token and returns the status and Location.
func (u *user) post(ctx context.Context, path string, form url.Values) (int, string, error) {
	form.Set("_csrf", u.csrf)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", u.base)
	resp, err := u.http.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), err
}

// errStatus is a response that is not the acknowledgement: unlike a transport error it is never caused by a kill.
type errStatus struct {
	status int
	msg    string
}

func (e *errStatus) Error() string { return e.msg }

// errRejected is a send the server refused on purpose: a form post answered 429, or a socket send answered with
// a compose error for its client id (both mean "too fast": the per-user send limit is 5 a second, bursts of 20).
type errRejected struct{ msg string }

func (e *errRejected) Error() string { return e.msg }

// postMessage sends text through the no-JavaScript form; the acknowledgement is the 303 to /rooms/1#msg-<id>.
func (u *user) postMessage(ctx context.Context, text string) (int64, error) {
	status, loc, err := u.post(ctx, "/rooms/1/messages", url.Values{"text": {text}})
	if err != nil {
		return 0, err
	}
	m := messageSent.FindStringSubmatch(loc)
	if status == http.StatusTooManyRequests {
		return 0, &errRejected{fmt.Sprintf("POST /rooms/1/messages as %s: 429", u.name)}
	}
	if status != http.StatusSeeOther || m == nil {
		return 0, &errStatus{status, fmt.Sprintf("POST /rooms/1/messages as %s: status %d, Location %q; want 303 to /rooms/1#msg-<id>", u.name, status, loc)}
	}
	return strconv.ParseInt(m[1], 10, 64)
}

// dial opens a room socket with the user's cookies from the page's own origin, and starts reading it.
func (u *user) dial(ctx context.Context, path string) (*sock, error) {
	base, _ := url.Parse(u.base)
	h := http.Header{}
	for _, c := range u.http.Jar.Cookies(base) {
		h.Add("Cookie", c.Name+"="+c.Value)
	}
	h.Set("Origin", u.base)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(u.base, "http")+path,
		&websocket.DialOptions{HTTPHeader: h, HTTPClient: &http.Client{Transport: u.tr}})
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		return nil, fmt.Errorf("dial %s as %s: %w (HTTP status %d)", path, u.name, err, status)
	}
	return readSocket(conn), nil
}

func (u *user) mustDial(t *testing.T, path string) *sock {
	t.Helper()
	s, err := u.dial(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.conn.CloseNow() })
	return s
}

var (
	messageTag   = regexp.MustCompile(`<article id="msg-(\d+)"([^>]*)>`)
	clientAttr   = regexp.MustCompile(`data-client-id="([^"]*)"`)
	composeError = regexp.MustCompile(`<div id="compose-error"([^>]*)>([^<]*)</div>`)
)

// sock is a room socket read by its own goroutine: coder/websocket closes a connection whose Read context ends,
// so nobody waits on Read with a timeout. The reader never blocks, so the server never sees a slow consumer.
type sock struct {
	conn    *websocket.Conn
	opened  chan struct{} // closed when the first frame has arrived
	done    chan struct{} // closed when reading has stopped
	err     error         // why reading stopped; read it after done is closed
	changed chan struct{} // gets a token after each frame

	mu       sync.Mutex
	ids      []int64           // message ids in the order they arrived (replays included)
	byClient map[string]int64  // client id → message id
	refused  map[string]string // client id → the compose error the server answered it with
}

func readSocket(conn *websocket.Conn) *sock {
	conn.SetReadLimit(4 << 20)
	s := &sock{conn: conn, opened: make(chan struct{}), done: make(chan struct{}), changed: make(chan struct{}, 1),
		byClient: make(map[string]int64), refused: make(map[string]string)}
	go func() {
		defer close(s.done)
		for first := true; ; first = false {
			_, data, err := conn.Read(context.Background())
			if err != nil {
				s.err = err
				return
			}
			s.mu.Lock()
			for _, m := range messageTag.FindAllSubmatch(data, -1) {
				id, _ := strconv.ParseInt(string(m[1]), 10, 64)
				s.ids = append(s.ids, id)
				if c := clientAttr.FindSubmatch(m[2]); c != nil && len(c[1]) > 0 {
					s.byClient[string(c[1])] = id
				}
			}
			for _, m := range composeError.FindAllSubmatch(data, -1) {
				if c := clientAttr.FindSubmatch(m[1]); c != nil && len(c[1]) > 0 && len(bytes.TrimSpace(m[2])) > 0 {
					s.refused[string(c[1])] = string(m[2])
				}
			}
			s.mu.Unlock()
			if first {
				close(s.opened)
			}
			select {
			case s.changed <- struct{}{}:
			default:
			}
		}
	}()
	return s
}

// received returns the message ids received so far, in order.
func (s *sock) received() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.ids)
}

// lastID is the newest message id received (what a page would reconnect with), or 0.
func (s *sock) lastID() int64 {
	ids := s.received()
	if len(ids) == 0 {
		return 0
	}
	return slices.Max(ids)
}

// closeCode is the close code the server sent, or -1 when the connection ended without a close frame.
func (s *sock) closeCode() websocket.StatusCode { return websocket.CloseStatus(s.err) }

// sendAndWait sends what htmx's ws-send sends and waits until the sender's own socket receives the stored message
// back: that is the socket's acknowledgement.
func (s *sock) sendAndWait(text, clientID string, stop <-chan struct{}) (int64, error) {
	payload, _ := json.Marshal(map[string]any{"text": text, "client_id": clientID,
		"HEADERS": map[string]string{"HX-Request": "true", "HX-Trigger": "compose"}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.conn.Write(ctx, websocket.MessageText, payload); err != nil {
		return 0, err
	}
	for {
		s.mu.Lock()
		id, ok := s.byClient[clientID]
		refused, no := s.refused[clientID]
		delete(s.refused, clientID)
		s.mu.Unlock()
		if ok {
			return id, nil
		}
		if no {
			return 0, &errRejected{fmt.Sprintf("socket send %s refused: %s", clientID, refused)}
		}
		select {
		case <-s.changed:
		case <-s.done:
			return 0, fmt.Errorf("socket closed before %s came back: %w", clientID, s.err)
		case <-stop:
			return 0, errStopped
		case <-ctx.Done():
			return 0, fmt.Errorf("%s not echoed within 5 s", clientID)
		}
	}
}

var errStopped = errors.New("stopped")

// waitForIDs waits until the socket has received every id in want (or d passes) and returns what it received.
func (s *sock) waitForIDs(want []int64, d time.Duration) []int64 {
	deadline := time.After(d)
	for {
		got := s.received()
		missing := false
		for _, id := range want {
			if !slices.Contains(got, id) {
				missing = true
				break
			}
		}
		if !missing {
			return got
		}
		select {
		case <-s.changed:
		case <-s.done:
			return s.received()
		case <-deadline:
			return s.received()
		}
	}
}

// ackLog is every acknowledged message: id → text.
type ackLog struct {
	mu    sync.Mutex
	texts map[int64]string
	http  atomic.Int64
	ws    atomic.Int64
}

func newAckLog() *ackLog { return &ackLog{texts: make(map[int64]string)} }

func (a *ackLog) add(id int64, text string, viaSocket bool) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if old, ok := a.texts[id]; ok && old != text {
		return fmt.Errorf("id %d acknowledged twice: for %q and for %q", id, old, text)
	}
	a.texts[id] = text
	if viaSocket {
		a.ws.Add(1)
	} else {
		a.http.Add(1)
	}
	return nil
}

func (a *ackLog) count() int64 { return a.http.Load() + a.ws.Load() }

// above returns the acknowledged ids greater than after, in order.
func (a *ackLog) above(after int64) []int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	var ids []int64
	for id := range a.texts {
		if id > after {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// errorLog keeps the first few unexpected errors of the load goroutines (which must not call t.Fatal).
type errorLog struct {
	mu   sync.Mutex
	errs []error
	n    int
}

func (e *errorLog) add(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.n++
	if len(e.errs) < 5 {
		e.errs = append(e.errs, err)
	}
}

func (e *errorLog) check(t *testing.T, what string) {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.n > 0 {
		t.Errorf("%s: %d unexpected errors, first ones:\n%v", what, e.n, errors.Join(e.errs...))
	}
}

// checkReplay checks what a socket reconnecting with ?after=<after> received: every id in want, only ids above
// after, in strictly increasing order, each once.
func checkReplay(t *testing.T, who string, after int64, got, want []int64) {
	t.Helper()
	for _, id := range want {
		if !slices.Contains(got, id) {
			t.Errorf("%s reconnected with ?after=%d: acknowledged message %d not replayed (got %d ids: %v)", who, after, id, len(got), abbreviate(got))
			return
		}
	}
	for i, id := range got {
		if id <= after || (i > 0 && id <= got[i-1]) {
			t.Errorf("%s reconnected with ?after=%d: ids not strictly increasing above %d at position %d: %v", who, after, after, i, abbreviate(got))
			return
		}
	}
}

// checkIncreasing checks that a live socket saw strictly increasing ids.
func checkIncreasing(t *testing.T, who string, ids []int64) {
	t.Helper()
	for i := 1; i < len(ids); i++ {
		if ids[i] <= ids[i-1] {
			t.Errorf("%s: message %d arrived after %d (position %d of %d): ids must strictly increase", who, ids[i], ids[i-1], i, len(ids))
			return
		}
	}
}

func abbreviate(ids []int64) string {
	if len(ids) <= 20 {
		return fmt.Sprint(ids)
	}
	return fmt.Sprintf("%v … %v", ids[:10], ids[len(ids)-10:])
}

// checkStored opens the stopped server's SQLite file and checks that every acknowledged message is stored with its
// text, and that SQLite finds the file intact.
func checkStored(t *testing.T, db string, acks *ackLog) {
	t.Helper()
	ctx := context.Background()
	store, err := models.Open(ctx, db)
	if err != nil {
		t.Fatalf("open %s after the run: %v", db, err)
	}
	msgs, err := store.RecentMessages(ctx, 1, 1_000_000)
	if cerr := store.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("read room 1: %v", err)
	}
	stored := make(map[int64]string, len(msgs))
	for i, m := range msgs {
		if i > 0 && m.ID <= msgs[i-1].ID {
			t.Errorf("stored messages out of order: %d after %d", m.ID, msgs[i-1].ID)
		}
		stored[m.ID] = m.Text
	}
	acks.mu.Lock()
	lost := 0
	for id, text := range acks.texts {
		got, ok := stored[id]
		switch {
		case !ok:
			lost++
			if lost <= 5 {
				t.Errorf("acknowledged message %d (%q) is not in the database", id, text)
			}
		case got != text:
			t.Errorf("message %d: stored %q, acknowledged %q", id, got, text)
		}
	}
	acked := len(acks.texts)
	acks.mu.Unlock()
	if lost > 0 {
		t.Errorf("%d of %d acknowledged messages lost", lost, acked)
	}
	integrity := integrityCheck(t, db)
	if integrity != "ok" {
		t.Errorf("PRAGMA integrity_check: %s", integrity)
	}
	t.Logf("database: %d messages in room 1; %d acknowledged (%d by form, %d by socket), all present: %v; integrity_check: %s",
		len(msgs), acked, acks.http.Load(), acks.ws.Load(), lost == 0, integrity)
}

// integrityCheck runs PRAGMA integrity_check through the SQLite driver that models registered: modernc's "sqlite"
// in pure-Go builds, else mattn's "sqlite3" (which is linked in either way, as a stub without cgo).
func integrityCheck(t *testing.T, path string) string {
	t.Helper()
	driver := "sqlite3"
	if slices.Contains(sql.Drivers(), "sqlite") {
		driver = "sqlite"
	}
	db, err := sql.Open(driver, path)
	if err != nil {
		t.Fatalf("open %s with %s: %v", path, driver, err)
	}
	defer db.Close()
	var lines []string
	rows, err := db.Query("PRAGMA integrity_check")
	if err != nil {
		t.Fatalf("PRAGMA integrity_check with %s: %v", driver, err)
	}
	defer rows.Close()
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "; ")
}

// follower is a room page that stays connected: when the server drops it as too slow (1013) it reconnects with
// ?after=, as htmx does. Its ids, across reconnects, must strictly increase.
type follower struct {
	mu   sync.Mutex
	ids  []int64
	errs []string
	done chan struct{}
}

func follow(u *user, stop <-chan struct{}) (*follower, error) {
	f := &follower{done: make(chan struct{})}
	s, err := u.dial(context.Background(), "/rooms/1/ws")
	if err != nil {
		return nil, err
	}
	go func() {
		defer close(f.done)
		for {
			select {
			case <-s.done:
			case <-stop:
				s.conn.CloseNow()
				<-s.done
			}
			f.mu.Lock()
			f.ids = append(f.ids, s.received()...)
			f.mu.Unlock()
			if s.closeCode() != closeTryAgainLater {
				return
			}
			f.note("dropped as too slow (1013) after id %d; reconnecting", s.lastID())
			if s, err = u.dial(context.Background(), fmt.Sprintf("/rooms/1/ws?after=%d", f.lastID())); err != nil {
				f.note("%v", err)
				return
			}
		}
	}()
	return f, nil
}

func (f *follower) note(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs = append(f.errs, fmt.Sprintf(format, args...))
}

func (f *follower) lastID() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.ids) == 0 {
		return 0
	}
	return slices.Max(f.ids)
}

// TestKill9KeepsAcknowledgedMessages is hardening item 31: SIGKILL under a write load, then a restart on the same
// file. Every message acknowledged to its sender (a 303 to #msg-<id> for the form, the echo on the sender's own
// socket for WebSocket sends) must be stored with its text, the file must pass integrity_check, and pages that
// reconnect with ?after= must get the gap.
func TestKill9KeepsAcknowledgedMessages(t *testing.T) {
	db := filepath.Join(t.TempDir(), "switchboard.db")
	srv := startProc(t, "server (to be killed)", db, "127.0.0.1:0", "-feed", "none")
	tr := newTransport(t)
	// The server allows each user 5 messages a second with bursts of 20, so the load comes from many users: 8 post
	// the form, 4 send over their sockets.
	const formSenders, socketSenders = 8, 4
	users := signupAll(t, srv.URL, tr, "kill", formSenders+socketSenders)

	var killed atomic.Bool
	stop := make(chan struct{})
	burst := make(chan struct{}) // closed: every sender stops pacing itself and spends its burst
	acks := newAckLog()
	var unexpected errorLog
	// A transport error is expected once the process is dead; before that, and any wrong response, is a failure.
	// A refusal for sending too fast is neither: the sender backs off and sends again.
	report := func(err error) {
		var es *errStatus
		if errors.As(err, &es) || !killed.Load() {
			unexpected.add(err)
		}
	}
	pace := func() {
		select {
		case <-burst:
		case <-stop:
		case <-time.After(250 * time.Millisecond): // 4 a second, under the limit, so the burst is saved up
		}
	}

	live, err := follow(users[0], stop) // stays connected to the end: its last id is a page open at the kill
	if err != nil {
		t.Fatal(err)
	}
	laggard := users[1].mustDial(t, "/rooms/1/ws") // loses its connection mid-load and reconnects after the restart
	senders := make([]*sock, socketSenders)
	for i := range senders {
		senders[i] = users[formSenders+i].mustDial(t, "/rooms/1/ws")
	}
	for _, s := range append(senders, laggard) {
		select {
		case <-s.opened:
		case <-time.After(5 * time.Second):
			t.Fatal("room socket sent no first frame within 5 s")
		}
	}

	var load sync.WaitGroup
	for _, u := range users[:formSenders] {
		load.Go(func() { // form posts, one at a time
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				text := fmt.Sprintf("form %s #%d", u.name, n)
				id, err := u.postMessage(context.Background(), text)
				var rejected *errRejected
				switch {
				case errors.As(err, &rejected):
					time.Sleep(20 * time.Millisecond)
					continue
				case err != nil:
					report(err)
					if killed.Load() {
						return
					}
					time.Sleep(10 * time.Millisecond)
					continue
				}
				if err := acks.add(id, text, false); err != nil {
					unexpected.add(err)
				}
				pace()
			}
		})
	}
	for i, s := range senders {
		name := users[formSenders+i].name
		load.Go(func() { // socket sends, each acknowledged by its echo on the sender's own socket
			for n := 0; ; n++ {
				clientID := fmt.Sprintf("c-%s-%d", name, n)
				text := "socket " + clientID
				id, err := s.sendAndWait(text, clientID, stop)
				var rejected *errRejected
				for errors.As(err, &rejected) { // resend with the same client id, as the page's outbox does
					time.Sleep(20 * time.Millisecond)
					id, err = s.sendAndWait(text, clientID, stop)
				}
				if errors.Is(err, errStopped) {
					return
				}
				if err != nil {
					report(err)
					return
				}
				if err := acks.add(id, text, true); err != nil {
					unexpected.add(err)
				}
				pace()
			}
		})
	}

	// The laggard's network dies after a while. Then every sender spends its burst, and the kill comes once 150
	// more messages are acknowledged (mid-burst; the laggard's gap stays under the replay cap), or after 1.5 s.
	time.Sleep(600 * time.Millisecond)
	laggard.conn.CloseNow()
	<-laggard.done
	laggardAfter := laggard.lastID()
	from := acks.count()
	close(burst)
	for deadline := time.Now().Add(1500 * time.Millisecond); acks.count() < from+150 && time.Now().Before(deadline); {
		time.Sleep(2 * time.Millisecond)
	}
	killed.Store(true)
	srv.signal(syscall.SIGKILL)
	if !srv.waitExit(5 * time.Second) {
		t.Fatal("the server still runs 5 s after SIGKILL")
	}
	close(stop)
	load.Wait()
	<-live.done
	unexpected.check(t, "load before the kill")
	t.Logf("killed with SIGKILL (%v) after %d acknowledged messages (%d by form, %d by socket); laggard left at id %d",
		srv.err, acks.count(), acks.http.Load(), acks.ws.Load(), laggardAfter)
	if acks.count() < 20 {
		t.Fatalf("only %d messages acknowledged under load: the test proves nothing", acks.count())
	}
	live.mu.Lock()
	liveIDs, liveNotes := slices.Clone(live.ids), live.errs
	live.mu.Unlock()
	if len(liveNotes) > 0 {
		t.Logf("live page: %s", strings.Join(liveNotes, "; "))
	}
	checkIncreasing(t, "live page before the kill", liveIDs)
	liveAfter := live.lastID()

	// Restart on the same file and port, as a supervisor would.
	srv2 := startProc(t, "server (restarted after SIGKILL)", db, srv.Addr, "-feed", "none")
	for _, page := range []struct {
		who   string
		u     *user
		after int64
	}{
		{"the laggard page", users[1], laggardAfter},
		{"the page open at the kill", users[0], liveAfter},
	} {
		want := acks.above(page.after)
		if page.who == "the laggard page" && len(want) == 0 {
			t.Errorf("nothing was acknowledged after the laggard left at %d: its replay proves nothing", page.after)
		}
		if len(want) > replayCap {
			t.Fatalf("%s missed %d messages, over the replay cap %d: lower the load", page.who, len(want), replayCap)
		}
		s := page.u.mustDial(t, fmt.Sprintf("/rooms/1/ws?after=%d", page.after))
		got := s.waitForIDs(want, 5*time.Second)
		checkReplay(t, page.who, page.after, got, want)
		t.Logf("%s reconnected with ?after=%d: %d acknowledged ids expected, %d replayed", page.who, page.after, len(want), len(got))
		s.conn.Close(websocket.StatusNormalClosure, "")
	}

	d := srv2.stop()
	t.Logf("restarted server stopped by SIGTERM in %v", d.Round(time.Millisecond))
	checkStored(t, db, acks)
}

// TestSIGTERMClosesCleanly is hardening item 38: SIGTERM with 100 room sockets and 100 SSE streams open. Every
// socket gets close 1012 (htmx reconnects on it; 1006 means the server just dropped it), every stream ends with a
// clean end of the chunked body, the process exits 0 well within the grace period, nothing acknowledged is lost,
// and after a restart a page reconnecting with ?after= gets everything posted since its last id.
func TestSIGTERMClosesCleanly(t *testing.T) {
	const (
		nUsers   = 20 // a user may hold 16 sockets and streams at once; these hold 10 each
		nSockets = 100
		nStreams = 100
	)
	db := filepath.Join(t.TempDir(), "switchboard.db")
	srv := startProc(t, "server (to get SIGTERM)", db, "127.0.0.1:0", "-tick", "200ms")
	tr := newTransport(t)
	users := signupAll(t, srv.URL, tr, "term", nUsers)
	ctx := context.Background()
	acks := newAckLog()

	// A page sees a few messages, then goes away: it reconnects after the restart with its last id. Its first
	// frame comes once it is subscribed; a message posted before that would not reach it live.
	page := users[0].mustDial(t, "/rooms/1/ws")
	select {
	case <-page.opened:
	case <-time.After(5 * time.Second):
		t.Fatal("the page's socket sent no first frame within 5 s")
	}
	var seen []int64
	for i := range 3 {
		text := fmt.Sprintf("before the page left #%d", i)
		id, err := users[1].postMessage(ctx, text)
		if err != nil {
			t.Fatal(err)
		}
		if err := acks.add(id, text, false); err != nil {
			t.Fatal(err)
		}
		seen = append(seen, id)
	}
	checkReplay(t, "the page, live", 0, page.waitForIDs(seen, 5*time.Second), seen)
	page.conn.Close(websocket.StatusGoingAway, "")
	<-page.done
	after := page.lastID()
	for i := range 5 {
		text := fmt.Sprintf("missed by the page #%d", i)
		id, err := users[2].postMessage(ctx, text)
		if err != nil {
			t.Fatal(err)
		}
		if err := acks.add(id, text, false); err != nil {
			t.Fatal(err)
		}
	}

	// 100 room sockets, spread over the users.
	socks := make([]*sock, nSockets)
	for i := range socks {
		socks[i] = users[i%nUsers].mustDial(t, "/rooms/1/ws")
	}
	for i, s := range socks {
		select {
		case <-s.opened:
		case <-s.done:
			t.Fatalf("socket %d closed before its first frame: %v", i, s.err)
		case <-time.After(5 * time.Second):
			t.Fatalf("socket %d: no first frame within 5 s", i)
		}
	}

	// 100 SSE streams of the ticker page, read to their end.
	type streamEnd struct {
		i     int
		err   error // nil: the chunked body ended properly
		bytes int64
	}
	streamCtx, cancelStreams := context.WithCancel(ctx)
	defer cancelStreams()
	opened := make(chan error, nStreams)
	ended := make(chan streamEnd, nStreams)
	for i := range nStreams {
		u := users[i%nUsers]
		go func() {
			req, _ := http.NewRequestWithContext(streamCtx, http.MethodGet, u.base+"/ticker/stream", nil)
			req.Header.Set("Accept", "text/event-stream")
			resp, err := u.stream.Do(req)
			if err != nil {
				opened <- fmt.Errorf("stream %d: %w", i, err)
				return
			}
			defer resp.Body.Close()
			if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || !strings.HasPrefix(ct, "text/event-stream") {
				opened <- fmt.Errorf("stream %d: status %d, Content-Type %q", i, resp.StatusCode, ct)
				return
			}
			br := bufio.NewReader(resp.Body)
			first, err := br.ReadString('\n')
			if err != nil || !strings.HasPrefix(first, "retry:") {
				opened <- fmt.Errorf("stream %d: first line %q, %v; want retry:", i, first, err)
				return
			}
			opened <- nil
			n, err := io.Copy(io.Discard, br)
			ended <- streamEnd{i, err, n + int64(len(first))}
		}()
	}
	for range nStreams {
		select {
		case err := <-opened:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("SSE streams not all open after 10 s")
		}
	}

	// Two users keep posting through the shutdown (at most 100 each, so a reconnect stays under the replay cap):
	// whatever was acknowledged must survive.
	stop := make(chan struct{})
	var posting sync.WaitGroup
	var unexpected errorLog
	for _, u := range users[3:5] {
		posting.Go(func() {
			for n := range 100 {
				select {
				case <-stop:
					return
				default:
				}
				text := fmt.Sprintf("during shutdown %s #%d", u.name, n)
				id, err := u.postMessage(ctx, text)
				var es *errStatus
				var rejected *errRejected
				switch {
				case errors.As(err, &rejected): // too fast: the limit is 5 a second
					time.Sleep(20 * time.Millisecond)
				case errors.As(err, &es) && es.status == http.StatusServiceUnavailable:
				case errors.As(err, &es):
					unexpected.add(err)
				case err != nil: // the server is going away
					time.Sleep(10 * time.Millisecond)
				default:
					if err := acks.add(id, text, false); err != nil {
						unexpected.add(err)
					}
				}
			}
		})
	}
	time.Sleep(200 * time.Millisecond)

	start := time.Now()
	srv.signal(syscall.SIGTERM)
	exited := srv.waitExit(gracePeriod)
	took := time.Since(start)
	close(stop)
	posting.Wait()
	if !exited {
		t.Fatalf("still running %v after SIGTERM (the grace period)", gracePeriod)
	}
	if srv.err != nil {
		t.Errorf("exit after SIGTERM: %v, want status 0", srv.err)
	}
	t.Logf("SIGTERM → exit in %v", took.Round(time.Millisecond))
	if took > gracePeriod/2 { // a stream or socket that nobody ends holds the exit until the grace period is over
		t.Errorf("shutdown took %v with %d sockets and %d streams; it should take well under 2 s", took.Round(time.Millisecond), nSockets, nStreams)
	}
	unexpected.check(t, "posting through the shutdown")

	// The process is gone, so every connection has ended by now: wait a moment for the readers only.
	codes := map[websocket.StatusCode]int{}
	var firstBad error
	for i, s := range socks {
		select {
		case <-s.done:
		case <-time.After(2 * time.Second):
			t.Fatalf("socket %d still open 2 s after the process exited", i)
		}
		codes[s.closeCode()]++
		if s.closeCode() != closeServiceRestart && firstBad == nil {
			firstBad = fmt.Errorf("socket %d: %w", i, s.err)
		}
	}
	if codes[closeServiceRestart] != nSockets {
		t.Errorf("close codes of %d sockets: %v (code -1: no close frame, i.e. 1006); want all %d; first other: %v",
			nSockets, codes, closeServiceRestart, firstBad)
	}
	clean := 0
	var badStreams []string
	for range nStreams {
		select {
		case e := <-ended:
			if e.err == nil {
				clean++
			} else if len(badStreams) < 5 {
				badStreams = append(badStreams, fmt.Sprintf("stream %d after %d bytes: %v", e.i, e.bytes, e.err))
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("%d SSE streams still open 2 s after the process exited", nStreams-clean-len(badStreams))
		}
	}
	if clean != nStreams {
		t.Errorf("%d of %d SSE streams ended cleanly (chunked body terminated); others: %s", clean, nStreams, strings.Join(badStreams, "; "))
	}
	t.Logf("%d sockets closed: %v; %d/%d streams ended cleanly; %d messages acknowledged", nSockets, codes, clean, nStreams, acks.count())

	// Restart on the same file and port; post more; the page comes back with its last id and gets everything since.
	srv2 := startProc(t, "server (restarted after SIGTERM)", db, srv.Addr, "-feed", "none")
	for i := range 5 {
		text := fmt.Sprintf("after the restart #%d", i)
		id, err := users[1].postMessage(ctx, text)
		if err != nil {
			t.Fatal(err)
		}
		if err := acks.add(id, text, false); err != nil {
			t.Fatal(err)
		}
	}
	want := acks.above(after)
	back := users[0].mustDial(t, fmt.Sprintf("/rooms/1/ws?after=%d", after))
	got := back.waitForIDs(want, 5*time.Second)
	checkReplay(t, "the page", after, got, want)
	t.Logf("the page reconnected with ?after=%d: %d acknowledged ids expected, %d replayed", after, len(want), len(got))
	back.conn.Close(websocket.StatusNormalClosure, "")

	srv2.stop()
	checkStored(t, db, acks)
}
