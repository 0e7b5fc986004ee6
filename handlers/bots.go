package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
	"golang.org/x/time/rate"

	"switchboard/models"
	"switchboard/views"
)

// Bots. A bot is a user with a webhook. When a stored text message mentions a bot (@name as a word) or is sent
// in a direct room with one, the server POSTs it to the bot's webhook as JSON, and a JSON reply {"text": "…"}
// becomes the bot's message in the same room, through the one send path (h.send).
//
// The send path only offers each candidate message to a bounded queue (botDispatcher.notify): it never blocks
// and never waits for the network. One router goroutine picks the bots a message is for, from a short-lived
// cache of the bots, and queues one delivery per bot for a small pool of workers, which make the webhook calls
// (with a timeout, retries and backoff) and post the replies. A full queue drops the message and logs it.
//
// Webhooks are outbound requests to addresses an admin typed, made from inside the server's network, so the
// address the client actually connects to is checked at dial time (a net.Dialer Control function): loopback,
// private, link-local, shared (CGNAT), unspecified, multicast and reserved addresses are refused unless
// Deps.BotAllowPrivate is set. Checking the connected address, not a name resolved beforehand, means DNS
// rebinding cannot slip past it; redirects are not followed and no proxy is used, so no second hop escapes it.

const (
	botTimeout      = 7 * time.Second        // one webhook call: connect, send, and read the reply
	botAttempts     = 3                      // calls per message: the first and two retries
	botBackoff      = 500 * time.Millisecond // the wait before the first retry; it doubles for each further one
	botQueue        = 256                    // messages waiting for the router; deliveries waiting for a worker
	botWorkers      = 4                      // webhook calls in flight at once
	botReplyLimit   = 64 << 10               // the largest webhook reply read, in bytes
	botCacheTTL     = 2 * time.Second        // how long the router trusts its list of bots
	botPostTimeout  = 10 * time.Second       // storing and publishing one reply
	botMaxURL       = 2048                   // the longest webhook URL an admin may enter
	botDropLogEvery = 10 * time.Second       // a full queue logs at most this often (with the count of drops)
)

// botCandidate is a stored message that may be for a bot: it has an @ or is in a direct room.
type botCandidate struct {
	room models.Room
	msg  models.Message
}

// botDelivery is one message for one bot's webhook.
type botDelivery struct {
	bot  models.Bot
	room models.Room
	msg  models.Message
}

// botDispatcher delivers messages to bots' webhooks and posts their replies.
//
// Concurrency: notify runs on the send path (under h.sendMu) and only offers to the incoming channel. The
// router goroutine alone reads incoming and owns the cache (byID, byName, loaded); stale is set by the admin
// handlers when bots change here. Workers read deliveries. The channels are never closed: stop cancels ctx and
// waits for the goroutines, and a notify after that drops into a full queue.
type botDispatcher struct {
	h            *Handlers
	client       *http.Client
	transport    *http.Transport
	allowPrivate bool

	incoming   chan botCandidate
	deliveries chan botDelivery
	ctx        context.Context
	cancel     context.CancelFunc
	wg         sync.WaitGroup
	stopOnce   sync.Once

	dropped atomic.Uint64
	dropLog rate.Sometimes

	stale  atomic.Bool // the bots changed here: reload before routing the next message
	byID   map[int64]models.Bot
	byName map[string]models.Bot
	loaded time.Time
}

// newBotDispatcher starts the router and the workers; stop ends them.
func newBotDispatcher(h *Handlers, allowPrivate bool) *botDispatcher {
	d := &botDispatcher{
		h:            h,
		allowPrivate: allowPrivate,
		incoming:     make(chan botCandidate, botQueue),
		deliveries:   make(chan botDelivery, botQueue),
		dropLog:      rate.Sometimes{First: 1, Interval: botDropLogEvery},
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	dialer := &net.Dialer{Timeout: botTimeout, KeepAlive: 30 * time.Second, Control: d.checkDial}
	d.transport = &http.Transport{
		Proxy:                 nil, // never through a proxy: the dial check must see the webhook's own address
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   botTimeout,
		ResponseHeaderTimeout: botTimeout,
		MaxIdleConns:          16,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       90 * time.Second,
	}
	d.client = &http.Client{
		Transport: d.transport,
		// A redirect is not followed (it could point anywhere): the 3xx is the answer, and a failed call.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	d.wg.Add(1 + botWorkers)
	go d.route()
	for range botWorkers {
		go d.work()
	}
	return d
}

// stop ends the router and the workers (an in-flight call is cancelled) and waits for them.
func (d *botDispatcher) stop() {
	d.stopOnce.Do(func() {
		d.cancel()
		d.wg.Wait()
		d.transport.CloseIdleConnections()
	})
}

// invalidate makes the router reload the bots before it routes the next message.
func (d *botDispatcher) invalidate() { d.stale.Store(true) }

// notify offers a stored message to the bots. It is called on the send path after the message is published, so
// it never blocks: when the queue is full the message is dropped (and logged). Only text messages with an @ or
// in a direct room can be for a bot; the router decides.
func (d *botDispatcher) notify(room models.Room, m models.Message) {
	if m.Kind != models.MessageText || (room.Kind != models.RoomDirect && !strings.Contains(m.Text, "@")) {
		return
	}
	select {
	case d.incoming <- botCandidate{room: room, msg: m}:
	default:
		d.drop(0, room.ID, m.ID)
	}
}

// drop counts a message the bots will not get because a queue is full, and logs it now and then.
func (d *botDispatcher) drop(botID, roomID, msgID int64) {
	n := d.dropped.Add(1)
	d.dropLog.Do(func() {
		d.h.log.Warn("bot queue full: message dropped", slog.Int64("bot", botID), slog.Int64("room", roomID),
			slog.Int64("message", msgID), slog.Uint64("dropped_total", n))
	})
}

// route turns candidate messages into deliveries, one per bot the message is for.
func (d *botDispatcher) route() {
	defer d.wg.Done()
	for {
		select {
		case <-d.ctx.Done():
			return
		case c := <-d.incoming:
			for _, b := range d.targets(c) {
				select {
				case d.deliveries <- botDelivery{bot: b, room: c.room, msg: c.msg}:
				default:
					d.drop(b.UserID, c.room.ID, c.msg.ID)
				}
			}
		}
	}
}

// targets lists the bots a message is for: the other member of a direct room, and the bots it mentions. A
// message by a bot is for no bot, so bots never set each other off in a loop.
func (d *botDispatcher) targets(c botCandidate) []models.Bot {
	d.refresh()
	if _, isBot := d.byID[c.msg.UserID]; isBot || len(d.byID) == 0 {
		return nil
	}
	var out []models.Bot
	add := func(b models.Bot) {
		for _, o := range out {
			if o.UserID == b.UserID {
				return
			}
		}
		out = append(out, b)
	}
	if a, b, ok := c.room.DirectMembers(); ok {
		for _, id := range []int64{a, b} {
			if bot, found := d.byID[id]; found && id != c.msg.UserID {
				add(bot)
			}
		}
	}
	for _, name := range mentions(c.msg.Text) {
		if bot, ok := d.byName[name]; ok {
			add(bot)
		}
	}
	return out
}

// refresh reloads the bots when the cache is older than botCacheTTL or bots changed on this instance. On a
// failure it keeps what it had and tries again after botCacheTTL.
func (d *botDispatcher) refresh() {
	if !d.stale.Swap(false) && time.Since(d.loaded) < botCacheTTL {
		return
	}
	d.loaded = time.Now()
	ctx, cancel := context.WithTimeout(d.ctx, botTimeout)
	defer cancel()
	bots, err := d.h.store.Bots(ctx)
	if err != nil {
		d.h.log.Error("bots not loaded", slog.Any("error", err))
		return
	}
	d.byID = make(map[int64]models.Bot, len(bots))
	d.byName = make(map[string]models.Bot, len(bots))
	for _, b := range bots {
		d.byID[b.UserID] = b
		d.byName[b.Username] = b
	}
}

// mentions returns the lower-cased names mentioned in text: "@" then 3–32 of a–z, 0–9, _ and - (any case), as a
// word: not after a letter, digit, _, - or @ (so "ana@pricebot.com" mentions nobody), and not followed by
// another name character.
func mentions(text string) []string {
	var out []string
	for i := 0; i < len(text); i++ {
		if text[i] != '@' {
			continue
		}
		if prev, _ := utf8.DecodeLastRuneInString(text[:i]); i > 0 && (isNameRune(prev) || prev == '@' || unicode.IsLetter(prev) || unicode.IsDigit(prev)) {
			continue
		}
		j := i + 1
		for j < len(text) && j-i-1 <= 32 && isNameRune(rune(text[j])) {
			j++
		}
		if n := j - i - 1; n >= 3 && n <= 32 {
			out = append(out, strings.ToLower(text[i+1:j]))
		}
		i = j - 1
	}
	return out
}

func isNameRune(r rune) bool {
	return r < utf8.RuneSelf && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-')
}

// work makes webhook calls until the dispatcher stops.
func (d *botDispatcher) work() {
	defer d.wg.Done()
	for {
		select {
		case <-d.ctx.Done():
			return
		case j := <-d.deliveries:
			d.deliver(j)
		}
	}
}

// botEvent is what a webhook receives.
type botEvent struct {
	Event   string          `json:"event"` // "message"
	Bot     string          `json:"bot"`
	Room    botEventRoom    `json:"room"`
	Message botEventMessage `json:"message"`
}

type botEventRoom struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
	Kind string `json:"kind"`
}

type botEventMessage struct {
	ID        int64     `json:"id"`
	User      string    `json:"user"`
	Text      string    `json:"text"`
	CreatedAt time.Time `json:"created_at"`
}

// botReply is what a webhook may answer with (2xx). An empty body or text says nothing; Room, when set, must be
// the message's own room.
type botReply struct {
	Text string `json:"text"`
	Room int64  `json:"room"`
}

// deliver calls one bot's webhook for one message and posts its reply. Everything that goes wrong is logged
// with the bot, room and message ids, never the text.
func (d *botDispatcher) deliver(j botDelivery) {
	log := d.h.log.With(slog.Int64("bot", j.bot.UserID), slog.Int64("room", j.room.ID), slog.Int64("message", j.msg.ID))
	if j.room.Kind != models.RoomOpen {
		// A private room's messages go only to bots that are members (a direct room's peer always is).
		ctx, cancel := context.WithTimeout(d.ctx, botPostTimeout)
		_, err := d.h.store.Membership(ctx, j.room.ID, j.bot.UserID)
		cancel()
		if errors.Is(err, models.ErrNotFound) {
			log.Debug("bot mentioned in a room it is not in")
			return
		}
		if err != nil {
			log.Warn("bot webhook: membership", slog.Any("error", err))
			return
		}
	}
	body, err := json.Marshal(botEvent{
		Event:   "message",
		Bot:     j.bot.Username,
		Room:    botEventRoom{ID: j.room.ID, Name: j.room.Name, Kind: string(j.room.Kind)},
		Message: botEventMessage{ID: j.msg.ID, User: j.msg.Author, Text: j.msg.Text, CreatedAt: j.msg.CreatedAt.UTC()},
	})
	if err != nil {
		log.Error("bot webhook: event does not encode", slog.Any("error", err))
		return
	}
	reply, ok := d.call(j.bot.WebhookURL, body, log)
	if !ok || len(bytes.TrimSpace(reply)) == 0 {
		return
	}
	var r botReply
	if err := json.Unmarshal(reply, &r); err != nil {
		log.Warn(`bot webhook: the reply is not JSON like {"text":"…"}`, slog.Int("bytes", len(reply)))
		return
	}
	if strings.TrimSpace(r.Text) == "" {
		return
	}
	if r.Room != 0 && r.Room != j.room.ID {
		log.Warn("bot webhook: a reply to another room refused", slog.Int64("to_room", r.Room))
		return
	}
	d.postReply(j, r.Text, log)
}

// call POSTs body to the webhook, up to botAttempts times: a network error or a 5xx is retried after a backoff
// that doubles (botBackoff, then twice that); a 4xx, a redirect, a refused address or a bad URL is not. It
// returns the body of a 2xx answer.
func (d *botDispatcher) call(webhook string, body []byte, log *slog.Logger) ([]byte, bool) {
	u, err := url.Parse(webhook)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		log.Warn("bot webhook: not an http(s) URL; not called")
		return nil, false
	}
	wait := botBackoff
	for attempt := 1; ; attempt++ {
		status, reply, err := d.callOnce(u, body)
		var refused *refusedTarget
		switch {
		case err == nil && status >= 200 && status < 300:
			return reply, true
		case errors.As(err, &refused):
			log.Warn("bot webhook: target address refused", slog.String("address", refused.addr.String()),
				slog.String("reason", refused.reason), slog.Int("attempt", attempt))
			return nil, false
		case errors.Is(err, errReplyTooLarge):
			log.Warn("bot webhook: the reply is too large", slog.Int("status", status), slog.Int("limit", botReplyLimit))
			return nil, false
		case d.ctx.Err() != nil:
			return nil, false // shutting down
		case attempt >= botAttempts || (err == nil && status < 500):
			log.Warn("bot webhook failed", slog.Int("status", status), slog.Int("attempt", attempt), slog.Any("error", err))
			return nil, false
		}
		log.Info("bot webhook failed; retrying", slog.Int("status", status), slog.Int("attempt", attempt),
			slog.Duration("backoff", wait), slog.Any("error", err))
		select {
		case <-time.After(wait):
		case <-d.ctx.Done():
			return nil, false
		}
		wait *= 2
	}
}

var errReplyTooLarge = errors.New("webhook reply too large")

// callOnce makes one call. Its error never holds the URL (which may carry a secret): only what went wrong.
func (d *botDispatcher) callOnce(u *url.URL, body []byte) (status int, reply []byte, err error) {
	ctx, cancel := context.WithTimeout(d.ctx, botTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return 0, nil, errors.New("bad request")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Switchboard-Bots/1")
	resp, err := d.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, botReplyLimit)) // lets the connection be reused
		return resp.StatusCode, nil, nil
	}
	reply, err = io.ReadAll(io.LimitReader(resp.Body, botReplyLimit+1))
	switch {
	case err != nil:
		return resp.StatusCode, nil, fmt.Errorf("reading the reply: %w", err)
	case len(reply) > botReplyLimit:
		return resp.StatusCode, nil, errReplyTooLarge
	}
	return resp.StatusCode, reply, nil
}

// postReply makes text the bot's message in the delivery's room, through the one send path. The bot joins an
// open room first, as a person opening it would; elsewhere it must be a member already. Its client id (bot and
// message) makes a second reply of the bot to the same message impossible.
func (d *botDispatcher) postReply(j botDelivery, text string, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(d.ctx, botPostTimeout)
	defer cancel()
	u, err := d.h.store.UserByID(ctx, j.bot.UserID)
	if err != nil {
		log.Warn("bot reply: the bot's user", slog.Any("error", err))
		return
	}
	if u.Disabled {
		return // deleted since the message was routed
	}
	room, err := d.h.enterRoom(ctx, &u, strconv.FormatInt(j.room.ID, 10), true)
	if err == nil {
		err = d.h.mayPost(ctx, &u, room)
	}
	if err == nil {
		// Client ids are unique per room: the bot's id keeps two bots' replies to one message apart.
		clientID := "bot-" + strconv.FormatInt(u.ID, 10) + "-reply-" + strconv.FormatInt(j.msg.ID, 10)
		var m models.Message
		if m, err = d.h.send(ctx, &u, room, text, clientID); err == nil && m.UserID != u.ID {
			err = errClientIDTaken
		}
	}
	if err != nil {
		var fe *fiber.Error
		if errors.As(err, &fe) {
			log.Warn("bot reply refused", slog.Int("status", fe.Code), slog.String("reason", fe.Message))
		} else {
			log.Error("bot reply not stored", slog.Any("error", err))
		}
	}
}

// refusedTarget is the dial check's error: the webhook's address is not one the server may connect to.
type refusedTarget struct {
	addr   netip.Addr
	reason string
}

func (e *refusedTarget) Error() string {
	return fmt.Sprintf("bot webhook address %s is %s (start the server with -bot-private-ok to allow it)", e.addr, e.reason)
}

// checkDial is the dialer's Control function: it runs for every address a webhook connection is about to be
// made to, after name resolution, so the check sees the very address that is connected to.
func (d *botDispatcher) checkDial(_, address string, _ syscall.RawConn) error {
	if d.allowPrivate {
		return nil
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &refusedTarget{reason: "not an IP address"}
	}
	if reason := ForbiddenWebhookAddr(ap.Addr()); reason != "" {
		return &refusedTarget{addr: ap.Addr(), reason: reason}
	}
	return nil
}

var (
	cgnatPrefix    = netip.MustParsePrefix("100.64.0.0/10")  // shared address space (RFC 6598)
	thisNetPrefix  = netip.MustParsePrefix("0.0.0.0/8")      // "this network"
	reservedPrefix = netip.MustParsePrefix("240.0.0.0/4")    // reserved, and the broadcast address
	benchPrefix    = netip.MustParsePrefix("198.18.0.0/15")  // benchmarking (RFC 2544)
	ietfPrefix     = netip.MustParsePrefix("192.0.0.0/24")   // IETF protocol assignments
	siteLocal      = netip.MustParsePrefix("fec0::/10")      // deprecated IPv6 site-local
	nat64Prefix    = netip.MustParsePrefix("64:ff9b::/96")   // NAT64: the IPv4 address is in the last 4 bytes
	nat64Local     = netip.MustParsePrefix("64:ff9b:1::/48") // local-use NAT64 (RFC 8215)
)

// ForbiddenWebhookAddr says why a bot's webhook may not connect to a (for example "loopback" or "private"), or
// returns "" for an address on the public internet. Unless the server allows private targets, webhook
// connections to the refused addresses fail before they are made.
func ForbiddenWebhookAddr(a netip.Addr) string {
	a = a.Unmap() // ::ffff:10.0.0.1 is 10.0.0.1
	if a.Is6() && nat64Prefix.Contains(a) {
		b := a.As16()
		if r := ForbiddenWebhookAddr(netip.AddrFrom4([4]byte(b[12:]))); r != "" {
			return r + " (through NAT64)"
		}
	}
	switch {
	case !a.IsValid():
		return "not an IP address"
	case a.IsUnspecified(), thisNetPrefix.Contains(a):
		return "unspecified"
	case a.IsLoopback():
		return "loopback"
	case a.IsPrivate(), siteLocal.Contains(a), nat64Local.Contains(a):
		return "private"
	case a.IsLinkLocalUnicast():
		return "link-local"
	case a.IsMulticast(), a.IsLinkLocalMulticast(), a.IsInterfaceLocalMulticast():
		return "multicast"
	case cgnatPrefix.Contains(a):
		return "shared (CGNAT)"
	case reservedPrefix.Contains(a), benchPrefix.Contains(a), ietfPrefix.Contains(a):
		return "reserved"
	}
	return ""
}

// checkWebhookURL returns the admin form's error for a webhook URL, or "": an absolute http(s) URL with a host,
// and, unless private targets are allowed, not a literal private address or localhost. (Names are checked again,
// and for good, when a connection is made.)
func (h *Handlers) checkWebhookURL(raw string) string {
	u, err := url.Parse(raw)
	switch {
	case raw == "" || len(raw) > botMaxURL || err != nil:
		return fmt.Sprintf("Enter the webhook's URL (at most %d characters).", botMaxURL)
	case u.Scheme != "http" && u.Scheme != "https":
		return "The webhook URL must start with http:// or https://."
	case u.Hostname() == "" || u.Opaque != "":
		return "The webhook URL needs a host, like https://bots.example.com/hook."
	case h.botAllowPrivate:
		return ""
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return "The webhook can't be on this machine (this server refuses private-network targets)."
	}
	if a, err := netip.ParseAddr(host); err == nil && ForbiddenWebhookAddr(a) != "" {
		return "The webhook's address is " + ForbiddenWebhookAddr(a) + ": this server refuses private-network targets."
	}
	return ""
}

// showBotsPage lists the bots with a form to create one: the whole page, or for htmx (the admin page loads it
// into its bots section) just the section.
func (h *Handlers) showBotsPage(c *fiber.Ctx) error {
	return h.renderBotsPage(c, fiber.StatusOK, views.AdminBotsPage{})
}

func (h *Handlers) renderBotsPage(c *fiber.Ctx, status int, page views.AdminBotsPage) error {
	bots, err := h.store.Bots(c.UserContext())
	if err != nil {
		return err
	}
	page.Layout = h.layout(c, "Bots", "admin")
	for _, b := range bots {
		page.Bots = append(page.Bots, views.AdminBot{ID: b.UserID, Name: b.Username, WebhookURL: b.WebhookURL, Created: b.CreatedAt})
	}
	c.Set("Cache-Control", "no-store")
	if isHTMX(c) && status == fiber.StatusOK {
		page.Embedded = true
		return render(c, status, views.AdminBots(page))
	}
	return render(c, status, views.AdminBotsView(page))
}

// createBot makes a bot from the admin form (name, webhook_url).
func (h *Handlers) createBot(c *fiber.Ctx) error {
	ctx, me := c.UserContext(), viewer(c)
	name := strings.ToLower(strings.TrimSpace(c.FormValue("name")))
	webhook := strings.TrimSpace(c.FormValue("webhook_url"))
	page := views.AdminBotsPage{NewName: name, NewURL: webhook}
	if msg := h.checkWebhookURL(webhook); msg != "" {
		page.Error = msg
		return h.renderBotsPage(c, fiber.StatusUnprocessableEntity, page)
	}
	u, _, err := h.store.CreateBot(ctx, name, webhook, me.ID)
	switch {
	case errors.Is(err, models.ErrInvalidUsername):
		page.Error = "Bot names are 3–32 characters: letters, digits, _ and -."
		return h.renderBotsPage(c, fiber.StatusUnprocessableEntity, page)
	case errors.Is(err, models.ErrUsernameTaken):
		page.Error = "That name is taken. Try another."
		return h.renderBotsPage(c, fiber.StatusConflict, page)
	case err != nil:
		return err
	}
	h.bots.invalidate()
	h.log.Info("bot created", slog.Int64("bot", u.ID), slog.Int64("by", me.ID))
	return c.Redirect(botsReturn(c), fiber.StatusSeeOther)
}

// deleteBot removes a bot: its row goes, its user is disabled (its messages stay), its connections close.
func (h *Handlers) deleteBot(c *fiber.Ctx) error {
	ctx, me := c.UserContext(), viewer(c)
	id, err := strconv.ParseInt(c.Params("id"), 10, 64)
	if err != nil {
		return fiber.NewError(fiber.StatusNotFound, "There is no such bot.")
	}
	err = h.store.DeleteBot(ctx, id)
	if errors.Is(err, models.ErrNotFound) {
		return fiber.NewError(fiber.StatusNotFound, "There is no such bot.")
	}
	if err != nil {
		return err
	}
	h.bots.invalidate()
	h.kick(ctx, kickTopic(id))
	h.log.Info("bot deleted", slog.Int64("bot", id), slog.Int64("by", me.ID))
	return c.Redirect(botsReturn(c), fiber.StatusSeeOther)
}

// botsReturn is where a bots form goes back to: the admin page it was embedded in, or the bots page.
func botsReturn(c *fiber.Ctx) string {
	if c.FormValue("return") == "/admin" {
		return "/admin"
	}
	return "/admin/bots"
}
