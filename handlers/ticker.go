package handlers

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/a-h/templ"
	"github.com/gofiber/fiber/v2"

	"switchboard/market"
	"switchboard/models"
	"switchboard/realtime"
	"switchboard/views"
)

const (
	streamHeartbeat = 15 * time.Second // a comment at least this often keeps proxies open and finds dead clients
	streamQueue     = 256              // queued ticks per stream; the stream writes only the newest of each symbol
	streamRetry     = 2 * time.Second  // the reconnect delay EventSource is told to use
	maxIngestBody   = 1 << 20          // the largest POST /api/prices body
)

// Tick topics: each symbol has one per rendering, so a stream subscribes to exactly the symbols it shows, and a
// tick is rendered once per rendering whatever the number of streams.
const (
	tickTable  = "tick:table:"  // the /ticker row cells
	tickDetail = "tick:detail:" // the /ticker/:symbol heading, figures and chart
	tickJSON   = "tick:json:"   // the JSON of /api/stock-stream
)

// PublishQuote renders a new quote once per rendering and publishes each as a ready-to-write SSE event. The
// market service calls it for every tick. Each topic also retains a rendering without the flash (nothing just
// moved for a page that opens now), which starts every new stream.
func (h *Handlers) PublishQuote(q market.Quote) {
	ctx := context.Background()
	live, still := h.viewQuote(q), h.viewQuote(q)
	still.Up, still.Down = false, false
	event, id := "quote-"+q.Symbol, int64(q.Seq)
	frame := func(c templ.Component) []byte { return sseEvent(event, q.Seq, h.fragment(ctx, c)) }
	data := jsonEvent(q)
	for _, t := range []struct {
		topic       string
		live, still []byte
	}{
		{tickTable + q.Symbol, frame(views.QuoteCells(live)), frame(views.QuoteCells(still))},
		{tickDetail + q.Symbol, frame(views.QuoteDetail(live)), frame(views.QuoteDetail(still))},
		{tickJSON + q.Symbol, data, data},
	} {
		h.retainTick(&realtime.Message{Topic: t.topic, ID: id, Data: t.still})
		h.publish(ctx, &realtime.Message{Topic: t.topic, ID: id, Data: t.live})
	}
}

// retainTick keeps the newest event of each tick topic: a new stream starts with them (the snapshot).
func (h *Handlers) retainTick(m *realtime.Message) {
	h.tickMu.Lock()
	defer h.tickMu.Unlock()
	if old := h.ticks[m.Topic]; old == nil || old.ID < m.ID {
		h.ticks[m.Topic] = m
	}
}

func (h *Handlers) retainedTicks(topics []string) []*realtime.Message {
	h.tickMu.Lock()
	defer h.tickMu.Unlock()
	var out []*realtime.Message
	for _, t := range topics {
		if m := h.ticks[t]; m != nil {
			out = append(out, m)
		}
	}
	return out
}

// sseEvent frames an HTML fragment as one SSE event: each line of the fragment gets its own data: line. An empty
// event name makes a plain "message" event, and id 0 leaves the id out.
func sseEvent(event string, id uint64, data []byte) []byte {
	var b bytes.Buffer
	if event != "" {
		b.WriteString("event: " + event + "\n")
	}
	if id != 0 {
		b.WriteString("id: " + strconv.FormatUint(id, 10) + "\n")
	}
	for _, line := range bytes.Split(data, []byte("\n")) {
		b.WriteString("data: ")
		b.Write(bytes.TrimSuffix(line, []byte("\r")))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	return b.Bytes()
}

// stockTick is the JSON of /api/stock-stream: the reference tutorial's {price, timestamp}, plus symbol and change.
type stockTick struct {
	Symbol    string  `json:"symbol"`
	Price     float64 `json:"price"`
	Change    float64 `json:"change"`
	Timestamp int64   `json:"timestamp"` // milliseconds since the epoch
}

func jsonEvent(q market.Quote) []byte {
	data, _ := json.Marshal(stockTick{Symbol: q.Symbol, Price: round2(q.Price), Change: round2(q.Change), Timestamp: q.Time.UnixMilli()})
	return []byte("id: " + strconv.FormatUint(q.Seq, 10) + "\ndata: " + string(data) + "\n\n")
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }

func (h *Handlers) viewQuote(q market.Quote) views.Quote {
	return views.Quote{
		Symbol: q.Symbol, HasPrice: true, Price: q.Price, Change: q.Change, ChangePct: q.ChangePct,
		Open: q.Open, High: q.High, Low: q.Low, Up: q.Up(), Down: q.Down(), History: h.market.History(q.Symbol),
	}
}

// currentQuote is a symbol's row as of now (without a flash: nothing just moved).
func (h *Handlers) currentQuote(symbol string) views.Quote {
	q, ok := h.market.Quote(symbol)
	if !ok {
		return views.Quote{Symbol: symbol}
	}
	vq := h.viewQuote(q)
	vq.Up, vq.Down = false, false
	return vq
}

func (h *Handlers) showTickerPage(c *fiber.Ctx) error {
	symbols := h.market.Symbols()
	quotes := make([]views.Quote, len(symbols))
	for i, s := range symbols {
		quotes[i] = h.currentQuote(s)
	}
	return render(c, fiber.StatusOK, views.TickerView(views.TickerPage{Layout: h.layout(c, "Ticker", "ticker"), Quotes: quotes}))
}

func (h *Handlers) showQuotePage(c *fiber.Ctx) error {
	symbol := strings.ToUpper(c.Params("symbol"))
	if !h.market.Has(symbol) {
		return fiber.NewError(fiber.StatusNotFound, "There is no symbol "+symbol+".")
	}
	page := views.QuotePage{Layout: h.layout(c, symbol, "ticker"), Quote: h.currentQuote(symbol)}
	return render(c, fiber.StatusOK, views.QuoteView(page))
}

// tickerStream is the ticker page's SSE stream of HTML fragments (?view=detail for the symbol page).
func (h *Handlers) tickerStream(c *fiber.Ctx) error {
	symbols, err := h.symbolFilter(c.Query("symbols"))
	if err != nil {
		return err
	}
	prefix := tickTable
	if c.Query("view") == "detail" {
		prefix = tickDetail
	}
	topics := tickTopics(prefix, symbols)
	return h.stream(c, topics, h.retainedTicks(topics))
}

// stockStream is the JSON stream for scripts. With Last-Event-ID it resumes from the market's recent ticks when
// it can, else it starts with the snapshot like any new stream.
func (h *Handlers) stockStream(c *fiber.Ctx) error {
	symbols, err := h.symbolFilter(c.Query("symbols"))
	if err != nil {
		return err
	}
	topics := tickTopics(tickJSON, symbols)
	first := h.retainedTicks(topics)
	if last, err := strconv.ParseUint(c.Get("Last-Event-ID"), 10, 64); err == nil {
		if missed, ok := h.market.Since(last); ok {
			first = first[:0]
			for _, q := range missed {
				if slices.Contains(symbols, q.Symbol) {
					first = append(first, &realtime.Message{Topic: tickJSON + q.Symbol, ID: int64(q.Seq), Data: jsonEvent(q)})
				}
			}
		}
	}
	return h.stream(c, topics, first)
}

// symbolFilter parses ?symbols=A,B (all symbols when empty); an unknown symbol is a 400.
func (h *Handlers) symbolFilter(list string) ([]string, error) {
	if strings.TrimSpace(list) == "" {
		return h.market.Symbols(), nil
	}
	var out []string
	for _, s := range strings.Split(list, ",") {
		s = strings.ToUpper(strings.TrimSpace(s))
		if !h.market.Has(s) {
			return nil, fiber.NewError(fiber.StatusBadRequest, "unknown symbol "+strconv.Quote(s))
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out, nil
}

func tickTopics(prefix string, symbols []string) []string {
	topics := make([]string, len(symbols))
	for i, s := range symbols {
		topics[i] = prefix + s
	}
	return topics
}

// stream serves an SSE stream of the given topics, starting with first (in id order). Everything it needs is copied before the
// body writer starts: that writer runs after this handler returns and must not touch c. The stream ends when the
// client is gone (a failed flush), on logout (the session topic's close), and at shutdown (every subscriber is
// closed).
func (h *Handlers) stream(c *fiber.Ctx, topics []string, first []*realtime.Message) error {
	u := viewer(c)
	session, _ := c.Locals("session").(sessionRef)
	topics = append(topics, kickTopic(u.ID))
	if session.Topic != "" {
		topics = append(topics, session.Topic)
	}
	if err := h.openConn(connTickStream, u.ID, session); err != nil {
		return streamRefused(err)
	}
	sub := h.hub.Subscribe(streamQueue, topics...)
	cutStuckWrites(sub, c.Context().Conn())
	slices.SortFunc(first, func(a, b *realtime.Message) int { return cmp.Compare(a.ID, b.ID) })
	streamHeaders(c)
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		defer h.closeConn(connTickStream, u.ID, session)
		defer h.hub.Unsubscribe(sub)
		writeStream(w, sub, first, h.beat)
	})
	return nil
}

// streamHeaders marks a response as an SSE stream that no cache or proxy (nginx) may buffer.
func streamHeaders(c *fiber.Ctx) {
	c.Set("Content-Type", "text/event-stream")
	c.Set("Cache-Control", "no-cache")
	c.Set("Connection", "keep-alive")
	c.Set("X-Accel-Buffering", "no")
}

// writeRetry tells EventSource how long to wait before it reconnects; every stream starts with it.
func writeRetry(w *bufio.Writer) {
	w.WriteString("retry: " + strconv.FormatInt(streamRetry.Milliseconds(), 10) + "\n\n")
}

// cutStuckWrites ends a stream whose client stopped reading when it is dropped as too slow or kicked (logout, a
// disabled account): its stuck write to conn fails at once instead of when TCP gives up. At shutdown (1012) the
// stream ends by itself, cleanly.
func cutStuckWrites(sub *realtime.Subscriber, conn net.Conn) {
	sub.OnClose(func(code int) {
		if code == realtime.CloseTryAgainLater || code == realtime.ClosePolicyViolation {
			_ = conn.SetWriteDeadline(time.Now())
		}
	})
}

// streamRefused is the HTTP answer to a stream that may not open: 429 over the user's cap, 503 while restarting.
func streamRefused(err error) error {
	var refused errConnRefused
	if errors.As(err, &refused) && refused.Code == realtime.ClosePolicyViolation {
		return fiber.NewError(fiber.StatusTooManyRequests, "Too many open connections.")
	}
	return fiber.NewError(fiber.StatusServiceUnavailable, "The server is restarting.")
}

// writeStream writes the first events, then each wave of queued ticks conflated to the newest per topic, and a
// heartbeat comment when idle, until the subscriber closes or a flush fails.
func writeStream(w *bufio.Writer, sub *realtime.Subscriber, first []*realtime.Message, beat time.Duration) {
	sent := make(map[string]int64) // topic → the newest event id written, so nothing older follows it
	var wave []*realtime.Message
	write := func(ms []*realtime.Message) error {
		for _, m := range ms {
			if m.ID <= sent[m.Topic] {
				continue
			}
			sent[m.Topic] = m.ID
			if _, err := w.Write(m.Data); err != nil {
				return err
			}
		}
		return w.Flush()
	}
	writeRetry(w)
	if write(first) != nil {
		return
	}
	heartbeat := time.NewTicker(beat)
	defer heartbeat.Stop()
	for {
		select {
		case m := <-sub.C():
			wave = conflate(wave[:0], m, sub.C())
			if write(wave) != nil {
				return
			}
		case <-heartbeat.C:
			if _, err := w.WriteString(": ping\n\n"); err != nil || w.Flush() != nil {
				return
			}
		case <-sub.Done():
			return
		}
	}
}

// conflate takes m and everything else already queued, keeping only the newest message of each topic, in id order.
func conflate(wave []*realtime.Message, m *realtime.Message, queue <-chan *realtime.Message) []*realtime.Message {
	wave = append(wave, m)
	for {
		select {
		case m := <-queue:
			i := slices.IndexFunc(wave, func(x *realtime.Message) bool { return x.Topic == m.Topic })
			if i < 0 {
				wave = append(wave, m)
			} else if m.ID > wave[i].ID {
				wave[i] = m
			}
		default:
			slices.SortFunc(wave, func(a, b *realtime.Message) int { return cmp.Compare(a.ID, b.ID) })
			return wave
		}
	}
}

// ingestPrices takes real prices from a feed: a JSON array of {symbol, price, timestamp} from an admin's API
// token. It is all or nothing: any bad entry refuses the whole body with 400 and a message naming it.
func (h *Handlers) ingestPrices(c *fiber.Ctx) error {
	u, err := h.bearerUser(c)
	if err != nil {
		return err
	}
	if !u.IsAdmin {
		return fiber.NewError(fiber.StatusForbidden, "Only an admin's token may post prices.")
	}
	if len(c.Body()) > maxIngestBody {
		return fiber.NewError(fiber.StatusBadRequest, "The body is over 1 MiB.")
	}
	var in []struct {
		Symbol    string   `json:"symbol"`
		Price     *float64 `json:"price"`
		Timestamp int64    `json:"timestamp"` // milliseconds since the epoch; 0 means now
	}
	dec := json.NewDecoder(bytes.NewReader(c.Body()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return fiber.NewError(fiber.StatusBadRequest, "The body must be a JSON array of {symbol, price, timestamp}: "+err.Error())
	}
	if dec.More() {
		return fiber.NewError(fiber.StatusBadRequest, "The body must hold one JSON array.")
	}
	add := c.Query("add") == "1"
	ticks := make([]market.Tick, len(in))
	for i, p := range in {
		sym := strings.ToUpper(strings.TrimSpace(p.Symbol))
		switch {
		case p.Price == nil:
			return fiber.NewError(fiber.StatusBadRequest, "entry "+strconv.Itoa(i)+": price is missing")
		case !market.ValidSymbol(sym):
			return fiber.NewError(fiber.StatusBadRequest, "entry "+strconv.Itoa(i)+": symbol "+strconv.Quote(p.Symbol)+" is not valid (1–12 of A–Z 0–9 . -)")
		case !h.market.Has(sym) && !add:
			return fiber.NewError(fiber.StatusBadRequest, "entry "+strconv.Itoa(i)+": unknown symbol "+sym+" (add ?add=1 to create it)")
		}
		at := time.Now()
		if p.Timestamp > 0 {
			at = time.UnixMilli(p.Timestamp)
		}
		ticks[i] = market.Tick{Symbol: sym, Price: *p.Price, Time: at}
	}
	for _, t := range ticks {
		if math.IsNaN(t.Price) || math.IsInf(t.Price, 0) || t.Price <= 0 {
			return fiber.NewError(fiber.StatusBadRequest, t.Symbol+": price must be a finite number above 0")
		}
	}
	for _, t := range ticks {
		if h.market.AddSymbol(t.Symbol) {
			h.log.Info("symbol added", slog.String("symbol", t.Symbol), slog.Int64("by", u.ID))
		}
	}
	quotes, err := h.market.ApplyAll(ticks)
	if err != nil {
		return fiber.NewError(fiber.StatusBadRequest, err.Error())
	}
	for _, q := range quotes {
		h.PublishQuote(q)
	}
	return c.JSON(fiber.Map{"applied": len(quotes)})
}

// bearerUser authenticates a request by its Authorization: Bearer API token (401 otherwise).
func (h *Handlers) bearerUser(c *fiber.Ctx) (*models.User, error) {
	token, ok := strings.CutPrefix(c.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		return nil, fiber.NewError(fiber.StatusUnauthorized, "An API token is required: Authorization: Bearer <token>.")
	}
	u, err := h.store.UserByToken(c.UserContext(), strings.TrimSpace(token))
	if errors.Is(err, models.ErrNotFound) || (err == nil && u.Disabled) {
		return nil, fiber.NewError(fiber.StatusUnauthorized, "That API token is not valid.")
	}
	if err != nil {
		return nil, err
	}
	return &u, nil
}

// requireStreamUser lets in a signed-in session or, for the JSON stream, a bearer API token.
func (h *Handlers) requireStreamUser(c *fiber.Ctx) error {
	if viewer(c) != nil {
		return c.Next()
	}
	if c.Get("Authorization") == "" {
		return fiber.NewError(fiber.StatusUnauthorized, "Sign in or send an API token.")
	}
	u, err := h.bearerUser(c)
	if err != nil {
		return err
	}
	c.Locals("viewer", u)
	return c.Next()
}
