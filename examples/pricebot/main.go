// Pricebot answers "!price SYMBOL" in a Switchboard room with the symbol's latest price.
//
// It is a client of Switchboard's JSON API, authenticated by an API token (made on /settings/tokens):
//
//   - GET /api/stock-stream: Server-Sent Events of JSON quotes, {"symbol":"VOIDX","price":101.23,...}; the bot
//     keeps the newest price of each symbol.
//   - GET /api/ws: the JSON WebSocket. The bot joins the room, reads new_message events, and answers a command
//     with send_message. When the connection fails it reconnects with backoff and sends resume with the id of
//     the last message it saw, so the commands sent meanwhile are answered too; a reply's client_id is derived
//     from the command's message id, so a command is never answered twice.
//
// Run it with: go run ./examples/pricebot -token sb_… [-url http://localhost:3000] [-room general]
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coder/websocket"
)

const (
	minBackoff   = 500 * time.Millisecond // the first wait before reconnecting
	maxBackoff   = 30 * time.Second       // the longest
	stableAfter  = 30 * time.Second       // a connection that lasted this long resets the backoff
	dialTimeout  = 10 * time.Second
	writeTimeout = 10 * time.Second
	readLimit    = 1 << 20
	clientPrefix = "pricebot-" // the client ids of the bot's own messages
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "pricebot:", err)
		os.Exit(1)
	}
}

// run parses the flags and runs the bot until ctx is done.
func run(ctx context.Context, args []string, getenv func(string) string) error {
	fs := flag.NewFlagSet("pricebot", flag.ContinueOnError)
	base := fs.String("url", "http://localhost:3000", "Switchboard's base URL")
	token := fs.String("token", getenv("SWITCHBOARD_TOKEN"), "API token, from /settings/tokens (env SWITCHBOARD_TOKEN)")
	room := fs.String("room", "general", "the room to answer in")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *token == "" {
		return errors.New("an API token is required: -token sb_… or SWITCHBOARD_TOKEN (make one on /settings/tokens)")
	}
	u, err := url.Parse(strings.TrimSuffix(*base, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("-url %q is not an http(s) URL", *base)
	}
	b := &bot{
		base:   u,
		token:  *token,
		room:   *room,
		log:    slog.New(slog.NewTextHandler(os.Stderr, nil)),
		prices: make(map[string]float64),
	}
	var wg sync.WaitGroup
	wg.Go(func() { b.followPrices(ctx) })
	b.chat(ctx)
	wg.Wait()
	return nil
}

// bot is one pricebot. prices is shared by the two loops: followPrices writes it, chat reads it.
type bot struct {
	base  *url.URL
	token string
	room  string
	log   *slog.Logger

	mu     sync.Mutex
	prices map[string]float64 // symbol → latest price
}

var symbolPattern = regexp.MustCompile(`^[A-Z0-9.-]{1,12}$`)

// handle answers one message: for "!price SYMBOL" (anywhere in the text, e.g. after an @mention) the latest
// price, or a note that there is none; ok is false for any other message, which gets no answer.
func handle(text string, prices map[string]float64) (reply string, ok bool) {
	fields := strings.Fields(text)
	for i, f := range fields {
		if !strings.EqualFold(f, "!price") {
			continue
		}
		if i+1 >= len(fields) {
			return "Usage: !price SYMBOL (for example !price VOIDX)", true
		}
		symbol := strings.ToUpper(strings.Trim(fields[i+1], ".,;:!?"))
		if !symbolPattern.MatchString(symbol) {
			return fmt.Sprintf("%q is not a ticker symbol.", fields[i+1]), true
		}
		price, known := prices[symbol]
		if !known {
			return "I have no price for " + symbol + " yet.", true
		}
		return fmt.Sprintf("%s: %s", symbol, strconv.FormatFloat(price, 'f', 2, 64)), true
	}
	return "", false
}

// answer runs handle on the current prices.
func (b *bot) answer(text string) (string, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return handle(text, b.prices)
}

// backoff is a reconnect delay that doubles up to maxBackoff, with jitter.
type backoff struct{ next time.Duration }

func (bo *backoff) wait(ctx context.Context) bool {
	d := max(bo.next, minBackoff)
	bo.next = min(d*2, maxBackoff)
	d = d/2 + rand.N(d/2+1) // jitter: many bots restarting together do not reconnect together
	select {
	case <-time.After(d):
		return true
	case <-ctx.Done():
		return false
	}
}

func (bo *backoff) reset() { bo.next = 0 }

// followPrices keeps b.prices up to date from /api/stock-stream, reconnecting with backoff (and Last-Event-ID,
// so the server can replay what was missed) until ctx is done.
func (b *bot) followPrices(ctx context.Context) {
	var bo backoff
	var lastID string
	for ctx.Err() == nil {
		start := time.Now()
		err := b.readPrices(ctx, &lastID)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > stableAfter {
			bo.reset()
		}
		b.log.Warn("price stream ended; reconnecting", slog.Any("error", err))
		if !bo.wait(ctx) {
			return
		}
	}
}

// quote is one event of /api/stock-stream.
type quote struct {
	Symbol    string  `json:"symbol"`
	Price     float64 `json:"price"`
	Change    float64 `json:"change"`
	Timestamp int64   `json:"timestamp"`
}

func (b *bot) readPrices(ctx context.Context, lastID *string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.base.String()+"/api/stock-stream", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+b.token)
	req.Header.Set("Accept", "text/event-stream")
	if *lastID != "" {
		req.Header.Set("Last-Event-ID", *lastID)
	}
	resp, err := http.DefaultClient.Do(req) // no timeout: the stream is meant to last; ctx ends it
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /api/stock-stream: %s", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 4096), readLimit)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "id:"):
			*lastID = strings.TrimSpace(strings.TrimPrefix(line, "id:"))
		case strings.HasPrefix(line, "data:"):
			var q quote
			if err := json.Unmarshal([]byte(strings.TrimSpace(strings.TrimPrefix(line, "data:"))), &q); err != nil || q.Symbol == "" {
				continue
			}
			b.mu.Lock()
			b.prices[strings.ToUpper(q.Symbol)] = q.Price
			b.mu.Unlock()
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return errors.New("the server closed the stream")
}

// chat answers commands in the room until ctx is done, reconnecting with backoff and resuming after the last
// message it saw.
func (b *bot) chat(ctx context.Context) {
	var bo backoff
	var after int64 // the id of the newest message seen; 0 before the first join
	for ctx.Err() == nil {
		start := time.Now()
		err := b.session(ctx, &after)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > stableAfter {
			bo.reset()
		}
		b.log.Warn("chat connection ended; reconnecting", slog.Any("error", err), slog.Int64("after", after))
		if !bo.wait(ctx) {
			return
		}
	}
}

// event is a frame of /api/ws in either direction.
type event struct {
	Event string          `json:"event"`
	Data  json.RawMessage `json:"data"`
}

// message is the data of new_message (and of joined, ack and error: the fields each one has).
type message struct {
	ID       int64  `json:"id"`
	Room     int64  `json:"room"`
	RoomName string `json:"room_name"`
	User     string `json:"user"`
	Text     string `json:"text"`
	ClientID string `json:"client_id"`
	After    int64  `json:"after"`
	Message  string `json:"message"` // error
	Status   int    `json:"status"`  // error
}

// session runs one connection: join (or resume after *after), then answer every new command.
func (b *bot) session(ctx context.Context, after *int64) error {
	wsURL := *b.base
	wsURL.Scheme = map[string]string{"http": "ws", "https": "wss"}[b.base.Scheme]
	wsURL.Path += "/api/ws"
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	conn, _, err := websocket.Dial(dctx, wsURL.String(), &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {"Bearer " + b.token}}, // never in the URL
	})
	cancel()
	if err != nil {
		return err
	}
	defer conn.CloseNow()
	conn.SetReadLimit(readLimit)

	if *after == 0 {
		err = b.emit(ctx, conn, "join_room", map[string]any{"room": b.room})
	} else {
		err = b.emit(ctx, conn, "resume", map[string]any{"room": b.room, "after": *after})
	}
	if err != nil {
		return err
	}
	var roomID int64
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			return err
		}
		var ev event
		if json.Unmarshal(data, &ev) != nil {
			continue
		}
		var m message
		_ = json.Unmarshal(ev.Data, &m)
		switch ev.Event {
		case "joined":
			roomID = m.Room
			*after = max(*after, m.After)
			b.log.Info("in the room", slog.String("room", m.RoomName), slog.Int64("after", *after))
		case "new_message":
			if m.Room != roomID || m.ID <= *after {
				continue
			}
			*after = m.ID
			if strings.HasPrefix(m.ClientID, clientPrefix) {
				continue // the bot's own
			}
			reply, ok := b.answer(m.Text)
			if !ok {
				continue
			}
			err := b.emit(ctx, conn, "send_message", map[string]any{
				"room": roomID, "text": reply, "client_id": clientPrefix + strconv.FormatInt(m.ID, 10),
			})
			if err != nil {
				return err
			}
		case "error":
			b.log.Warn("the server refused an event", slog.Int("status", m.Status), slog.String("message", m.Message))
			if roomID == 0 {
				return fmt.Errorf("joining %q: %s", b.room, m.Message)
			}
		}
	}
}

// emit writes one event.
func (b *bot) emit(ctx context.Context, conn *websocket.Conn, name string, data any) error {
	frame, err := json.Marshal(map[string]any{"event": name, "data": data})
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	return conn.Write(wctx, websocket.MessageText, frame)
}
