package models_test

import (
	"errors"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"switchboard/models"
	"switchboard/models/modelstest"
)

func TestCreateBot(t *testing.T) { modelstest.Each(t, testCreateBot) }

func testCreateBot(t *testing.T, s *models.Store) {
	ctx := t.Context()
	admin := createUser(t, s, "root")
	u, b, err := s.CreateBot(ctx, "pricebot", "https://bots.example.com/hook", admin.ID)
	if err != nil {
		t.Fatal(err)
	}
	if u.ID == 0 || u.Username != "pricebot" || u.IsAdmin || u.Disabled {
		t.Fatalf("bot user = %+v", u)
	}
	if b.UserID != u.ID || b.Username != "pricebot" || b.WebhookURL != "https://bots.example.com/hook" || b.CreatedBy != admin.ID || b.CreatedAt.IsZero() {
		t.Fatalf("bot = %+v", b)
	}
	// Nobody signs in as a bot: its hash is not a bcrypt hash, and two bots' hashes differ.
	stored, err := s.UserByName(ctx, "pricebot")
	if err != nil {
		t.Fatal(err)
	}
	for _, pw := range []string{"", "password", string(stored.PasswordHash)} {
		if bcrypt.CompareHashAndPassword(stored.PasswordHash, []byte(pw)) == nil {
			t.Fatalf("password %q signs in as the bot", pw)
		}
	}
	_, _, err = s.CreateBot(ctx, "echobot", "https://bots.example.com/echo", admin.ID)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := s.UserByName(ctx, "echobot")
	if string(other.PasswordHash) == string(stored.PasswordHash) {
		t.Fatal("two bots have the same password hash")
	}

	got, err := s.BotByUserID(ctx, u.ID)
	if err != nil || got.Username != "pricebot" || got.WebhookURL != b.WebhookURL || !got.CreatedAt.Equal(b.CreatedAt) {
		t.Fatalf("BotByUserID = %+v, %v", got, err)
	}
	if _, err := s.BotByUserID(ctx, admin.ID); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("BotByUserID of a person: %v, want ErrNotFound", err)
	}
	all, err := s.Bots(ctx)
	if err != nil || len(all) != 2 || all[0].Username != "echobot" || all[1].Username != "pricebot" {
		t.Fatalf("Bots = %+v, %v", all, err)
	}

	// A bot is a user: it can join rooms and post.
	room := createRoom(t, s, "lobby", models.RoomOpen, admin.ID)
	if _, err := s.Join(ctx, room.ID, u.ID); err != nil {
		t.Fatal(err)
	}
	if m := say(t, s, room.ID, u.ID, "hello"); m.Author != "pricebot" {
		t.Fatalf("bot message author %q", m.Author)
	}
}

func TestCreateBotNames(t *testing.T) { modelstest.Each(t, testCreateBotNames) }

func testCreateBotNames(t *testing.T, s *models.Store) {
	ctx := t.Context()
	admin := createUser(t, s, "root")
	for _, name := range []string{"", "ab", "PriceBot", "price bot", "price.bot", "a23456789012345678901234567890123", "bøt"} {
		if _, _, err := s.CreateBot(ctx, name, "https://x.example/", admin.ID); !errors.Is(err, models.ErrInvalidUsername) {
			t.Errorf("CreateBot(%q): %v, want ErrInvalidUsername", name, err)
		}
	}
	if _, _, err := s.CreateBot(ctx, "root", "https://x.example/", admin.ID); !errors.Is(err, models.ErrUsernameTaken) {
		t.Fatalf("a person's name: %v, want ErrUsernameTaken", err)
	}
	if _, _, err := s.CreateBot(ctx, "bot-1_x", "https://x.example/", admin.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.CreateBot(ctx, "bot-1_x", "https://y.example/", admin.ID); !errors.Is(err, models.ErrUsernameTaken) {
		t.Fatalf("a bot's name again: %v, want ErrUsernameTaken", err)
	}
	if _, err := s.CreateUser(ctx, "bot-1_x", []byte("h")); !errors.Is(err, models.ErrUsernameTaken) {
		t.Fatalf("a person with a bot's name: %v, want ErrUsernameTaken", err)
	}
	// The failed attempts left nothing behind.
	all, err := s.Bots(ctx)
	if err != nil || len(all) != 1 {
		t.Fatalf("Bots = %+v, %v", all, err)
	}
	users, err := s.Users(ctx)
	if err != nil || len(users) != 2 {
		t.Fatalf("Users = %d, %v", len(users), err)
	}
}

func TestDeleteBot(t *testing.T) { modelstest.Each(t, testDeleteBot) }

func testDeleteBot(t *testing.T, s *models.Store) {
	ctx := t.Context()
	admin := createUser(t, s, "root")
	u, _, err := s.CreateBot(ctx, "pricebot", "https://x.example/", admin.ID)
	if err != nil {
		t.Fatal(err)
	}
	room := createRoom(t, s, "lobby", models.RoomOpen, admin.ID)
	m := say(t, s, room.ID, u.ID, "tick")
	if err := s.DeleteBot(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.BotByUserID(ctx, u.ID); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("deleted bot still found: %v", err)
	}
	if got, err := s.UserByID(ctx, u.ID); err != nil || !got.Disabled {
		t.Fatalf("the deleted bot's user: %+v, %v; want disabled", got, err)
	}
	// Its messages keep their author.
	msgs, err := s.MessagesAfter(ctx, room.ID, m.ID-1, 10)
	if err != nil || len(msgs) != 1 || msgs[0].Author != "pricebot" {
		t.Fatalf("messages after delete: %+v, %v", msgs, err)
	}
	if err := s.DeleteBot(ctx, u.ID); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("second delete: %v, want ErrNotFound", err)
	}
	if err := s.DeleteBot(ctx, admin.ID); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("delete a person: %v, want ErrNotFound", err)
	}
	if got, _ := s.UserByID(ctx, admin.ID); got.Disabled {
		t.Fatal("deleting a person as a bot disabled them")
	}
}
