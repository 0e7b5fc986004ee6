package handlers_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"switchboard/market"
)

// sseEvent is one parsed Server-Sent Event.
type sseEvent struct {
	Event, ID, Data string
}

// sseStream is a real SSE client over HTTP: a goroutine parses events into a channel.
type sseStream struct {
	resp     *http.Response
	events   chan sseEvent
	comments chan string
	ended    chan struct{}
	cancel   context.CancelFunc
}

// openStream GETs an SSE URL with the client's cookies and extra headers; it fails the test unless the answer is
// 200 text/event-stream.
func (c *client) openStream(path string, header http.Header) *sseStream {
	c.t.Helper()
	resp, cancel, err := c.streamRequest(path, header)
	if err != nil {
		c.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		cancel()
		c.t.Fatalf("GET %s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s := &sseStream{resp: resp, events: make(chan sseEvent, 4096), comments: make(chan string, 64), ended: make(chan struct{}), cancel: cancel}
	go s.read()
	c.t.Cleanup(s.close)
	return s
}

func (c *client) streamRequest(path string, header http.Header) (*http.Response, context.CancelFunc, error) {
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.srv.URL+path, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	// A client of its own: the cookie jar, but no timeout (a stream is long).
	resp, err := (&http.Client{Jar: c.http.Jar}).Do(req)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	return resp, cancel, nil
}

func (s *sseStream) read() {
	defer close(s.ended)
	sc := bufio.NewScanner(s.resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var ev sseEvent
	var data []string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if data != nil {
				ev.Data = strings.Join(data, "\n")
				s.events <- ev
			}
			ev, data = sseEvent{}, nil
		case strings.HasPrefix(line, ":"):
			select {
			case s.comments <- line:
			default:
			}
		case strings.HasPrefix(line, "event: "):
			ev.Event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "id: "):
			ev.ID = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "data: "):
			data = append(data, strings.TrimPrefix(line, "data: "))
		}
	}
}

func (s *sseStream) close() {
	s.cancel()
	s.resp.Body.Close()
}

// next returns the next event, failing the test after 5 s.
func (s *sseStream) next(t *testing.T) sseEvent {
	t.Helper()
	select {
	case ev := <-s.events:
		return ev
	case <-s.ended:
		t.Fatal("stream ended")
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5 s")
	}
	return sseEvent{}
}

// tick applies a price and publishes it as the market service's Run would.
func (srv *testServer) tick(symbol string, price float64) market.Quote {
	srv.t.Helper()
	q, err := srv.Market.Apply(market.Tick{Symbol: symbol, Price: price, Time: time.Now()})
	if err != nil {
		srv.t.Fatal(err)
	}
	srv.H.PublishQuote(q)
	return q
}

func TestTickerPages(t *testing.T) {
	srv := newTestServer(t)
	ana := srv.signup("ana")
	srv.tick("VOIDX", 101.25)
	if _, body := ana.get("/ticker"); !strings.Contains(body, `sse-connect="/ticker/stream"`) || !strings.Contains(body, `sse-swap="quote-VOIDX"`) || !strings.Contains(body, "101.25") || !strings.Contains(body, `sse-swap="quote-HELIX"`) {
		t.Fatalf("ticker page lacks the stream, rows or price: %.800s", body)
	}
	if _, body := ana.get("/ticker/voidx"); !strings.Contains(body, "/ticker/stream?view=detail&amp;symbols=VOIDX") || !strings.Contains(body, "<polyline") {
		t.Fatal("detail page lacks its stream or chart")
	}
	for path, want := range map[string]int{"/ticker/NOPE": 404, "/ticker/stream?symbols=NOPE": 400} {
		if resp, _ := ana.get(path); resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
	anon := srv.newClient()
	for path, want := range map[string]int{"/ticker": 303, "/ticker/stream": 401, "/api/stock-stream": 401} {
		if resp, _ := anon.get(path); resp.StatusCode != want {
			t.Errorf("signed out GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
	resp, _ := anon.do("GET", "/api/stock-stream", nil, http.Header{"Authorization": {"Bearer sb_forged"}})
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("forged token: %d, want 401", resp.StatusCode)
	}
}

func TestTickerStreamSnapshotThenTicks(t *testing.T) {
	srv := newTestServer(t)
	ana := srv.signup("ana")
	srv.tick("VOIDX", 100)
	srv.tick("VOIDX", 101)
	srv.tick("ACME", 50)
	st := ana.openStream("/ticker/stream", nil)
	// The snapshot: the newest quote of each symbol that has one, nothing older.
	snap := map[string]sseEvent{}
	for len(snap) < 2 {
		ev := st.next(t)
		snap[ev.Event] = ev
	}
	if !strings.Contains(snap["quote-VOIDX"].Data, "101.00") || !strings.Contains(snap["quote-ACME"].Data, "50.00") {
		t.Fatalf("snapshot: %+v", snap)
	}
	if strings.Contains(snap["quote-VOIDX"].Data, "<script") || !strings.Contains(snap["quote-VOIDX"].Data, "<td") {
		t.Fatalf("not a row fragment: %s", snap["quote-VOIDX"].Data)
	}
	if strings.Contains(snap["quote-VOIDX"].Data, "flash-") {
		t.Fatalf("the snapshot flashes though nothing just moved: %s", snap["quote-VOIDX"].Data)
	}
	if a, _ := strconv.Atoi(snap["quote-ACME"].ID); a < 1 {
		t.Fatal("snapshot without ids")
	}
	last, _ := strconv.Atoi(snap["quote-VOIDX"].ID)
	for i := 0; i < 5; i++ {
		q := srv.tick("VOIDX", 102+float64(i))
		ev := st.next(t)
		id, _ := strconv.Atoi(ev.ID)
		if ev.Event != "quote-VOIDX" || id <= last || id != int(q.Seq) || !strings.Contains(ev.Data, fmt.Sprintf("%.2f", q.Price)) {
			t.Fatalf("tick %d: %+v (previous id %d)", i, ev, last)
		}
		if !strings.Contains(ev.Data, "flash-up") {
			t.Fatalf("a rising price does not flash: %s", ev.Data)
		}
		last = id
	}
	// Idle streams get a heartbeat comment.
	select {
	case c := <-st.comments:
		if !strings.HasPrefix(c, ": ping") {
			t.Fatalf("comment %q", c)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no heartbeat")
	}
}

func TestStockStreamJSONFilterAndResume(t *testing.T) {
	srv := newTestServer(t)
	ana := srv.signup("ana")
	token := ana.createToken("script")
	bearer := http.Header{"Authorization": {"Bearer " + token}}
	var seqs []uint64
	for i := 0; i < 4; i++ {
		seqs = append(seqs, srv.tick("VOIDX", 100+float64(i)).Seq)
		srv.tick("ACME", 10+float64(i))
	}

	// Snapshot events come in id order, so Last-Event-ID after them resumes without repeats.
	all := srv.newClient().openStream("/api/stock-stream", bearer)
	a, b := all.next(t), all.next(t)
	if ai, _ := strconv.Atoi(a.ID); ai >= func() int { bi, _ := strconv.Atoi(b.ID); return bi }() {
		t.Fatalf("snapshot out of id order: %s then %s", a.ID, b.ID)
	}
	st := srv.newClient().openStream("/api/stock-stream?symbols=VOIDX", bearer)
	ev := st.next(t)
	var got struct {
		Symbol    string  `json:"symbol"`
		Price     float64 `json:"price"`
		Change    float64 `json:"change"`
		Timestamp int64   `json:"timestamp"`
	}
	if err := json.Unmarshal([]byte(ev.Data), &got); err != nil {
		t.Fatalf("not JSON: %q", ev.Data)
	}
	if got.Symbol != "VOIDX" || got.Price != 103 || got.Change != 3 || got.Timestamp < time.Now().Add(-time.Minute).UnixMilli() || ev.Event != "" {
		t.Fatalf("snapshot event %+v %+v", ev, got)
	}
	srv.tick("ACME", 20)
	q := srv.tick("VOIDX", 104.5)
	if ev := st.next(t); !strings.Contains(ev.Data, `"symbol":"VOIDX","price":104.5`) || ev.ID != strconv.FormatUint(q.Seq, 10) {
		t.Fatalf("filtered tick: %+v", ev)
	}

	// Resume after the second VOIDX tick: exactly the later VOIDX ticks, in order.
	resumed := srv.newClient().openStream("/api/stock-stream?symbols=VOIDX", http.Header{
		"Authorization": {"Bearer " + token}, "Last-Event-ID": {strconv.FormatUint(seqs[1], 10)}})
	for _, want := range []string{"102", "103", "104.5"} {
		if ev := resumed.next(t); !strings.Contains(ev.Data, `"price":`+want+`,`) {
			t.Fatalf("resume: want price %s, got %+v", want, ev)
		}
	}
	// A session works too, and an id the market no longer holds falls back to the snapshot.
	old := ana.openStream("/api/stock-stream", http.Header{"Last-Event-ID": {"999999"}})
	seen := map[string]bool{}
	for len(seen) < 2 {
		var tick struct{ Symbol string }
		json.Unmarshal([]byte(old.next(t).Data), &tick)
		seen[tick.Symbol] = true
	}
	if !seen["VOIDX"] || !seen["ACME"] {
		t.Fatalf("snapshot fallback: %v", seen)
	}
}

var tokenShown = regexp.MustCompile(`id="new-token" readonly value="(sb_[^"]+)"`)

// createToken makes an API token through the settings page and returns it.
func (c *client) createToken(name string) string {
	c.t.Helper()
	resp, _ := c.post("/settings/tokens", url.Values{"name": {name}})
	if resp.StatusCode != http.StatusSeeOther {
		c.t.Fatalf("create token: %d", resp.StatusCode)
	}
	_, body := c.get("/settings/tokens")
	m := tokenShown.FindStringSubmatch(body)
	if m == nil {
		c.t.Fatalf("the new token is not shown: %.300s", body)
	}
	return m[1]
}

func TestTokensPage(t *testing.T) {
	srv := newTestServer(t)
	ana := srv.signup("ana")
	token := ana.createToken("feed")
	_, body := ana.get("/settings/tokens") // a reload
	if strings.Contains(body, token) || !strings.Contains(body, token[:9]) {
		t.Fatal("a reload shows the whole token again, or the list lacks its hint")
	}
	if toks, _ := srv.Store.Tokens(context.Background(), srv.user("ana").ID); len(toks) != 1 {
		t.Fatalf("%d tokens after create and reload, want 1", len(toks))
	}
	toks, _ := srv.Store.Tokens(context.Background(), srv.user("ana").ID)
	path := fmt.Sprintf("/settings/tokens/%d/revoke", toks[0].ID)
	bob := srv.signup("bob")
	if resp, _ := bob.post(path, nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("bob revoked ana's token: %d", resp.StatusCode)
	}
	if resp, _ := ana.post(path, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}
	resp, _ := srv.newClient().do("GET", "/api/stock-stream", nil, http.Header{"Authorization": {"Bearer " + token}})
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("revoked token: %d", resp.StatusCode)
	}
}

func TestIngestPrices(t *testing.T) {
	srv := newTestServer(t)
	admin := srv.signup("admin") // the first account
	user := srv.signup("user")
	adminToken, userToken := admin.createToken("feed"), user.createToken("mine")
	st := admin.openStream("/api/stock-stream?symbols=VOIDX", nil)

	post := func(token, query, body string) (int, string) {
		h := http.Header{"Content-Type": {"application/json"}}
		if token != "" {
			h.Set("Authorization", "Bearer "+token)
		}
		resp, b := srv.newClient().do("POST", "/api/prices"+query, strings.NewReader(body), h)
		return resp.StatusCode, b
	}
	if code, body := post(adminToken, "", `[{"symbol":"VOIDX","price":123.45,"timestamp":1764100000000}]`); code != 200 || !strings.Contains(body, `"applied":1`) {
		t.Fatalf("ingest: %d %s", code, body)
	}
	ev := st.next(t)
	if !strings.Contains(ev.Data, `"symbol":"VOIDX","price":123.45,"change":0,"timestamp":1764100000000`) {
		t.Fatalf("stream after ingest: %+v", ev)
	}
	if q, _ := srv.Market.Quote("VOIDX"); q.Price != 123.45 {
		t.Fatalf("market price %v", q.Price)
	}

	bad := []struct {
		name, token, query, body string
		want                     int
		msg                      string
	}{
		{"no token", "", "", `[]`, 401, `{"error":"An API token is required`},
		{"not an admin", userToken, "", `[{"symbol":"VOIDX","price":1}]`, 403, "admin"},
		{"not JSON", adminToken, "", `{`, 400, "JSON array"},
		{"an object", adminToken, "", `{"symbol":"VOIDX","price":1}`, 400, "JSON array"},
		{"unknown field", adminToken, "", `[{"symbol":"VOIDX","price":1,"volume":5}]`, 400, "unknown field"},
		{"price missing", adminToken, "", `[{"symbol":"VOIDX"}]`, 400, "price is missing"},
		{"zero price", adminToken, "", `[{"symbol":"VOIDX","price":0}]`, 400, "finite number above 0"},
		{"negative price", adminToken, "", `[{"symbol":"VOIDX","price":-1}]`, 400, "finite number above 0"},
		{"NaN as a string", adminToken, "", `[{"symbol":"VOIDX","price":"NaN"}]`, 400, "JSON array"},
		{"huge number", adminToken, "", `[{"symbol":"VOIDX","price":1e400}]`, 400, "JSON array"},
		{"unknown symbol", adminToken, "", `[{"symbol":"NEWCO","price":5}]`, 400, "unknown symbol NEWCO"},
		{"bad symbol", adminToken, "", `[{"symbol":"<b>","price":5}]`, 400, "not valid"},
		{"one bad entry spoils all", adminToken, "", `[{"symbol":"VOIDX","price":200},{"symbol":"ACME","price":-2}]`, 400, "ACME"},
		{"trailing data", adminToken, "", `[] []`, 400, "one JSON array"},
		{"over 1 MiB", adminToken, "", "[" + strings.Repeat(" ", 1<<20) + "]", 400, "over 1 MiB"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			code, body := post(tt.token, tt.query, tt.body)
			if code != tt.want || !strings.Contains(body, tt.msg) {
				t.Fatalf("%d %.200s, want %d %q", code, body, tt.want, tt.msg)
			}
		})
	}
	if q, _ := srv.Market.Quote("VOIDX"); q.Price != 123.45 {
		t.Fatalf("a refused body changed the price to %v", q.Price)
	}
	if srv.Market.Has("NEWCO") {
		t.Fatal("a refused body added a symbol")
	}
	if code, body := post(adminToken, "?add=1", `[{"symbol":"newco","price":5}]`); code != 200 || !srv.Market.Has("NEWCO") {
		t.Fatalf("add: %d %s", code, body)
	}
}

func TestStreamsLeaveNoGoroutinesAndEndAtShutdown(t *testing.T) {
	srv := newTestServer(t)
	ana := srv.signup("ana")
	srv.tick("VOIDX", 100)
	ana.openStream("/ticker/stream", nil).next(t) // warm up the server's pools
	time.Sleep(200 * time.Millisecond)
	base := serverGoroutines()
	for i := 0; i < 500; i++ {
		resp, cancel, err := ana.streamRequest("/ticker/stream?symbols=VOIDX", nil)
		if err != nil {
			t.Fatal(err)
		}
		bufio.NewReader(resp.Body).ReadString('\n')
		cancel()
		resp.Body.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for serverGoroutines() > base && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := serverGoroutines(); n > base {
		t.Fatalf("goroutines in our code: %d after 500 streams, baseline %d", n, base)
	}
	if n := srv.Hub.Subscribers("tick:table:VOIDX"); n > 1 {
		t.Fatalf("%d subscribers left on the tick topic", n)
	}

	var streams []*sseStream
	for i := 0; i < 15; i++ { // with the warm-up stream: the per-user cap of 16
		streams = append(streams, ana.openStream("/ticker/stream", nil))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := srv.H.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	for _, st := range streams {
		select {
		case <-st.ended:
		case <-time.After(time.Second):
			t.Fatal("a stream is still open 1 s after shutdown")
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("shutdown took %v", d)
	}
}

func TestLogoutEndsStreams(t *testing.T) {
	srv := newTestServer(t)
	ana := srv.signup("ana")
	st := ana.openStream("/ticker/stream", nil)
	ana.post("/logout", nil)
	select {
	case <-st.ended:
	case <-time.After(2 * time.Second):
		t.Fatal("stream open 2 s after logout")
	}
}

// serverGoroutines counts the goroutines running our server code (handlers, realtime). fasthttp keeps idle
// workers around for a while, so the whole process's count is not a leak signal; a stream that never ended is.
func serverGoroutines() int {
	buf := make([]byte, 8<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "switchboard/handlers.") || strings.Contains(g, "switchboard/realtime.") {
			n++
		}
	}
	return n
}
