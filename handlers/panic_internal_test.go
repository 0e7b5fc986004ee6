package handlers

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	ws "github.com/coder/websocket"
	"github.com/gofiber/contrib/websocket"
	"github.com/gofiber/fiber/v2"
)

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// A socket handler that panics costs one connection, never the process or a secret: the client gets close 1011
// with a generic reason, the panic is logged, and the server goes on serving sockets and pages.
func TestSocketPanicCloses1011WithoutDetail(t *testing.T) {
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Get("/boom", websocket.New(func(*websocket.Conn) { panic("secret detail 123") }, socketConfig(log, &sync.Pool{})))
	app.Get("/echo", websocket.New(func(c *websocket.Conn) {
		for {
			kind, data, err := c.ReadMessage()
			if err != nil {
				return
			}
			if c.WriteMessage(kind, data) != nil {
				return
			}
		}
	}, socketConfig(log, &sync.Pool{})))
	app.Get("/page", func(c *fiber.Ctx) error { return c.SendString("still serving") })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go app.Listener(ln)
	t.Cleanup(func() { _ = app.ShutdownWithTimeout(5 * time.Second) })
	base := "ws://" + ln.Addr().String()

	for i := range 3 { // more than once: the recovered connection must not poison the pool it returns to
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		conn, _, err := ws.Dial(ctx, base+"/boom", nil)
		if err != nil {
			cancel()
			t.Fatalf("dial %d: %v", i, err)
		}
		_, _, err = conn.Read(ctx)
		cancel()
		conn.CloseNow()
		var ce ws.CloseError
		if !errors.As(err, &ce) {
			t.Fatalf("read %d: %v, want a close frame", i, err)
		}
		if ce.Code != ws.StatusInternalError {
			t.Fatalf("close code %d, want 1011", ce.Code)
		}
		if strings.Contains(ce.Reason, "secret") || strings.Contains(ce.Reason, "123") || strings.Contains(ce.Reason, "panic") {
			t.Fatalf("the close reason leaks the panic: %q", ce.Reason)
		}
	}
	if s := logs.String(); !strings.Contains(s, "socket handler panicked") || !strings.Contains(s, "secret detail 123") {
		t.Fatalf("the panic was not logged: %s", s)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, _, err := ws.Dial(ctx, base+"/echo", nil)
	if err != nil {
		t.Fatalf("a socket after the panics: %v", err)
	}
	defer conn.CloseNow()
	if err := conn.Write(ctx, ws.MessageText, []byte("ping?")); err != nil {
		t.Fatal(err)
	}
	if _, got, err := conn.Read(ctx); err != nil || string(got) != "ping?" {
		t.Fatalf("echo: %q, %v", got, err)
	}
	resp, err := http.Get("http://" + ln.Addr().String() + "/page")
	if err != nil {
		t.Fatalf("a page after the panics: %v", err)
	}
	defer resp.Body.Close()
	if body, _ := io.ReadAll(resp.Body); resp.StatusCode != http.StatusOK || string(body) != "still serving" {
		t.Fatalf("a page after the panics: %d %q", resp.StatusCode, body)
	}
}
