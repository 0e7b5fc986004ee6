// Package handlers is Switchboard's web layer: the route table, pages, forms, the room WebSockets and the streams.
// It is the only package that imports Fiber; it wires views, models and realtime together.
package handlers

import (
	"cmp"
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/a-h/templ"
	"github.com/gofiber/contrib/websocket"
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/csrf"
	"github.com/gofiber/fiber/v2/middleware/filesystem"
	"github.com/gofiber/fiber/v2/middleware/limiter"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/gofiber/fiber/v2/middleware/session"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/time/rate"

	"switchboard/market"
	"switchboard/models"
	"switchboard/realtime"
	"switchboard/static"
	"switchboard/views"
)

const (
	sessionLifetime = 30 * 24 * time.Hour // a session lasts this long after its last use
	presenceLinger  = 5 * time.Second     // a reconnect within this long does not flap the online list
	peopleDebounce  = 200 * time.Millisecond
	loginWindow     = 15 * time.Minute // failed logins are counted over this window
	loginFailsUser  = 10               // per account
	loginFailsIP    = 30               // per client address
	readTimeout     = 30 * time.Second // reading one request (sockets and streams clear it once upgraded)
	idleTimeout     = 2 * time.Minute  // an idle keep-alive connection is closed after this
	bodyLimit       = 2 << 20          // the largest request body (POST /api/prices checks its own 1 MiB)
)

// Deps is everything the handlers need, built in main.
type Deps struct {
	Log            *slog.Logger
	Store          *models.Store
	Hub            *realtime.Hub
	Market         *market.Service
	Assets         views.Assets
	AllowedOrigins []string // extra origins allowed to open WebSockets
	SecureCookies  bool
	BcryptCost     int           // 0 means bcrypt.DefaultCost; tests lower it
	Heartbeat      time.Duration // the SSE heartbeat period; 0 means streamHeartbeat; tests shorten it
	PongWait       time.Duration // how long a silent WebSocket peer lives; 0 means pongWait; tests shorten it
	SessionCheck   time.Duration // how often live connections' sessions are re-checked; 0 means sessionCheck
	SendRate       rate.Limit    // messages per second per user; 0 means sendRate; load tests raise it
	SendBurst      int           // the burst on top; 0 means sendBurst
	MaxUserConns   int           // live sockets and streams per user; 0 means maxUserConns
	// BotAllowPrivate lets bots' webhooks reach loopback, private and link-local addresses (a bot on the same
	// machine or network; tests). Off, such targets are refused when the connection is made.
	BotAllowPrivate bool

	// NewPresence builds the tracker of who is online (nil: in this process only; scale-out: Redis leases).
	NewPresence func(linger time.Duration, onChange func(room int64)) PresenceTracker
	// SendLimiter limits sends per user (nil: in this process, at SendRate and SendBurst; scale-out: Redis).
	SendLimiter SendLimiter
}

// PresenceTracker is who is online in each room: realtime.Presence in one process, realtime.RedisPresence
// across instances.
type PresenceTracker interface {
	Connect(room, user int64)
	Disconnect(room, user int64)
	Online(room int64) []int64
	Close()
}

// SendLimiter is the per-user send limit: realtime.LocalRateLimiter, or realtime.RedisRateLimiter across
// instances.
type SendLimiter interface {
	Allow(key string) bool
}

var (
	_ PresenceTracker = (*realtime.Presence)(nil)
	_ PresenceTracker = (*realtime.RedisPresence)(nil)
	_ SendLimiter     = (*realtime.LocalRateLimiter)(nil)
	_ SendLimiter     = (*realtime.RedisRateLimiter)(nil)
)

// Handlers serves every route. Create it with New and mount it with Register.
type Handlers struct {
	log          *slog.Logger
	store        *models.Store
	hub          *realtime.Hub
	market       *market.Service
	assets       views.Assets
	origins      map[string]bool
	sessions     *session.Store
	cost         int
	secure       bool // cookies are marked Secure
	beat         time.Duration
	pongWait     time.Duration
	sessionCheck time.Duration
	sendRate     rate.Limit
	sendBurst    int
	maxUserConns int
	presence     PresenceTracker
	limiter      SendLimiter

	bots            *botDispatcher // calls bots' webhooks for the messages they are sent (bots.go)
	botAllowPrivate bool

	// sendMu makes "store, then publish" one step, so messages are published in id order. queued holds the
	// sends waiting for it, which the next holder stores as one group (send.go).
	sendMu  sync.Mutex
	queueMu sync.Mutex
	queued  []*pendingSend

	// peopleMu guards peopleDue: the rooms whose people list is scheduled to be pushed.
	peopleMu  sync.Mutex
	peopleDue map[int64]bool

	// tickMu guards ticks: the newest event of each tick topic, which starts every new stream.
	tickMu sync.Mutex
	ticks  map[string]*realtime.Message

	conns connLimits
	gaps  gapFiller
	marks readMarks

	metrics *metrics

	// writeBuffers lends the WebSocket library a write buffer for its rare control frames.
	writeBuffers sync.Pool
}

// New builds the handlers. The presence tracker is built here (from Deps.NewPresence) because it calls back into
// the handlers.
func New(d Deps) *Handlers {
	h := &Handlers{
		log:       d.Log,
		store:     d.Store,
		hub:       d.Hub,
		market:    d.Market,
		ticks:     make(map[string]*realtime.Message),
		assets:    d.Assets,
		origins:   make(map[string]bool),
		cost:      d.BcryptCost,
		secure:    d.SecureCookies,
		peopleDue: make(map[int64]bool),
	}
	if h.cost == 0 {
		h.cost = bcrypt.DefaultCost
	}
	h.beat = cmp.Or(d.Heartbeat, streamHeartbeat)
	h.pongWait = cmp.Or(d.PongWait, pongWait)
	h.sessionCheck = cmp.Or(d.SessionCheck, sessionCheck)
	h.gaps.rooms = make(map[int64]*roomGap)
	h.marks.pending = make(map[[2]int64]int64)
	h.conns.perUser = make(map[int64]int)
	h.conns.perKind = make(map[string]int)
	h.conns.sessions = make(map[string]*liveSession)
	h.sendRate, h.sendBurst = cmp.Or(d.SendRate, sendRate), cmp.Or(d.SendBurst, sendBurst)
	h.maxUserConns = cmp.Or(d.MaxUserConns, maxUserConns)
	for _, o := range d.AllowedOrigins {
		h.origins[o] = true
	}
	h.sessions = session.New(session.Config{
		Storage:        d.Store.Sessions(),
		Expiration:     sessionLifetime,
		KeyLookup:      "cookie:sb_session",
		CookiePath:     "/",
		CookieHTTPOnly: true,
		CookieSecure:   d.SecureCookies,
		CookieSameSite: fiber.CookieSameSiteLaxMode,
	})
	if d.NewPresence != nil {
		h.presence = d.NewPresence(presenceLinger, h.schedulePeople)
	} else {
		h.presence = realtime.NewPresence(presenceLinger, h.schedulePeople)
	}
	h.metrics = h.newMetrics()
	h.botAllowPrivate = d.BotAllowPrivate
	h.bots = newBotDispatcher(h, d.BotAllowPrivate)
	h.limiter = d.SendLimiter
	if h.limiter == nil {
		h.limiter = realtime.NewLocalRateLimiter(float64(h.sendRate), h.sendBurst)
	}
	return h
}

// NewApp builds the Fiber app with Switchboard's settings and every route registered.
func (h *Handlers) NewApp() *fiber.App {
	app := fiber.New(fiber.Config{
		ErrorHandler:          h.ErrorHandler,
		DisableStartupMessage: true,
		Immutable:             true, // strings from a request may outlive it (hub messages, goroutines)
		ReadTimeout:           readTimeout,
		IdleTimeout:           idleTimeout,
		BodyLimit:             bodyLimit,
	})
	h.Register(app)
	return app
}

// Register mounts every route: this is the whole URL table of Switchboard.
func (h *Handlers) Register(app *fiber.App) {
	app.Use(recover.New())
	app.Use(securityHeaders)
	app.Use("/static", filesystem.New(filesystem.Config{Root: http.FS(static.FS), MaxAge: 365 * 24 * 3600}))
	app.Use(csrf.New(csrf.Config{
		Next:           skipCSRF,
		Session:        h.sessions,
		KeyLookup:      "form:_csrf",
		Extractor:      csrfFromHeaderOrForm,
		CookieName:     "sb_csrf",
		CookieHTTPOnly: true,
		CookieSecure:   h.secure,
		CookieSameSite: fiber.CookieSameSiteLaxMode,
		Expiration:     sessionLifetime,
		ContextKey:     "csrf",
		ErrorHandler:   h.csrfFailed,
	}))
	app.Use(h.loadViewer)

	// Health and operations.
	app.Get("/healthz", h.health)
	app.Get("/readyz", h.ready)
	app.Get("/metrics", h.showMetrics)

	// Accounts.
	app.Get("/", h.home)
	app.Get("/signup", h.showSignupPage)
	app.Post("/signup", h.signup)
	app.Get("/login", h.showLoginPage)
	app.Post("/login", h.loginLimiter(loginFailsIP, ipKey), h.loginLimiter(loginFailsUser, usernameKey), h.login)
	app.Post("/logout", h.logout)

	// Rooms and messages.
	app.Get("/rooms", h.requirePage, h.showRoomsPage)
	app.Post("/rooms", h.requirePage, h.createRoom)
	app.Get("/rooms/:id", h.requirePage, h.showRoomPage)
	app.Post("/rooms/:id/messages", h.requirePage, h.postMessage)
	app.Get("/rooms/:id/messages", h.requirePage, h.showOlderMessages)
	app.Get("/rooms/:id/stream", h.requireSignedIn, h.roomStream)
	app.Post("/rooms/:id/members", h.requirePage, h.addMember)
	app.Get("/dm", h.requirePage, h.findDirectRoom)
	app.Get("/dm/:username", h.requirePage, h.openDirectRoom)

	// Ticker. The streams must stay clear of etag/cache middleware, which would read them to the end.
	app.Get("/ticker", h.requirePage, h.showTickerPage)
	app.Get("/ticker/stream", h.requireSignedIn, h.tickerStream)
	app.Get("/ticker/:symbol", h.requirePage, h.showQuotePage)
	app.Get("/api/stock-stream", h.requireStreamUser, h.stockStream)
	app.Post("/api/prices", h.ingestPrices)

	// Administration.
	app.Get("/admin", h.requirePage, h.requireAdmin, h.showAdminPage)
	app.Get("/admin/stream", h.requireSignedIn, h.requireAdmin, h.adminStream)
	app.Post("/admin/users/:id", h.requirePage, h.requireAdmin, h.updateUser)
	app.Get("/admin/bots", h.requirePage, h.requireAdmin, h.showBotsPage)
	app.Post("/admin/bots", h.requirePage, h.requireAdmin, h.createBot)
	app.Post("/admin/bots/:id/delete", h.requirePage, h.requireAdmin, h.deleteBot)

	// Settings.
	app.Get("/settings/tokens", h.requirePage, h.showTokensPage)
	app.Post("/settings/tokens", h.requirePage, h.createToken)
	app.Post("/settings/tokens/:id/revoke", h.requirePage, h.revokeToken)

	// JSON API for programs (bearer API tokens).
	h.registerAPI(app)

	// Sockets: checked (session, Origin, room access) before the upgrade.
	app.Get("/rooms/:id/ws", h.requireSocket, h.checkRoomSocket, websocket.New(h.roomSocket, socketConfig(h.log, &h.writeBuffers)))
	app.Get("/ws", h.requireSocket, websocket.New(h.userSocket, socketConfig(h.log, &h.writeBuffers)))

	// Anything else.
	app.Use(func(*fiber.Ctx) error { return fiber.NewError(fiber.StatusNotFound, "We couldn't find that page.") })
}

// Shutdown closes every live socket with 1012 (clients reconnect to the restarted server) and waits, until ctx is
// done, for their handlers to return.
func (h *Handlers) Shutdown(ctx context.Context) error {
	h.conns.mu.Lock()
	h.conns.closing = true
	h.conns.mu.Unlock()
	h.bots.stop() // no more webhook calls, nor replies posted
	h.hub.CloseAll(realtime.CloseServiceRestart)
	h.presence.Close()
	done := make(chan struct{})
	go func() { h.conns.all.Wait(); close(done) }()
	defer h.marks.flush(context.Background(), h.store, h.log) // the closed sockets' last read marks
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *Handlers) loginLimiter(max int, key func(*fiber.Ctx) string) fiber.Handler {
	return limiter.New(limiter.Config{
		Storage:                h.store.Sessions(), // in the database, so every instance counts the same failures
		Max:                    max,
		Expiration:             loginWindow,
		KeyGenerator:           key,
		SkipSuccessfulRequests: true,
		LimiterMiddleware:      limiter.SlidingWindow{},
		LimitReached:           h.loginThrottled,
	})
}

// render writes a full page or fragment with the given status.
func render(c *fiber.Ctx, status int, comp templ.Component) error {
	c.Status(status)
	c.Type("html", "utf-8")
	return comp.Render(c.UserContext(), c.Response().BodyWriter())
}

// isHTMX reports whether htmx made the request (it then wants a fragment).
func isHTMX(c *fiber.Ctx) bool {
	return c.Get("HX-Request") == "true"
}

// layout is the part of every page that depends on the request.
func (h *Handlers) layout(c *fiber.Ctx, title, nav string) views.Layout {
	l := views.Layout{Title: title, Assets: h.assets, Nav: nav}
	if token, ok := c.Locals("csrf").(string); ok {
		l.CSRF = token
	}
	if u := viewer(c); u != nil {
		l.Viewer = &views.Viewer{ID: u.ID, Name: u.Username, IsAdmin: u.IsAdmin}
	}
	return l
}
