package models_test

import (
	"context"
	"errors"
	"testing"

	"switchboard/models"
	"switchboard/models/modelstest"
)

func TestUserAdministration(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		ctx := context.Background()
		ana, _ := s.CreateUser(ctx, "ana", []byte("h1"))
		bob, _ := s.CreateUser(ctx, "bob", []byte("h2"))
		if err := s.UpdateUser(ctx, bob.ID, true, true, []byte("h3")); err != nil {
			t.Fatal(err)
		}
		got, _ := s.UserByID(ctx, bob.ID)
		if !got.IsAdmin || !got.Disabled || string(got.PasswordHash) != "h3" {
			t.Fatalf("after update: %+v", got)
		}
		if err := s.UpdateUser(ctx, bob.ID, false, false, nil); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.UserByID(ctx, bob.ID); got.IsAdmin || got.Disabled || string(got.PasswordHash) != "h3" {
			t.Fatalf("a nil hash changed the password, or flags did not change: %+v", got)
		}
		if err := s.UpdateUser(ctx, 999, false, false, nil); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("unknown user: %v", err)
		}
		us, err := s.Users(ctx)
		if err != nil || len(us) != 2 || us[0].ID != ana.ID {
			t.Fatalf("users: %+v, %v", us, err)
		}
		if n, err := s.Size(ctx); err != nil || n <= 0 {
			t.Fatalf("size %d, %v", n, err)
		}
		if users, rooms, err := s.Counts(ctx); err != nil || users != 2 || rooms != 0 {
			t.Fatalf("counts %d %d %v", users, rooms, err)
		}
	})
}
