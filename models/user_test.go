package models_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"switchboard/models"
	"switchboard/models/modelstest"
)

func TestCreateUserFirstIsAdmin(t *testing.T) { modelstest.Each(t, testCreateUserFirstIsAdmin) }

func testCreateUserFirstIsAdmin(t *testing.T, s *models.Store) {
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

func TestCreateUserDuplicate(t *testing.T) { modelstest.Each(t, testCreateUserDuplicate) }

func testCreateUserDuplicate(t *testing.T, s *models.Store) {
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

func TestUserNotFound(t *testing.T) { modelstest.Each(t, testUserNotFound) }

func testUserNotFound(t *testing.T, s *models.Store) {
	if _, err := s.UserByName(t.Context(), "nobody"); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("UserByName: %v", err)
	}
	if _, err := s.UserByID(t.Context(), 42); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("UserByID: %v", err)
	}
}

// TestCreateUserConcurrentFirstAdmin: of many concurrent sign-ups on an empty database, exactly one is the
// admin, and a username taken concurrently is created once.
func TestCreateUserConcurrentFirstAdmin(t *testing.T) {
	modelstest.Each(t, testCreateUserConcurrentFirstAdmin)
}

func testCreateUserConcurrentFirstAdmin(t *testing.T, s *models.Store) {
	const users, tries = 16, 3 // each username is tried by 3 goroutines at once
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		created []models.User
		taken   int
	)
	start := make(chan struct{})
	for i := range users * tries {
		wg.Go(func() {
			<-start
			u, err := s.CreateUser(t.Context(), fmt.Sprintf("user%02d", i%users), []byte("h"))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, models.ErrUsernameTaken):
				taken++
			case err != nil:
				t.Error(err)
			default:
				created = append(created, u)
			}
		})
	}
	close(start)
	wg.Wait()
	if len(created) != users || taken != users*(tries-1) {
		t.Fatalf("%d created, %d taken; want %d, %d", len(created), taken, users, users*(tries-1))
	}
	var admins []string
	for _, u := range created {
		if u.IsAdmin {
			admins = append(admins, u.Username)
		}
		if got, err := s.UserByID(t.Context(), u.ID); err != nil || got.IsAdmin != u.IsAdmin || got.Username != u.Username {
			t.Errorf("UserByID(%d) = %+v, %v; created %+v", u.ID, got, err, u)
		}
	}
	if len(admins) != 1 {
		t.Fatalf("admins: %v, want exactly one", admins)
	}
}
