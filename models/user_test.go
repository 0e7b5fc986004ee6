package models_test

import (
	"errors"
	"testing"

	"switchboard/models"
	"switchboard/models/modelstest"
)

func TestCreateUserFirstIsAdmin(t *testing.T) {
	s := modelstest.NewStore(t)
	first := createUser(t, s, "alice")
	second := createUser(t, s, "bob")
	if !first.IsAdmin || second.IsAdmin {
		t.Fatalf("IsAdmin: first %v, second %v; want true, false", first.IsAdmin, second.IsAdmin)
	}
	if first.ID == 0 || second.ID == 0 || first.ID == second.ID {
		t.Fatalf("ids %d, %d", first.ID, second.ID)
	}
	got, err := s.UserByName(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != first.ID || !got.IsAdmin || string(got.PasswordHash) != "hash-of-alice" || got.CreatedAt.IsZero() {
		t.Fatalf("UserByName = %+v", got)
	}
	got, err = s.UserByID(t.Context(), second.ID)
	if err != nil || got.Username != "bob" || got.IsAdmin {
		t.Fatalf("UserByID = %+v, %v", got, err)
	}
}

func TestCreateUserDuplicate(t *testing.T) {
	s := modelstest.NewStore(t)
	createUser(t, s, "alice")
	_, err := s.CreateUser(t.Context(), "alice", []byte("x"))
	if !errors.Is(err, models.ErrUsernameTaken) {
		t.Fatalf("duplicate: err = %v, want ErrUsernameTaken", err)
	}
	// The failed insert must not have made the next user an admin, nor left a row.
	if u := createUser(t, s, "bob"); u.IsAdmin {
		t.Fatal("second distinct user is admin")
	}
}

func TestUserNotFound(t *testing.T) {
	s := modelstest.NewStore(t)
	if _, err := s.UserByName(t.Context(), "nobody"); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("UserByName: %v", err)
	}
	if _, err := s.UserByID(t.Context(), 42); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("UserByID: %v", err)
	}
}
