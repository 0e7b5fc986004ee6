// Package modelstest opens real, throw-away databases for tests: a fresh SQLite file per test and, when
// TEST_DATABASE_URL names a Postgres database, a fresh schema in it per test, dropped when the test ends.
// Tests in any package may use them in parallel.
package modelstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"switchboard/models"
)

// EnvPostgres names the environment variable with the Postgres URL that tests use, e.g.
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable. Without it, Postgres tests skip.
const EnvPostgres = "TEST_DATABASE_URL"

// SkipMessage is what a Postgres test says when it skips for want of EnvPostgres.
const SkipMessage = "models: " + EnvPostgres + " not set; Postgres tests skipped"

// schemaTimeout bounds creating and dropping a test schema.
const schemaTimeout = 30 * time.Second

// NewStore opens a Store on a fresh SQLite file in t.TempDir() and closes it when the test ends.
func NewStore(t testing.TB) *models.Store {
	t.Helper()
	return open(t, SQLiteURL(t))
}

// NewPostgresStore opens a Store on a fresh schema of the EnvPostgres database and closes it, then drops the
// schema, when the test ends. It skips the test when EnvPostgres is not set.
func NewPostgresStore(t testing.TB) *models.Store {
	t.Helper()
	return open(t, PostgresURL(t))
}

// SQLiteURL returns the path of a fresh SQLite database file in t.TempDir() (models.Open creates it).
func SQLiteURL(t testing.TB) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "switchboard.db")
}

// PostgresURL creates a fresh, empty schema sb_test_<random> in the EnvPostgres database and returns that
// URL with search_path set to the schema, so that models.Open migrates into it and every query uses it, and
// synchronous_commit off unless EnvPostgres sets it. The schema is dropped when the test ends (close stores
// on it first: register their Close after this call, as t.Cleanup runs functions last-in first-out). It
// skips the test when EnvPostgres is not set, and fails it when the database cannot be reached.
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvPostgres)
	if base == "" {
		t.Skip(SkipMessage)
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("%s must be a postgres:// URL (err %v)", EnvPostgres, err)
	}
	random := make([]byte, 8)
	rand.Read(random)
	schema := "sb_test_" + hex.EncodeToString(random)

	exec := func(sql string) error {
		ctx, cancel := context.WithTimeout(context.Background(), schemaTimeout)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, sql)
		return err
	}
	if err := exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatalf("create schema %s in %s: %v", schema, u.Redacted(), err)
	}
	t.Cleanup(func() {
		if err := exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	q := u.Query()
	q.Set("search_path", schema)
	if !q.Has("synchronous_commit") {
		// A throw-away schema needs no durability: without a WAL flush per commit, a storm of small
		// transactions runs several times faster. What commits, and in what order it becomes visible, is
		// unchanged.
		q.Set("synchronous_commit", "off")
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// Each runs fn as one subtest per driver, "sqlite" and "postgres", each on a fresh, empty Store that is
// closed when the subtest ends. The postgres subtest skips when EnvPostgres is not set.
func Each(t *testing.T, fn func(t *testing.T, s *models.Store)) {
	t.Helper()
	EachURL(t, func(t *testing.T, url string) {
		fn(t, open(t, url))
	})
}

// EachURL runs fn as one subtest per driver, "sqlite" and "postgres", each with the URL of a fresh, empty
// database (see SQLiteURL and PostgresURL), for tests that open the store themselves.
func EachURL(t *testing.T, fn func(t *testing.T, url string)) {
	t.Helper()
	for _, d := range []struct {
		name string
		url  func(testing.TB) string
	}{{"sqlite", SQLiteURL}, {"postgres", PostgresURL}} {
		t.Run(d.name, func(t *testing.T) {
			fn(t, d.url(t))
		})
	}
}

// open opens a Store on url and closes it when the test ends.
func open(t testing.TB, url string) *models.Store {
	t.Helper()
	s, err := models.Open(t.Context(), url)
	if err != nil {
		t.Fatalf("open store on %s: %v", redact(url), err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return s
}

// redact hides a password in a database URL.
func redact(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable url)"
	}
	return u.Redacted()
}
