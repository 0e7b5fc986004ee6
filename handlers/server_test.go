package handlers_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/gofiber/fiber/v2"
	"golang.org/x/crypto/bcrypt"

	"switchboard/handlers"
	"switchboard/market"
	"switchboard/models"
	"switchboard/models/modelstest"
	"switchboard/realtime"
	"switchboard/views"
)

// testServer is the whole app on a random loopback port, over a real SQLite file.
type testServer struct {
	t      *testing.T
	URL    string
	Store  *models.Store
	Hub    *realtime.Hub
	H      *handlers.Handlers
	App    *fiber.App
	Market *market.Service
}

// newTestServer starts the app; options may change its dependencies (e.g. shorter deadlines) before it is built.
func newTestServer(t *testing.T, options ...func(*handlers.Deps)) *testServer {
	t.Helper()
	return startServer(t, modelstest.NewStore(t), realtime.NewMemoryBroker(), options...)
}

// startServer starts the app on a given store and broker (two of them on one Postgres and one Redis are two
// instances of a scaled-out deployment).
func startServer(t *testing.T, store *models.Store, broker realtime.Broker, options ...func(*handlers.Deps)) *testServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	if _, err := store.EnsureRoom(ctx, "general", models.RoomOpen); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	hub := realtime.NewHub(broker, log)
	go hub.Run(ctx)
	mkt := market.NewService(market.DefaultSymbols())
	deps := handlers.Deps{
		Log: log, Store: store, Hub: hub, Market: mkt, BcryptCost: bcrypt.MinCost,
		Assets: views.Assets{CSS: "/static/css/app.css"}, Heartbeat: 200 * time.Millisecond,
	}
	for _, o := range options {
		o(&deps)
	}
	h := handlers.New(deps)
	go h.Run(ctx)
	app := h.NewApp()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go app.Listener(ln)
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		_ = h.Shutdown(sctx)
		_ = app.ShutdownWithContext(sctx)
		cancel()
	})
	return &testServer{t: t, URL: "http://" + ln.Addr().String(), Store: store, Hub: hub, H: h, App: app, Market: mkt}
}

// client is a browser-like HTTP client: a cookie jar, no redirect following, and the page's CSRF token.
type client struct {
	t    *testing.T
	srv  *testServer
	http *http.Client
	csrf string
	Name string
}

func (s *testServer) newClient() *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: s.t, srv: s, http: &http.Client{
		Jar:           jar,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// signup creates an account through the form and returns its signed-in client.
func (s *testServer) signup(name string) *client {
	s.t.Helper()
	c := s.newClient()
	c.Name = name
	resp, _ := c.post("/signup", url.Values{"username": {name}, "password": {"correct horse"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/rooms" {
		s.t.Fatalf("signup %s: status %d, location %q", name, resp.StatusCode, resp.Header.Get("Location"))
	}
	return c
}

var csrfField = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)

// get fetches a path and remembers the CSRF token of the page.
func (c *client) get(path string) (*http.Response, string) {
	c.t.Helper()
	return c.do(http.MethodGet, path, nil, nil)
}

// post sends a form with the client's CSRF token (fetched from /login first if it has none).
func (c *client) post(path string, form url.Values) (*http.Response, string) {
	c.t.Helper()
	if c.csrf == "" {
		c.get("/login")
	}
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["_csrf"]; !ok {
		form.Set("_csrf", c.csrf)
	}
	return c.do(http.MethodPost, path, strings.NewReader(form.Encode()), http.Header{"Content-Type": {"application/x-www-form-urlencoded"}})
}

func (c *client) do(method, path string, body io.Reader, header http.Header) (*http.Response, string) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.srv.URL+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	if m := csrfField.FindSubmatch(b); m != nil {
		c.csrf = string(m[1])
	}
	return resp, string(b)
}

// wsConn is a test WebSocket client. One goroutine reads every frame into a channel, because coder/websocket
// closes a connection whose Read is cancelled, so reads with a timeout must not touch the connection itself.
type wsConn struct {
	*websocket.Conn
	in     chan string
	closed chan struct{}
	err    error // why reading stopped; set before closed is closed

	// inBytes is the size of the frames put in in; a test that measures the heap subtracts what it takes out
	// (take does), so that frames waiting in in are not counted as the server's memory.
	inBytes atomic.Int64
}

// take receives the next frame from in and subtracts it from inBytes.
func (w *wsConn) take(f string) string {
	w.inBytes.Add(-int64(len(f)))
	return f
}

func newWSConn(t *testing.T, c *websocket.Conn) *wsConn {
	c.SetReadLimit(1 << 20)
	w := &wsConn{Conn: c, in: make(chan string, 4096), closed: make(chan struct{})}
	go func() {
		defer close(w.closed)
		for {
			_, data, err := c.Read(context.Background())
			if err != nil {
				w.err = err
				return
			}
			w.inBytes.Add(int64(len(data)))
			w.in <- string(data)
		}
	}()
	t.Cleanup(func() { c.CloseNow() })
	return w
}

// dial opens a WebSocket with the client's cookies and the given Origin ("" for none).
func (c *client) dial(path, origin string) (*wsConn, *http.Response, error) {
	c.t.Helper()
	u, _ := url.Parse(c.srv.URL + path)
	header := http.Header{}
	for _, ck := range c.http.Jar.Cookies(u) {
		header.Add("Cookie", ck.Name+"="+ck.Value)
	}
	if origin != "" {
		header.Set("Origin", origin)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(c.srv.URL, "http")+path, &websocket.DialOptions{HTTPHeader: header})
	if err != nil {
		return nil, resp, err
	}
	return newWSConn(c.t, conn), resp, nil
}

// mustDial opens a socket from the server's own origin or fails the test.
func (c *client) mustDial(path string) *wsConn {
	c.t.Helper()
	conn, resp, err := c.dial(path, c.srv.URL)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		c.t.Fatalf("dial %s: %v (status %d)", path, err, status)
	}
	return conn
}

// readUntil reads frames until one contains want, and returns it; it fails the test after 5 s.
func readUntil(t *testing.T, conn *wsConn, want string) string {
	t.Helper()
	return readUntilWithin(t, conn, want, 5*time.Second)
}

func readUntilWithin(t *testing.T, conn *wsConn, want string, d time.Duration) string {
	t.Helper()
	return readUntilMatch(t, conn, regexp.QuoteMeta(want), d)
}

// readUntilMatch reads frames until one matches the regular expression pattern.
func readUntilMatch(t *testing.T, conn *wsConn, pattern string, d time.Duration) string {
	t.Helper()
	want := regexp.MustCompile(pattern)
	timeout := time.After(d)
	for {
		select {
		case f := <-conn.in:
			if want.MatchString(f) {
				return f
			}
		case <-conn.closed:
			t.Fatalf("waiting for %q: socket closed: %v", want, conn.err)
		case <-timeout:
			t.Fatalf("waiting for %q: nothing after %v", want, d)
		}
	}
}

// frames returns every frame that arrives within d.
func frames(conn *wsConn, d time.Duration) []string {
	var out []string
	timeout := time.After(d)
	for {
		select {
		case f := <-conn.in:
			out = append(out, f)
		case <-timeout:
			return out
		}
	}
}

// closeCode waits for the server to close the socket and returns the close code (-1: not a close frame).
func closeCode(t *testing.T, conn *wsConn) websocket.StatusCode {
	t.Helper()
	select {
	case <-conn.closed:
		return websocket.CloseStatus(conn.err)
	case <-time.After(5 * time.Second):
		t.Fatal("socket still open after 5 s")
		return 0
	}
}

// send sends what htmx's ws-send sends for the compose form.
func send(t *testing.T, conn *wsConn, text, clientID string) {
	t.Helper()
	msg := `{"text":` + jsonString(text) + `,"client_id":` + jsonString(clientID) + `,"HEADERS":{"HX-Request":"true","HX-Trigger":"compose","HX-Trigger-Name":null,"HX-Target":"compose","HX-Current-URL":"http://x/rooms/1"}}`
	if err := conn.Write(context.Background(), websocket.MessageText, []byte(msg)); err != nil {
		t.Fatal(err)
	}
}

func jsonString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", `\r`, "\t", `\t`)
	return `"` + r.Replace(s) + `"`
}

// roomID finds a room by name through the store.
func (s *testServer) roomID(name string, userID int64) int64 {
	s.t.Helper()
	items, err := s.Store.RoomsForUser(context.Background(), userID)
	if err != nil {
		s.t.Fatal(err)
	}
	for _, it := range items {
		if it.Name == name {
			return it.ID
		}
	}
	s.t.Fatalf("no room %q", name)
	return 0
}

func (s *testServer) user(name string) models.User {
	s.t.Helper()
	u, err := s.Store.UserByName(context.Background(), name)
	if err != nil {
		s.t.Fatal(err)
	}
	return u
}

// waitSubscribers waits until a topic has n subscribers: a socket subscribes just after its upgrade, so a test
// that publishes right after dialing must wait for it.
func (s *testServer) waitSubscribers(topic string, n int) {
	s.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for s.Hub.Subscribers(topic) < n {
		if time.Now().After(deadline) {
			s.t.Fatalf("topic %s has %d subscribers, want %d", topic, s.Hub.Subscribers(topic), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
