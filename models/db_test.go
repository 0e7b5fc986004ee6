package models_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

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
	for _, url := range []string{"postgres://u@localhost/db", "postgresql://localhost/db"} {
		if _, err := models.Open(t.Context(), url); err == nil || !strings.Contains(err.Error(), "postgres is not supported yet") {
			t.Errorf("Open(%q): err = %v", url, err)
		}
	}
	for _, url := range []string{"", ":memory:", "file:x.db?mode=memory"} {
		if _, err := models.Open(t.Context(), url); err == nil {
			t.Errorf("Open(%q) succeeded", url)
		}
	}
}

func TestReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.db")
	s, err := models.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	alice := createUser(t, s, "alice")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = models.Open(t.Context(), path) // migrates again
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if u, err := s.UserByName(t.Context(), "alice"); err != nil || u.ID != alice.ID || !u.IsAdmin {
		t.Fatalf("after reopen: %+v, %v", u, err)
	}
}

// TestPragmas checks the settings on every connection of both pools, held at once so that they are distinct.
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

// TestWriteStorm: concurrent writers queue on the one writer connection instead of failing with
// "database is locked", while readers keep reading.
func TestWriteStorm(t *testing.T) {
	const writers, perWriter = 50, 100
	s := modelstest.NewStore(t)
	ctx := t.Context()
	alice := createUser(t, s, "alice")
	room := createRoom(t, s, "storm", models.RoomOpen, alice.ID)

	var wg sync.WaitGroup
	errs := make(chan error, writers*perWriter)
	readCtx, stopReading := context.WithCancel(ctx)
	for range 4 {
		wg.Go(func() {
			for readCtx.Err() == nil {
				if _, err := s.RecentMessages(readCtx, room.ID, 50); err != nil && !errors.Is(err, context.Canceled) {
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
