package models_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"switchboard/models"
	"switchboard/models/modelstest"
)

func TestOpenURLForms(t *testing.T) {
	dir := t.TempDir()
	for _, url := range []string{
		filepath.Join(dir, "plain.db"),
		"file:" + filepath.Join(dir, "file.db"),
		"sqlite://" + filepath.Join(dir, "scheme.db"),
	} {
		s, err := models.Open(t.Context(), url)
		if err != nil {
			t.Fatalf("Open(%q): %v", url, err)
		}
		if s.Driver() != "sqlite" {
			t.Errorf("Driver() = %q", s.Driver())
		}
		if err := s.Ping(t.Context()); err != nil {
			t.Errorf("Ping: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
	for _, url := range []string{"", ":memory:", "file:x.db?mode=memory"} {
		if _, err := models.Open(t.Context(), url); err == nil {
			t.Errorf("Open(%q) succeeded", url)
		}
	}
	// A postgres URL selects Postgres: a server that is not there is an error that names the URL, but never
	// its password.
	for _, url := range []string{"postgres://u:secret@127.0.0.1:1/db?connect_timeout=5", "postgresql://u:secret@127.0.0.1:1/db"} {
		_, err := models.Open(t.Context(), url)
		if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") || strings.Contains(err.Error(), "secret") {
			t.Errorf("Open(%q): err = %v", url, err)
		}
	}
	if _, err := models.Open(t.Context(), "postgres://u@127.0.0.1/db?sslmode=bogus"); err == nil {
		t.Error("Open with an invalid postgres URL succeeded")
	}
}

// TestOpenPostgres checks the Postgres pool: one pool of a fixed size serves both reads and writes, times
// come back in UTC, and the store uses the schema named in the URL's search_path.
func TestOpenPostgres(t *testing.T) {
	s := modelstest.NewPostgresStore(t)
	if s.Driver() != "postgres" {
		t.Fatalf("Driver() = %q", s.Driver())
	}
	if err := s.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	writer, reader := s.SQLDBs()
	if writer != reader {
		t.Error("Postgres writer and readers are different pools")
	}
	if n := writer.Stats().MaxOpenConnections; n < 4 || n > 50 {
		t.Errorf("pool of %d connections", n)
	}
	alice := createUser(t, s, "alice")
	if alice.CreatedAt.Location() != time.UTC {
		t.Errorf("CreatedAt in %v, want UTC", alice.CreatedAt.Location())
	}
	got, err := s.UserByID(t.Context(), alice.ID)
	if err != nil || got.CreatedAt.Location() != time.UTC || !got.CreatedAt.Equal(alice.CreatedAt) {
		t.Fatalf("UserByID = %+v, %v; CreatedAt %v want %v in UTC", got, err, got.CreatedAt, alice.CreatedAt)
	}
	var schema string
	if err := writer.QueryRowContext(t.Context(), "SELECT current_schema()").Scan(&schema); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(schema, "sb_test_") {
		t.Fatalf("current_schema() = %q", schema)
	}
	var tables int
	err = writer.QueryRowContext(t.Context(),
		"SELECT count(*) FROM information_schema.tables WHERE table_schema = $1", schema).Scan(&tables)
	if err != nil || tables != 7 { // users rooms memberships messages sessions tokens bots
		t.Fatalf("%d tables in %s, want 7 (%v)", tables, schema, err)
	}
	if err := s.Close(); err != nil { // closing the one pool once, and again at cleanup, is fine
		t.Fatal(err)
	}
}

// TestReopenKeepsData: opening an existing database migrates it again, keeping the data.
func TestReopenKeepsData(t *testing.T) {
	modelstest.EachURL(t, func(t *testing.T, url string) {
		s, err := models.Open(t.Context(), url)
		if err != nil {
			t.Fatal(err)
		}
		alice := createUser(t, s, "alice")
		room := createRoom(t, s, "r", models.RoomOpen, alice.ID)
		say(t, s, room.ID, alice.ID, "before")
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s, err = models.Open(t.Context(), url) // migrates again
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if u, err := s.UserByName(t.Context(), "alice"); err != nil || u.ID != alice.ID || !u.IsAdmin {
			t.Fatalf("after reopen: %+v, %v", u, err)
		}
		if m := say(t, s, room.ID, alice.ID, "after"); m.Author != "alice" {
			t.Fatalf("message after reopen: %+v", m)
		}
	})
}

// TestConcurrentMigrations: instances that start at once on one empty database migrate it one after
// another (on Postgres under an advisory lock), and all of them work.
func TestConcurrentMigrations(t *testing.T) {
	url := modelstest.PostgresURL(t)
	const instances = 4
	stores := make([]*models.Store, instances)
	errs := make([]error, instances)
	var wg sync.WaitGroup
	for i := range instances {
		wg.Go(func() { stores[i], errs[i] = models.Open(t.Context(), url) })
	}
	wg.Wait()
	for i, s := range stores {
		if errs[i] != nil {
			t.Errorf("instance %d: %v", i, errs[i])
			continue
		}
		createUser(t, s, fmt.Sprintf("user%d", i))
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	}
}

// TestPragmas checks the settings on every connection of both pools, held at once so that they are distinct.
// It is SQLite-only: Postgres has one pool and no pragmas.
func TestPragmas(t *testing.T) {
	s := modelstest.NewStore(t)
	writer, reader := s.SQLDBs()
	ctx := t.Context()

	check := func(name string, conn *sql.Conn, readOnly bool) {
		t.Helper()
		var journal string
		var busy, fk, sync, queryOnly int
		for pragma, dest := range map[string]any{
			"journal_mode": &journal, "busy_timeout": &busy, "foreign_keys": &fk, "synchronous": &sync, "query_only": &queryOnly,
		} {
			if err := conn.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(dest); err != nil {
				t.Fatalf("%s: PRAGMA %s: %v", name, pragma, err)
			}
		}
		if journal != "wal" || busy < 5000 || fk != 1 || sync != 1 || (queryOnly == 1) != readOnly {
			t.Errorf("%s: journal_mode=%s busy_timeout=%d foreign_keys=%d synchronous=%d query_only=%d",
				name, journal, busy, fk, sync, queryOnly)
		}
	}

	if n := writer.Stats().MaxOpenConnections; n != 1 {
		t.Fatalf("writer pool: %d connections, want 1", n)
	}
	conn, err := writer.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	check("writer", conn, false)
	conn.Close()

	n := reader.Stats().MaxOpenConnections
	if n < 2 {
		t.Fatalf("reader pool: %d connections, want several", n)
	}
	var conns []*sql.Conn
	for i := range n {
		conn, err := reader.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, conn)
		check(fmt.Sprintf("reader %d", i), conn, true)
	}
	if _, err := conns[0].ExecContext(ctx, "DELETE FROM users"); err == nil {
		t.Error("a reader connection can write")
	}
	for _, c := range conns {
		c.Close()
	}
	if open := reader.Stats().OpenConnections; open != n {
		t.Errorf("reader pool opened %d connections, want %d", open, n)
	}
}

// TestWriteStorm: concurrent writers queue on the one writer connection (SQLite) or on the room's lock
// (Postgres) instead of failing with "database is locked" or a serialization error, while readers keep reading.
func TestWriteStorm(t *testing.T) { modelstest.Each(t, testWriteStorm) }

func testWriteStorm(t *testing.T, s *models.Store) {
	const writers, perWriter = 50, 100
	ctx := t.Context()
	alice := createUser(t, s, "alice")
	room := createRoom(t, s, "storm", models.RoomOpen, alice.ID)

	var wg sync.WaitGroup
	errs := make(chan error, writers*perWriter)
	readCtx, stopReading := context.WithCancel(ctx)
	for range 4 {
		wg.Go(func() {
			for readCtx.Err() == nil {
				// A read cut short by stopReading may fail with context.Canceled or (pgx) an i/o timeout.
				if _, err := s.RecentMessages(readCtx, room.ID, 50); err != nil && readCtx.Err() == nil {
					errs <- fmt.Errorf("read: %w", err)
					return
				}
			}
		})
	}
	var writersWG sync.WaitGroup
	for w := range writers {
		writersWG.Go(func() {
			var last int64
			for i := range perWriter {
				m, created, err := s.CreateMessage(ctx, models.NewMessage{
					RoomID: room.ID, UserID: alice.ID, Text: "storm", ClientID: fmt.Sprintf("w%d-%d", w, i),
				})
				switch {
				case err != nil:
					errs <- err
					return
				case !created:
					errs <- fmt.Errorf("writer %d message %d not created", w, i)
					return
				case m.ID <= last:
					errs <- fmt.Errorf("writer %d: id %d after %d", w, m.ID, last)
					return
				}
				last = m.ID
			}
		})
	}
	writersWG.Wait()
	stopReading()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	ms, err := s.MessagesAfter(ctx, room.ID, 0, 2*writers*perWriter)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != writers*perWriter {
		t.Fatalf("%d rows, want %d", len(ms), writers*perWriter)
	}
	got := ids(ms)
	if !slices.IsSorted(got) || len(slices.Compact(got)) != writers*perWriter {
		t.Fatal("ids are not strictly increasing")
	}
}

// The writer does not checkpoint (wal_autocheckpoint=0: a checkpoint inside a commit stalls the sends behind
// it); the store's own checkpointer copies the log into the database file while the store is open.
func TestCheckpointsRunBesideTheWriter(t *testing.T) {
	path := modelstest.SQLiteURL(t)
	s, err := models.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	writer, _ := s.SQLDBs()
	var auto int
	if err := writer.QueryRowContext(t.Context(), "PRAGMA wal_autocheckpoint").Scan(&auto); err != nil || auto != 0 {
		t.Fatalf("writer's wal_autocheckpoint = %d, %v; want 0", auto, err)
	}
	size := func() int64 {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	before := size()
	alice := createUser(t, s, "alice")
	room := createRoom(t, s, "r", models.RoomOpen, alice.ID)
	group := make([]models.NewMessage, 100)
	for i := range 20 {
		for j := range group {
			group[j] = models.NewMessage{RoomID: room.ID, UserID: alice.ID, Text: strings.Repeat("x", 200), ClientID: fmt.Sprintf("%d-%d", i, j)}
		}
		if _, err := s.CreateMessages(t.Context(), group); err != nil {
			t.Fatal(err)
		}
	}
	// 2000 messages of 200 bytes: some 600 KB, in far fewer log frames than SQLite's own threshold (1000).
	deadline := time.Now().Add(5 * time.Second)
	for size() < before+400<<10 {
		if time.Now().After(deadline) {
			t.Fatalf("the database file holds %d bytes (%d before the writes): the log was not checkpointed", size(), before)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
