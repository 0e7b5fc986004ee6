package handlers

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"regexp"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/csrf"
	"golang.org/x/crypto/bcrypt"

	"switchboard/models"
	"switchboard/views"
)

const (
	minPassword = 8
	maxPassword = 72 // bcrypt's limit, in bytes
)

var usernamePattern = regexp.MustCompile(`^[a-z0-9_-]{3,32}$`)

// dummyHash is compared against when a login names no account, so both cases cost one bcrypt comparison.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("switchboard-no-such-user"), bcrypt.DefaultCost)

// securityHeaders sets the headers every response carries: only our own scripts run, and no one may frame us.
func securityHeaders(c *fiber.Ctx) error {
	c.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'")
	c.Set("X-Content-Type-Options", "nosniff")
	c.Set("X-Frame-Options", "DENY")
	c.Set("Referrer-Policy", "same-origin")
	return c.Next()
}

// skipCSRF leaves the token check (and the session write it costs) off requests that carry no form: upgrades,
// streams, static files, health probes and metrics, and /api/, whose writes authenticate by bearer token only (never by cookie).
func skipCSRF(c *fiber.Ctx) bool {
	// A visitor without a session needs a token only on the pages whose forms they can use; elsewhere (a 404, a
	// redirect) the token would cost a session row per request.
	if c.Method() == fiber.MethodGet && c.Cookies("sb_session") == "" && c.Path() != "/login" && c.Path() != "/signup" {
		return true
	}
	return strings.HasPrefix(c.Path(), "/static/") || strings.HasPrefix(c.Path(), "/api/") ||
		strings.HasSuffix(c.Path(), "/stream") || c.Path() == "/healthz" || c.Path() == "/readyz" ||
		c.Path() == "/metrics" || c.Get("Upgrade") != ""
}

// csrfFromHeaderOrForm takes the token from htmx's header or from the form's hidden field.
func csrfFromHeaderOrForm(c *fiber.Ctx) (string, error) {
	if token := c.Get("X-Csrf-Token"); token != "" {
		return token, nil
	}
	return csrf.CsrfFromForm("_csrf")(c)
}

func (h *Handlers) csrfFailed(c *fiber.Ctx, err error) error {
	h.log.Info("csrf refused", slog.String("path", c.Path()), slog.String("ip", c.IP()), slog.String("reason", err.Error()))
	return fiber.NewError(fiber.StatusForbidden, "This form has expired or came from another site. Reload the page and try again.")
}

// loadViewer puts the signed-in user (if any) and the session id into the request's locals.
func (h *Handlers) loadViewer(c *fiber.Ctx) error {
	sess, err := h.sessions.Get(c)
	if err != nil {
		return err
	}
	if sess.Fresh() {
		return c.Next()
	}
	uid, ok := sess.Get("uid").(int64)
	if !ok {
		return c.Next()
	}
	u, err := h.store.UserByID(c.UserContext(), uid)
	if errors.Is(err, models.ErrNotFound) {
		return c.Next()
	}
	if err != nil {
		return err
	}
	// A disabled account, or a session from before the password was reset, signs no one in.
	if mark, _ := sess.Get("pw").(string); u.Disabled || mark != passwordMark(u.PasswordHash) {
		return c.Next()
	}
	c.Locals("viewer", &u)
	c.Locals("session", sessionRef{ID: sess.ID(), Topic: sessionTopic(sess.ID())})
	return c.Next()
}

// viewer is the signed-in user of the request, or nil.
func viewer(c *fiber.Ctx) *models.User {
	u, _ := c.Locals("viewer").(*models.User)
	return u
}

// requirePage sends visitors who are not signed in to the login page.
func (h *Handlers) requirePage(c *fiber.Ctx) error {
	if viewer(c) == nil {
		if isHTMX(c) {
			c.Set("HX-Redirect", "/login")
			return fiber.NewError(fiber.StatusUnauthorized, "Please sign in again.")
		}
		return c.Redirect("/login", fiber.StatusSeeOther)
	}
	return c.Next()
}

// requireSignedIn refuses requests without a session with 401 (streams and fragments, which cannot follow a
// redirect to a page).
func (h *Handlers) requireSignedIn(c *fiber.Ctx) error {
	if viewer(c) == nil {
		return fiber.NewError(fiber.StatusUnauthorized, "Sign in first.")
	}
	return c.Next()
}

// sessionTopic is the realtime topic that reaches every socket of one session (to close them at logout). The id is
// hashed so it never appears in topic names.
func sessionTopic(sessionID string) string {
	sum := sha256.Sum256([]byte(sessionID))
	return "session:" + hex.EncodeToString(sum[:12])
}

func (h *Handlers) home(c *fiber.Ctx) error {
	if viewer(c) != nil {
		return c.Redirect("/rooms", fiber.StatusSeeOther)
	}
	return c.Redirect("/login", fiber.StatusSeeOther)
}

func (h *Handlers) showSignupPage(c *fiber.Ctx) error {
	return render(c, fiber.StatusOK, views.AuthView(views.AuthPage{Layout: h.layout(c, "Sign up", ""), Signup: true}))
}

func (h *Handlers) showLoginPage(c *fiber.Ctx) error {
	return render(c, fiber.StatusOK, views.AuthView(views.AuthPage{Layout: h.layout(c, "Sign in", "")}))
}

func (h *Handlers) signup(c *fiber.Ctx) error {
	username := strings.ToLower(strings.TrimSpace(c.FormValue("username")))
	password := c.FormValue("password")
	page := views.AuthPage{Layout: h.layout(c, "Sign up", ""), Signup: true, Username: username}
	if msg := validateAccount(username, password); msg != "" {
		page.Error = msg
		return render(c, fiber.StatusUnprocessableEntity, views.AuthView(page))
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), h.cost)
	if err != nil {
		return err
	}
	u, err := h.store.CreateUser(c.UserContext(), username, hash)
	if errors.Is(err, models.ErrUsernameTaken) {
		page.Error = "That username is taken. Try another."
		return render(c, fiber.StatusConflict, views.AuthView(page))
	}
	if err != nil {
		return err
	}
	h.log.Info("account created", slog.Int64("user", u.ID), slog.Bool("admin", u.IsAdmin))
	return h.startSession(c, u)
}

// validateAccount returns the form error for a username and password, or "".
func validateAccount(username, password string) string {
	switch {
	case !usernamePattern.MatchString(username):
		return "Usernames are 3–32 characters: letters, digits, _ and -."
	case len(password) < minPassword:
		return "Passwords need at least 8 characters."
	case len(password) > maxPassword:
		return "Passwords can be at most 72 bytes long."
	}
	return ""
}

func (h *Handlers) login(c *fiber.Ctx) error {
	username := strings.ToLower(strings.TrimSpace(c.FormValue("username")))
	password := c.FormValue("password")
	u, err := h.store.UserByName(c.UserContext(), username)
	if err != nil && !errors.Is(err, models.ErrNotFound) {
		return err
	}
	hash := dummyHash
	if err == nil {
		hash = u.PasswordHash
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil || err != nil {
		h.log.Info("login failed", slog.String("ip", c.IP()))
		page := views.AuthPage{Layout: h.layout(c, "Sign in", ""), Username: username, Error: "Wrong username or password."}
		return render(c, fiber.StatusUnauthorized, views.AuthView(page))
	}
	if u.Disabled {
		page := views.AuthPage{Layout: h.layout(c, "Sign in", ""), Username: username, Error: "This account is disabled. Ask an admin."}
		return render(c, fiber.StatusForbidden, views.AuthView(page))
	}
	return h.startSession(c, u)
}

// startSession signs u in under a new session id (the old one is deleted: no session fixation).
func (h *Handlers) startSession(c *fiber.Ctx, u models.User) error {
	sess, err := h.sessions.Get(c)
	if err != nil {
		return err
	}
	if err := sess.Regenerate(); err != nil {
		return err
	}
	sess.Set("uid", u.ID)
	sess.Set("pw", passwordMark(u.PasswordHash))
	if err := sess.Save(); err != nil {
		return err
	}
	return c.Redirect("/rooms", fiber.StatusSeeOther)
}

// logout ends the session and closes its live sockets.
func (h *Handlers) logout(c *fiber.Ctx) error {
	sess, err := h.sessions.Get(c)
	if err != nil {
		return err
	}
	topic := sessionTopic(sess.ID())
	if err := sess.Destroy(); err != nil {
		return err
	}
	h.kick(c.UserContext(), topic)
	return c.Redirect("/login", fiber.StatusSeeOther)
}

// passwordMark is a short fingerprint of a password hash kept in the session: a reset changes it, which ends the
// sessions signed in with the old password.
func passwordMark(hash []byte) string {
	sum := sha256.Sum256(hash)
	return hex.EncodeToString(sum[:8])
}

func ipKey(c *fiber.Ctx) string { return "login-ip:" + c.IP() }

func usernameKey(c *fiber.Ctx) string {
	return "login-user:" + strings.ToLower(strings.TrimSpace(c.FormValue("username")))
}

func (h *Handlers) loginThrottled(c *fiber.Ctx) error {
	h.log.Warn("login throttled", slog.String("ip", c.IP()))
	page := views.AuthPage{Layout: h.layout(c, "Sign in", ""), Username: c.FormValue("username"),
		Error: "Too many failed attempts. Wait a few minutes and try again."}
	return render(c, fiber.StatusTooManyRequests, views.AuthView(page))
}

// health answers 200 "ok" when the database answers, 200 "degraded" when it does but the broker (Redis) is
// down (the instance still serves its own clients), and 503 when the database does not.
func (h *Handlers) health(c *fiber.Ctx) error {
	if err := h.store.Ping(c.UserContext()); err != nil {
		h.log.Error("health check failed", slog.Any("error", err))
		return c.Status(fiber.StatusServiceUnavailable).SendString("database unavailable")
	}
	if b, ok := h.hub.Broker().(interface{ Healthy() bool }); ok && !b.Healthy() {
		return c.SendString("degraded")
	}
	return c.SendString("ok")
}
