package handlers

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"log/slog"
	"runtime"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"golang.org/x/crypto/bcrypt"

	"switchboard/models"
	"switchboard/views"
)

const (
	adminStatsEvery  = 2 * time.Second // how often the admin page's figures are pushed
	resetPasswordKey = "reset_password"
	resetForKey      = "reset_for"
)

// requireAdmin lets only admins through (403 otherwise).
func (h *Handlers) requireAdmin(c *fiber.Ctx) error {
	if u := viewer(c); u == nil || !u.IsAdmin {
		return fiber.NewError(fiber.StatusForbidden, "This page is for admins.")
	}
	return c.Next()
}

func (h *Handlers) showAdminPage(c *fiber.Ctx) error {
	ctx, me := c.UserContext(), viewer(c)
	stats, err := h.adminStats(ctx)
	if err != nil {
		return err
	}
	users, err := h.store.Users(ctx)
	if err != nil {
		return err
	}
	page := views.AdminPage{Layout: h.layout(c, "Admin", "admin"), Stats: stats}
	for _, u := range users {
		page.Users = append(page.Users, views.AdminUser{ID: u.ID, Name: u.Username, IsAdmin: u.IsAdmin, Disabled: u.Disabled, Created: u.CreatedAt, Self: u.ID == me.ID})
	}
	// A password just reset is shown once: it travels in the session from the POST.
	sess, err := h.sessions.Get(c)
	if err != nil {
		return err
	}
	if pw, _ := sess.Get(resetPasswordKey).(string); pw != "" {
		page.NewPassword = pw
		page.ResetFor, _ = sess.Get(resetForKey).(string)
		sess.Delete(resetPasswordKey)
		sess.Delete(resetForKey)
		if err := sess.Save(); err != nil {
			return err
		}
	}
	c.Set("Cache-Control", "no-store")
	return render(c, fiber.StatusOK, views.AdminView(page))
}

// adminStats gathers this instance's live figures.
func (h *Handlers) adminStats(ctx context.Context) (views.AdminStats, error) {
	hub := h.hub.Stats()
	s := views.AdminStats{Connections: map[string]int{}, Events: hub.Messages, Deliveries: hub.Queued, Dropped: hub.Dropped,
		Goroutines: runtime.NumGoroutine()}
	for _, kind := range connKinds {
		s.Connections[kind] = h.connCount(kind)
	}
	var err error
	if s.Users, s.Rooms, err = h.store.Counts(ctx); err != nil {
		return s, err
	}
	if s.DBBytes, err = h.store.Size(ctx); err != nil {
		return s, err
	}
	rooms, err := h.store.AllRooms(ctx)
	if err != nil {
		return s, err
	}
	for _, r := range rooms {
		if n := h.hub.Subscribers(roomTopic(r.ID)); n > 0 {
			s.RoomConns = append(s.RoomConns, views.RoomConns{Name: r.Name, Kind: string(r.Kind), Conns: n})
		}
	}
	return s, nil
}

// adminStream pushes the admin page's figures every adminStatsEvery, until the client goes, the admin signs out
// or the server shuts down.
func (h *Handlers) adminStream(c *fiber.Ctx) error {
	u := viewer(c)
	session, _ := c.Locals("session").(sessionRef)
	if err := h.openConn(connAdminStream, u.ID, session); err != nil {
		return streamRefused(err)
	}
	sub := h.hub.Subscribe(1, session.Topic, kickTopic(u.ID)) // only to learn of a logout, a kick or shutdown
	cutStuckWrites(sub, c.Context().Conn())
	streamHeaders(c)
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		defer h.closeConn(connAdminStream, u.ID, session)
		defer h.hub.Unsubscribe(sub)
		t := time.NewTicker(adminStatsEvery)
		defer t.Stop()
		for {
			ctx := context.Background()
			stats, err := h.adminStats(ctx)
			if err != nil {
				h.log.Warn("admin stats", slog.Any("error", err))
				return
			}
			w.Write(sseEvent("stats", 0, h.fragment(ctx, views.AdminStatsView(stats))))
			if w.Flush() != nil {
				return
			}
			select {
			case <-t.C:
			case <-sub.Done():
				return
			}
		}
	})
	return nil
}

// updateUser applies one admin action to an account: disable or enable it, make or remove an admin, or reset
// its password (a new random one, shown once). Disabling or resetting closes the user's live connections, and
// their sessions no longer sign them in.
func (h *Handlers) updateUser(c *fiber.Ctx) error {
	ctx, me := c.UserContext(), viewer(c)
	id, err := strconv.ParseInt(c.Params("id"), 10, 64)
	if err != nil {
		return fiber.NewError(fiber.StatusNotFound, "There is no such user.")
	}
	u, err := h.store.UserByID(ctx, id)
	if errors.Is(err, models.ErrNotFound) {
		return fiber.NewError(fiber.StatusNotFound, "There is no such user.")
	}
	if err != nil {
		return err
	}
	isAdmin, disabled := u.IsAdmin, u.Disabled
	var hash []byte
	var password string
	switch action := c.FormValue("action"); action {
	case "disable", "enable", "make-admin", "remove-admin":
		if u.ID == me.ID {
			return fiber.NewError(fiber.StatusBadRequest, "You can't change your own account this way.")
		}
		disabled = action == "disable" || (disabled && action != "enable")
		isAdmin = action == "make-admin" || (isAdmin && action != "remove-admin")
	case "reset-password":
		if _, err := h.store.BotByUserID(ctx, u.ID); err == nil {
			return fiber.NewError(fiber.StatusBadRequest, "Bots have no password: nobody signs in as a bot.")
		} else if !errors.Is(err, models.ErrNotFound) {
			return err
		}
		raw := make([]byte, 12)
		if _, err := rand.Read(raw); err != nil {
			return err
		}
		password = base64.RawURLEncoding.EncodeToString(raw)
		if hash, err = bcrypt.GenerateFromPassword([]byte(password), h.cost); err != nil {
			return err
		}
	default:
		return fiber.NewError(fiber.StatusBadRequest, "Unknown action.")
	}
	if err := h.store.UpdateUser(ctx, u.ID, isAdmin, disabled, hash); err != nil {
		return err
	}
	h.log.Info("account updated by an admin", slog.Int64("user", u.ID), slog.Int64("by", me.ID),
		slog.Bool("admin", isAdmin), slog.Bool("disabled", disabled), slog.Bool("password_reset", hash != nil))
	if disabled || hash != nil {
		h.kick(ctx, kickTopic(u.ID))
	}
	if password != "" {
		sess, err := h.sessions.Get(c)
		if err != nil {
			return err
		}
		sess.Set(resetPasswordKey, password)
		sess.Set(resetForKey, u.Username)
		if err := sess.Save(); err != nil {
			return err
		}
	}
	return c.Redirect("/admin", fiber.StatusSeeOther)
}

// kickTopic reaches every live connection of one user, to close them (an admin disabled the account or reset its
// password). It carries only control messages.
func kickTopic(userID int64) string { return "kick:" + strconv.FormatInt(userID, 10) }
