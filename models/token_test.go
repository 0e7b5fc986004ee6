package models_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"switchboard/models"
	"switchboard/models/modelstest"
)

func TestTokens(t *testing.T) { modelstest.Each(t, testTokens) }

func testTokens(t *testing.T, s *models.Store) {
	ctx := context.Background()
	ana, err := s.CreateUser(ctx, "ana", []byte("h"))
	if err != nil {
		t.Fatal(err)
	}
	bob, err := s.CreateUser(ctx, "bob", []byte("h"))
	if err != nil {
		t.Fatal(err)
	}
	plain, tok, err := s.CreateToken(ctx, ana.ID, "price feed")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(plain, "sb_") || len(plain) < 40 || !strings.HasPrefix(plain, tok.Hint) || strings.Contains(tok.Hash, plain) {
		t.Fatalf("token %q, stored %+v", plain, tok)
	}
	u, err := s.UserByToken(ctx, plain)
	if err != nil || u.ID != ana.ID {
		t.Fatalf("UserByToken = %+v, %v", u, err)
	}
	list, err := s.Tokens(ctx, ana.ID)
	if err != nil || len(list) != 1 || list[0].LastUsedAt == nil {
		t.Fatalf("Tokens = %+v, %v (last use should be noted)", list, err)
	}
	for _, bad := range []string{"", "sb_nope", plain + "x", strings.TrimPrefix(plain, "sb_")} {
		if _, err := s.UserByToken(ctx, bad); !errors.Is(err, models.ErrNotFound) {
			t.Errorf("UserByToken(%q) = %v, want ErrNotFound", bad, err)
		}
	}
	if err := s.RevokeToken(ctx, bob.ID, tok.ID); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("bob revoked ana's token: %v", err)
	}
	if err := s.RevokeToken(ctx, ana.ID, tok.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UserByToken(ctx, plain); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("revoked token still works: %v", err)
	}
}
