package handlers

import (
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"switchboard/models"
	"switchboard/views"
)

// showTokensPage lists the tokens; right after one was created it also shows that token, once (it travels in
// the session from the POST, so a reload neither repeats it nor creates another).
func (h *Handlers) showTokensPage(c *fiber.Ctx) error {
	sess, err := h.sessions.Get(c)
	if err != nil {
		return err
	}
	created, _ := sess.Get(newTokenKey).(string)
	if created != "" {
		sess.Delete(newTokenKey)
		if err := sess.Save(); err != nil {
			return err
		}
	}
	return h.renderTokensPage(c, fiber.StatusOK, created, "")
}

const newTokenKey = "new_token"

// renderTokensPage lists the user's tokens, with a token just created (shown this once) or a form error.
func (h *Handlers) renderTokensPage(c *fiber.Ctx, status int, created, formError string) error {
	tokens, err := h.store.Tokens(c.UserContext(), viewer(c).ID)
	if err != nil {
		return err
	}
	page := views.TokensPage{Layout: h.layout(c, "API tokens", "settings"), New: created, Error: formError}
	for _, t := range tokens {
		page.Tokens = append(page.Tokens, views.Token{ID: t.ID, Name: t.Name, Hint: t.Hint, Created: t.CreatedAt, LastUsed: t.LastUsedAt})
	}
	c.Set("Cache-Control", "no-store") // the page may hold a new token
	return render(c, status, views.TokensView(page))
}

func (h *Handlers) createToken(c *fiber.Ctx) error {
	name := strings.TrimSpace(c.FormValue("name"))
	if name == "" || utf8.RuneCountInString(name) > 64 || strings.ContainsFunc(name, isControl) {
		return h.renderTokensPage(c, fiber.StatusUnprocessableEntity, "", "Token names are 1–64 characters.")
	}
	plain, t, err := h.store.CreateToken(c.UserContext(), viewer(c).ID, name)
	if err != nil {
		return err
	}
	h.log.Info("api token created", slog.Int64("user", viewer(c).ID), slog.Int64("token", t.ID))
	sess, err := h.sessions.Get(c)
	if err != nil {
		return err
	}
	sess.Set(newTokenKey, plain)
	if err := sess.Save(); err != nil {
		return err
	}
	return c.Redirect("/settings/tokens", fiber.StatusSeeOther)
}

func (h *Handlers) revokeToken(c *fiber.Ctx) error {
	id, err := strconv.ParseInt(c.Params("id"), 10, 64)
	if err != nil {
		return fiber.NewError(fiber.StatusNotFound, "There is no such token.")
	}
	err = h.store.RevokeToken(c.UserContext(), viewer(c).ID, id)
	if errors.Is(err, models.ErrNotFound) {
		return fiber.NewError(fiber.StatusNotFound, "There is no such token.")
	}
	if err != nil {
		return err
	}
	return c.Redirect("/settings/tokens", fiber.StatusSeeOther)
}
