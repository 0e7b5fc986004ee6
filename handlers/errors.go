package handlers

import (
	"errors"
	"log/slog"
	"strings"

	"github.com/gofiber/fiber/v2"

	"switchboard/models"
	"switchboard/views"
)

// ErrorHandler is Fiber's central error handler: it maps an error to a status, logs server faults, and answers with
// a friendly page, or a fragment for htmx.
func (h *Handlers) ErrorHandler(c *fiber.Ctx, err error) error {
	status, message := fiber.StatusInternalServerError, "Something went wrong on our side. Please try again."
	var fe *fiber.Error
	switch {
	case errors.As(err, &fe):
		status, message = fe.Code, fe.Message
	case errors.Is(err, models.ErrNotFound):
		status, message = fiber.StatusNotFound, "We couldn't find that."
	}
	if status >= fiber.StatusInternalServerError {
		h.log.Error("request failed", slog.String("method", c.Method()), slog.String("path", c.Path()), slog.Any("error", err))
	}
	switch {
	case strings.HasPrefix(c.Path(), "/api/"):
		return c.Status(status).JSON(fiber.Map{"error": message})
	case isHTMX(c):
		return render(c, status, views.ErrorFragment(message))
	}
	return render(c, status, views.ErrorView(views.ErrorPage{Layout: h.layout(c, message, ""), Status: status, Message: message}))
}
