package models_test

import (
	"testing"
	"time"

	"switchboard/models"
	"switchboard/models/modelstest"
)

func TestSessionStorage(t *testing.T) { modelstest.Each(t, testSessionStorage) }

func testSessionStorage(t *testing.T, s *models.Store) {
	st := s.Sessions()

	if v, err := st.Get("missing"); v != nil || err != nil {
		t.Fatalf("Get(missing) = %q, %v", v, err)
	}
	if err := st.Set("a", []byte("one"), 0); err != nil {
		t.Fatal(err)
	}
	if err := st.Set("a", []byte("two"), time.Hour); err != nil { // upsert
		t.Fatal(err)
	}
	if v, err := st.Get("a"); string(v) != "two" || err != nil {
		t.Fatalf("Get(a) = %q, %v", v, err)
	}
	if err := st.Set("forever", []byte("f"), 0); err != nil {
		t.Fatal(err)
	}
	if err := st.Set("short", []byte("s"), 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if v, _ := st.Get("short"); string(v) != "s" {
		t.Fatalf("Get(short) before expiry = %q", v)
	}
	time.Sleep(100 * time.Millisecond)
	if v, err := st.Get("short"); v != nil || err != nil {
		t.Fatalf("Get(short) after expiry = %q, %v", v, err)
	}
	n, err := s.DeleteExpiredSessions(t.Context())
	if err != nil || n != 1 {
		t.Fatalf("DeleteExpiredSessions = %d, %v; want 1", n, err)
	}
	if v, _ := st.Get("forever"); string(v) != "f" {
		t.Fatalf("a session without expiry was lost: %q", v)
	}
	if v, _ := st.Get("a"); string(v) != "two" {
		t.Fatalf("an unexpired session was lost: %q", v)
	}

	if err := st.Delete("a"); err != nil {
		t.Fatal(err)
	}
	if v, _ := st.Get("a"); v != nil {
		t.Fatalf("Get after Delete = %q", v)
	}
	if err := st.Reset(); err != nil {
		t.Fatal(err)
	}
	if v, _ := st.Get("forever"); v != nil {
		t.Fatalf("Get after Reset = %q", v)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Close of the session storage closed the store: %v", err)
	}
}

func TestLiveSessions(t *testing.T) { modelstest.Each(t, testLiveSessions) }

func testLiveSessions(t *testing.T, s *models.Store) {
	st := s.Sessions()
	st.Set("forever", []byte("x"), 0)
	st.Set("later", []byte("x"), time.Hour)
	st.Set("soon", []byte("x"), 20*time.Millisecond)
	time.Sleep(40 * time.Millisecond)
	keys := []string{"forever", "later", "soon", "never-existed"}
	for i := 0; i < 1200; i++ { // more than one chunk
		keys = append(keys, "filler")
	}
	live, err := s.LiveSessions(t.Context(), keys)
	if err != nil {
		t.Fatal(err)
	}
	if !live["forever"] || !live["later"] || live["soon"] || live["never-existed"] || len(live) != 2 {
		t.Fatalf("live = %v", live)
	}
}
