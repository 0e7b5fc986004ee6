// Package modelstest opens real, throw-away databases for tests.
package modelstest

import (
	"path/filepath"
	"testing"

	"switchboard/models"
)

// NewStore opens a Store on a fresh SQLite file in t.TempDir() and closes it when the test ends.
func NewStore(t testing.TB) *models.Store {
	t.Helper()
	s, err := models.Open(t.Context(), filepath.Join(t.TempDir(), "switchboard.db"))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return s
}
