package models_test

import (
	"context"
	"fmt"
	"testing"

	"switchboard/models"
	"switchboard/models/modelstest"
)

// TestMembersByteOrder: members come in byte order of their usernames on every driver, whatever the
// database's collation ("a_c" before "ab", as in SQLite).
func TestMembersByteOrder(t *testing.T) { modelstest.Each(t, testMembersByteOrder) }

func testMembersByteOrder(t *testing.T, s *models.Store) {
	names := []string{"ab", "a_c", "a-d", "b", "a0"}
	var first int64
	for _, name := range names {
		u := createUser(t, s, name)
		if first == 0 {
			first = u.ID
			createRoom(t, s, "r", models.RoomOpen, u.ID)
		}
	}
	rooms, err := s.RoomsForUser(t.Context(), first)
	if err != nil || len(rooms) != 1 {
		t.Fatalf("RoomsForUser = %+v, %v", rooms, err)
	}
	for _, name := range names[1:] {
		u, err := s.UserByName(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Join(t.Context(), rooms[0].ID, u.ID); err != nil {
			t.Fatal(err)
		}
	}
	members, err := s.Members(t.Context(), rooms[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range members {
		got = append(got, m.Username)
	}
	if want := "[a-d a0 a_c ab b]"; fmt.Sprint(got) != want {
		t.Fatalf("Members = %v, want %s", got, want)
	}
}

func TestMarkReadMany(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		ctx := context.Background()
		u, _ := s.CreateUser(ctx, "ana", []byte("h"))
		a, _ := s.CreateRoom(ctx, "a", models.RoomOpen, u.ID)
		b, _ := s.CreateRoom(ctx, "b", models.RoomOpen, u.ID)
		if err := s.MarkRead(ctx, b.ID, u.ID, 50); err != nil {
			t.Fatal(err)
		}
		err := s.MarkReadMany(ctx, []models.ReadMark{{RoomID: a.ID, UserID: u.ID, MessageID: 7}, {RoomID: b.ID, UserID: u.ID, MessageID: 9}})
		if err != nil {
			t.Fatal(err)
		}
		ma, _ := s.Membership(ctx, a.ID, u.ID)
		mb, _ := s.Membership(ctx, b.ID, u.ID)
		if ma.LastReadID != 7 || mb.LastReadID != 50 {
			t.Fatalf("last read: a=%d (want 7), b=%d (want 50, the max)", ma.LastReadID, mb.LastReadID)
		}
	})
}
