package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"switchboard/models"
)

// TestRunServesAndShutsDown starts the real binary's run on a random port and a fresh SQLite file, checks that it
// serves, then stops it the way SIGTERM does.
func TestRunServesAndShutsDown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, w := io.Pipe()
	db := filepath.Join(t.TempDir(), "sb.db")
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0"}, func(k string) string {
			if k == "DATABASE_URL" {
				return db
			}
			return ""
		}, w)
		w.Close()
	}()
	addr := regexp.MustCompile(`addr=(\S+)`)
	lines := bufio.NewScanner(out)
	var base string
	for base == "" && lines.Scan() {
		if m := addr.FindStringSubmatch(lines.Text()); m != nil {
			base = "http://" + m[1]
		}
	}
	go io.Copy(io.Discard, out)
	if base == "" {
		t.Fatalf("no listening line; run returned %v", <-done)
	}
	for path, want := range map[string]int{"/healthz": 200, "/login": 200, "/static/js/htmx.min.js": 200, "/rooms": 303} {
		client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := client.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("run did not return after shutdown")
	}
}

func TestBackupCommandAndVersion(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "sb.db")
	env := func(string) string { return "" }
	var out strings.Builder
	store, err := models.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.EnsureRoom(context.Background(), "general", models.RoomOpen); err != nil {
		t.Fatal(err)
	}
	store.Close()
	copyPath := filepath.Join(dir, "copy.db")
	if err := run(context.Background(), []string{"backup", "-db", db, copyPath}, env, &out); err != nil {
		t.Fatalf("backup: %v", err)
	}
	if !strings.Contains(out.String(), "backed up") {
		t.Fatalf("output %q", out.String())
	}
	copied, err := models.Open(context.Background(), copyPath)
	if err != nil {
		t.Fatalf("the copy does not open: %v", err)
	}
	if _, err := copied.RoomByID(context.Background(), 1); err != nil {
		t.Fatalf("the copy lacks #general: %v", err)
	}
	copied.Close()
	if err := run(context.Background(), []string{"backup", "-db", db, copyPath}, env, io.Discard); err == nil {
		t.Fatal("a backup over an existing file succeeded")
	}
	if err := run(context.Background(), []string{"backup", "-db", db}, env, io.Discard); err == nil || !strings.Contains(err.Error(), "usage") {
		t.Fatalf("backup without a target: %v", err)
	}
	out.Reset()
	if err := run(context.Background(), []string{"-version"}, env, &out); err != nil || !strings.HasPrefix(out.String(), "switchboard ") {
		t.Fatalf("-version: %q, %v", out.String(), err)
	}
}
