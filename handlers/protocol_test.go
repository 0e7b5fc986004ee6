package handlers_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"switchboard/handlers"
)

// logBuffer collects the server's log so a test can assert that no socket handler panicked.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// withLog sends the server's log to buf.
func withLog(buf *logBuffer) func(*handlers.Deps) {
	return func(d *handlers.Deps) { d.Log = slog.New(slog.NewTextHandler(buf, nil)) }
}

func assertNoPanic(t *testing.T, log *logBuffer) {
	t.Helper()
	if s := log.String(); strings.Contains(s, "panic") {
		t.Fatalf("the server logged a panic:\n%s", s)
	}
}

// roomPath returns general's id, its socket path and its topic.
func (s *testServer) general(userName string) (id int64, wsPath, topic string) {
	s.t.Helper()
	id = s.roomID("general", s.user(userName).ID)
	return id, fmt.Sprintf("/rooms/%d/ws", id), fmt.Sprintf("room:%d", id)
}

// The read limit applies to the message, not to each frame: a message split into 1 KiB fragments that adds up
// to more than 64 KiB closes the socket with 1009, stores nothing, and leaves the room working for others.
func TestOversizeByFragmentationCloses1009(t *testing.T) {
	log := &logBuffer{}
	srv := newTestServer(t, withLog(log))
	ana, bob := srv.signup("ana"), srv.signup("bob")
	general, path, topic := srv.general("ana")
	control := bob.mustDial(path)
	srv.waitSubscribers(topic, 1)
	raw := ana.rawDial(path, rawOptions{})
	srv.waitSubscribers(topic, 2)

	chunk := bytes.Repeat([]byte("x"), 1024)
	start := append([]byte(`{"text":"`), chunk[9:]...) // exactly 1 KiB, like every fragment
	wrote := make(chan int, 1)
	go func() { // the server may hang up before all of it is written: write beside the reader
		n := 0
		if raw.write(wsFrame{Op: opText, Payload: start}) == nil {
			for n = 0; n < 100; n++ {
				if raw.write(wsFrame{Fin: n == 99, Op: opContinuation, Payload: chunk}) != nil {
					break
				}
			}
		}
		wrote <- n
	}()
	code, err := raw.waitClose(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if code != 1009 {
		t.Fatalf("close code %d, want 1009 (message too big)", code)
	}
	if n := <-wrote; n < 63 {
		t.Fatalf("closed after %d continuation frames (%d KiB): before the 64 KiB limit", n, n+1)
	}
	if !waitFor(2*time.Second, func() bool { return srv.Hub.Subscribers(topic) == 1 }) { // the server side is gone too
		t.Fatalf("%d subscribers left, want the control client only", srv.Hub.Subscribers(topic))
	}
	if n := textMessages(t, srv, general); n != 0 {
		t.Fatalf("%d messages stored", n)
	}
	send(t, control, "control still talks", "")
	readUntil(t, control, "control still talks")
	assertNoPanic(t, log)
}

// The server does not negotiate permessage-deflate (compression leaks secrets and makes the read limit count
// compressed bytes): the 101 carries no Sec-WebSocket-Extensions, and the server's frames have RSV1 clear.
func TestNoCompressionNegotiated(t *testing.T) {
	srv := newTestServer(t)
	ana := srv.signup("ana")
	_, path, _ := srv.general("ana")
	raw := ana.rawDial(path, rawOptions{Header: http.Header{
		"Sec-Websocket-Extensions": {"permessage-deflate; client_max_window_bits", "x-webkit-deflate-frame"},
	}})
	if ext, ok := raw.Resp.Header["Sec-Websocket-Extensions"]; ok {
		t.Fatalf("the server negotiated extensions: %q", ext)
	}
	f, err := raw.readFrame(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if f.RSV != 0 || f.Masked {
		t.Fatalf("server frame with RSV bits %#x, masked %v", f.RSV, f.Masked)
	}
	// A message written one byte per TCP segment is still one message.
	if err := raw.writeDribble(textFrame(`{"text":"dribbled in"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.readUntil("dribbled in", 5*time.Second); err != nil {
		t.Fatal(err)
	}
}

// Each framing violation on its own connection makes the server hang up within a second: with a 1002 close
// frame, or by closing the connection. Nothing panics, the socket's subscription goes away, and a control
// connection alongside keeps working.
func TestRawFrameViolationsCloseTheConnection(t *testing.T) {
	log := &logBuffer{}
	srv := newTestServer(t, withLog(log))
	ana, bob := srv.signup("ana"), srv.signup("bob")
	general, path, topic := srv.general("ana")
	control := bob.mustDial(path)
	srv.waitSubscribers(topic, 1)

	tests := []struct {
		name   string
		frames []wsFrame
		want   int // the close code if the server sends a close frame
	}{
		{"unmasked client frame", []wsFrame{{Fin: true, Op: opText, Unmasked: true, Payload: []byte(`{"text":"unmasked"}`)}}, 1002},
		{"RSV1 without an extension", []wsFrame{{Fin: true, RSV: rsv1, Op: opText, Payload: []byte(`{"text":"rsv1"}`)}}, 1002},
		{"RSV2 and RSV3", []wsFrame{{Fin: true, RSV: rsv2 | rsv3, Op: opText, Payload: []byte(`{"text":"rsv23"}`)}}, 1002},
		{"reserved data opcode 0x3", []wsFrame{{Fin: true, Op: 0x3, Payload: []byte("x")}}, 1002},
		{"reserved control opcode 0xB", []wsFrame{{Fin: true, Op: 0xB}}, 1002},
		{"ping with a 126-byte payload", []wsFrame{{Fin: true, Op: opPing, Payload: bytes.Repeat([]byte("p"), 126)}}, 1002},
		{"fragmented ping", []wsFrame{{Fin: false, Op: opPing, Payload: []byte("p")}}, 1002},
		{"continuation without a start", []wsFrame{{Fin: true, Op: opContinuation, Payload: []byte(`{"text":"orphan"}`)}}, 1002},
		{"new message inside a fragmented one", []wsFrame{
			{Fin: false, Op: opText, Payload: []byte(`{"text":`)},
			{Fin: true, Op: opText, Payload: []byte(`{"text":"interleaved"}`)},
		}, 1002},
		{"close code 1005 on the wire", []wsFrame{closeFrame(1005, "")}, 1002},
		{"64-bit length with the top bit set", []wsFrame{{Fin: true, Op: opText, LenForm: 64, Length: 1 << 63}}, 1009},
		{"64-bit length claiming 1 TiB", []wsFrame{{Fin: true, Op: opText, LenForm: 64, Length: 1 << 40}}, 1009},
	}
	parent := t
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ana.t, srv.t = t, t // the helpers fail and clean up the subtest
			defer func() { ana.t, srv.t = parent, parent }()
			raw := ana.rawDial(path, rawOptions{})
			srv.waitSubscribers(topic, 2)
			if err := raw.write(tt.frames...); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			code, err := raw.waitClose(time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if code != noCloseFrame && code != tt.want {
				t.Fatalf("close code %d, want %d (or a hang-up)", code, tt.want)
			}
			t.Logf("closed after %v with %d", time.Since(start).Round(time.Millisecond), code)
			if !waitFor(2*time.Second-time.Since(start), func() bool { return srv.Hub.Subscribers(topic) == 1 }) {
				t.Fatalf("the server still holds the socket's subscription after %v", time.Since(start))
			}
			text := fmt.Sprintf("control alive %d", i)
			send(t, control, text, "")
			readUntil(t, control, text)
		})
	}
	if n := textMessages(t, srv, general); n != len(tests) {
		t.Fatalf("%d messages stored, want only the control client's %d", n, len(tests))
	}
	assertNoPanic(t, log)
}

// A frame that names another room is stored and pushed in the room of the URL only.
func TestRoomComesFromTheURLOnly(t *testing.T) {
	srv := newTestServer(t)
	ana, cat := srv.signup("ana"), srv.signup("cat")
	general, path, _ := srv.general("ana")
	resp, _ := cat.post("/rooms", url.Values{"name": {"elsewhere"}})
	var other int64
	fmt.Sscanf(resp.Header.Get("Location"), "/rooms/%d", &other)
	if other == 0 || other == general {
		t.Fatalf("no second room: %q", resp.Header.Get("Location"))
	}
	watcher := cat.mustDial(fmt.Sprintf("/rooms/%d/ws", other))
	srv.waitSubscribers(fmt.Sprintf("room:%d", other), 1)
	a := ana.mustDial(path)

	for i, frame := range []string{
		`{"room":%d,"text":"x %d"}`,
		`{"room":"%d","text":"x %d"}`,
		`{"room_id":%d,"text":"x %d","HEADERS":{"HX-Current-URL":"http://x/rooms/0"}}`,
	} {
		write(t, a, fmt.Sprintf(frame, other, i))
		readUntil(t, a, fmt.Sprintf("x %d<", i))
	}
	if fs := frames(watcher, 300*time.Millisecond); count(fs, "x 0<")+count(fs, "x 1<")+count(fs, "x 2<") != 0 {
		t.Fatalf("the other room received the messages: %v", fs)
	}
	if n := textMessages(t, srv, other); n != 0 {
		t.Fatalf("%d messages stored in the other room", n)
	}
	if n := textMessages(t, srv, general); n != 3 {
		t.Fatalf("%d messages stored in the URL's room, want 3", n)
	}
}

func write(t *testing.T, conn *wsConn, frame string) {
	t.Helper()
	if err := conn.Write(context.Background(), 1, []byte(frame)); err != nil {
		t.Fatal(err)
	}
}

// Markup in a message is data: stored as typed, pushed and reloaded escaped, so it makes no element (no <img>
// with an onerror, no out-of-band swap that replaces the page's #nav).
func TestStoredMarkupIsEscapedOnPushAndReload(t *testing.T) {
	srv := newTestServer(t)
	ana, bob := srv.signup("ana"), srv.signup("bob")
	general, path, topic := srv.general("ana")
	a, b := ana.mustDial(path), bob.mustDial(path)
	srv.waitSubscribers(topic, 2)

	payloads := []string{
		`<img src=x onerror=alert(1)>`,
		`</p><div id="nav" hx-swap-oob="true">x</div>`,
		`<div hx-get="/logout" hx-trigger="load">bye</div>`,
		`]]><!-- <script>alert(2)</script> --> &amp; &lt;`,
	}
	for i, p := range payloads {
		send(t, a, p, fmt.Sprintf("xss-%d", i))
		escaped := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;").Replace(p)
		for _, conn := range []*wsConn{a, b} {
			frame := readUntil(t, conn, fmt.Sprintf(`data-client-id="xss-%d"`, i))
			if strings.Contains(frame, "<img") || strings.Contains(frame, `<div id="nav"`) {
				t.Fatalf("push of %q carries raw markup: %s", p, frame)
			}
			if !strings.Contains(frame, escaped) {
				t.Fatalf("push of %q lacks the escaped text %q: %s", p, escaped, frame)
			}
			checkNoInjectedMarkup(t, frame, []string{p}, false)
		}
	}

	msgs, err := srv.Store.RecentMessages(context.Background(), general, 50)
	if err != nil {
		t.Fatal(err)
	}
	var stored []string
	for _, m := range msgs {
		if m.Kind == "text" {
			stored = append(stored, m.Text)
		}
	}
	if strings.Join(stored, "\x00") != strings.Join(payloads, "\x00") {
		t.Fatalf("stored %q, want the payloads verbatim %q", stored, payloads)
	}

	_, page := bob.get(fmt.Sprintf("/rooms/%d", general))
	if strings.Contains(page, "<img src=x") || strings.Contains(page, `<div id="nav"`) {
		t.Fatal("the room page holds raw markup from a message")
	}
	checkNoInjectedMarkup(t, page, payloads, true)
}

// checkNoInjectedMarkup parses doc as a browser would and checks that it holds no <img>, no script from a
// message, no injected htmx element (hx-get="/logout", or an out-of-band #nav), only the page's own #nav (one, in
// a full page only), and that the <p> of the messages holds exactly the texts given, in order.
func checkNoInjectedMarkup(t *testing.T, doc string, texts []string, fullPage bool) {
	t.Helper()
	root, err := html.Parse(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	navs := 0
	var got []string
	for n := range root.Descendants() {
		if n.Type != html.ElementNode {
			continue
		}
		switch {
		case n.DataAtom == atom.Img:
			t.Fatalf("an injected <img> element: %v", n.Attr)
		case n.DataAtom == atom.Script && n.FirstChild != nil && strings.Contains(n.FirstChild.Data, "alert"):
			t.Fatalf("an injected <script> element: %s", n.FirstChild.Data)
		case attr(n, "hx-get") == "/logout" || attr(n, "hx-swap-oob") == "true" && attr(n, "id") == "nav":
			t.Fatalf("an injected htmx element: <%s %v>", n.Data, n.Attr)
		}
		if attr(n, "id") == "nav" {
			navs++
		}
		if n.DataAtom == atom.Article && strings.Contains(attr(n, "class"), "msg") {
			for c := range n.Descendants() {
				if c.DataAtom == atom.P {
					var text strings.Builder
					for k := c.FirstChild; k != nil; k = k.NextSibling {
						if k.Type != html.TextNode {
							t.Fatalf("an element inside a message's text: <%s>", k.Data)
						}
						text.WriteString(k.Data)
					}
					got = append(got, text.String())
				}
			}
		}
	}
	if want := map[bool]int{true: 1, false: 0}[fullPage]; navs != want {
		t.Fatalf("%d elements with id=nav, want %d", navs, want)
	}
	if strings.Join(got, "\x00") != strings.Join(texts, "\x00") {
		t.Fatalf("message texts %q, want %q", got, texts)
	}
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}
