package models_test

import (
	"errors"
	"fmt"
	"testing"

	"switchboard/models"
	"switchboard/models/modelstest"
)

func TestEnsureRoomIdempotent(t *testing.T) { modelstest.Each(t, testEnsureRoomIdempotent) }

func testEnsureRoomIdempotent(t *testing.T, s *models.Store) {
	a, err := s.EnsureRoom(t.Context(), "general", models.RoomOpen)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.EnsureRoom(t.Context(), "general", models.RoomOpen)
	if err != nil {
		t.Fatal(err)
	}
	if a.ID == 0 || a.ID != b.ID || b.Name != "general" || b.Kind != models.RoomOpen || b.CreatedByID != 0 {
		t.Fatalf("EnsureRoom twice: %+v, %+v", a, b)
	}
	got, err := s.RoomByID(t.Context(), a.ID)
	if err != nil || got.Name != "general" || got.DirectKey != nil {
		t.Fatalf("RoomByID = %+v, %v", got, err)
	}
	if _, err := s.RoomByID(t.Context(), a.ID+100); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("RoomByID(missing): %v", err)
	}
}

func TestCreateRoomNameTakenIgnoringCase(t *testing.T) {
	modelstest.Each(t, testCreateRoomNameTakenIgnoringCase)
}

func testCreateRoomNameTakenIgnoringCase(t *testing.T, s *models.Store) {
	alice := createUser(t, s, "alice")
	if _, err := s.EnsureRoom(t.Context(), "general", models.RoomOpen); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"general", "General", "GENERAL"} {
		_, err := s.CreateRoom(t.Context(), name, models.RoomPrivate, alice.ID)
		if !errors.Is(err, models.ErrRoomNameTaken) {
			t.Errorf("CreateRoom(%q): err = %v, want ErrRoomNameTaken", name, err)
		}
	}
	room := createRoom(t, s, "Random", models.RoomPrivate, alice.ID)
	if room.CreatedByID != alice.ID || room.Kind != models.RoomPrivate {
		t.Fatalf("CreateRoom = %+v", room)
	}
	m, err := s.Membership(t.Context(), room.ID, alice.ID)
	if err != nil || m.JoinedAt.IsZero() {
		t.Fatalf("creator membership = %+v, %v", m, err)
	}
	if latest, _ := s.LatestMessageID(t.Context(), room.ID); latest != 0 {
		t.Fatalf("creating a room wrote message %d", latest)
	}
	if _, err := s.CreateRoom(t.Context(), "dm", models.RoomDirect, alice.ID); err == nil {
		t.Fatal("CreateRoom(direct) succeeded")
	}
}

func TestDirectRoom(t *testing.T) { modelstest.Each(t, testDirectRoom) }

func testDirectRoom(t *testing.T, s *models.Store) {
	alice, bob, carol := createUser(t, s, "alice"), createUser(t, s, "bob"), createUser(t, s, "carol")

	room, created, err := s.DirectRoom(t.Context(), bob.ID, alice.ID)
	if err != nil || !created {
		t.Fatalf("DirectRoom first: %+v, %v, %v", room, created, err)
	}
	wantKey := fmt.Sprintf("%d:%d", alice.ID, bob.ID)
	if room.Kind != models.RoomDirect || room.DirectKey == nil || *room.DirectKey != wantKey {
		t.Fatalf("direct room = %+v", room)
	}
	again, created, err := s.DirectRoom(t.Context(), alice.ID, bob.ID)
	if err != nil || created || again.ID != room.ID {
		t.Fatalf("DirectRoom other order: %+v, %v, %v", again, created, err)
	}
	members, err := s.Members(t.Context(), room.ID)
	if err != nil || len(members) != 2 || members[0].Username != "alice" || members[1].Username != "bob" {
		t.Fatalf("Members = %+v, %v", members, err)
	}
	if latest, _ := s.LatestMessageID(t.Context(), room.ID); latest != 0 {
		t.Fatalf("creating a direct room wrote message %d", latest)
	}
	if _, err := s.Join(t.Context(), room.ID, carol.ID); err == nil {
		t.Fatal("a third user joined a direct room")
	}
	if m, err := s.Join(t.Context(), room.ID, alice.ID); err != nil || m != nil {
		t.Fatalf("member Join of a direct room = %v, %v; want nil, nil", m, err)
	}
	if _, _, err := s.DirectRoom(t.Context(), alice.ID, alice.ID); err == nil {
		t.Fatal("DirectRoom(a, a) succeeded")
	}
	if _, _, err := s.DirectRoom(t.Context(), alice.ID, 9999); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("DirectRoom with a missing user: %v", err)
	}
}

func TestRoomsForUser(t *testing.T) { modelstest.Each(t, testRoomsForUser) }

func testRoomsForUser(t *testing.T, s *models.Store) {
	ctx := t.Context()
	alice, bob, carol := createUser(t, s, "alice"), createUser(t, s, "bob"), createUser(t, s, "carol")
	general, err := s.EnsureRoom(ctx, "general", models.RoomOpen)
	if err != nil {
		t.Fatal(err)
	}
	secret := createRoom(t, s, "Secret", models.RoomPrivate, bob.ID)
	books := createRoom(t, s, "books", models.RoomOpen, carol.ID)
	dmCarol, _, err := s.DirectRoom(ctx, alice.ID, carol.ID)
	if err != nil {
		t.Fatal(err)
	}
	dmBob, _, err := s.DirectRoom(ctx, bob.ID, alice.ID)
	if err != nil {
		t.Fatal(err)
	}

	if _, err := s.Join(ctx, general.ID, alice.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Join(ctx, general.ID, bob.ID); err != nil { // a join message: not unread
		t.Fatal(err)
	}
	say(t, s, general.ID, alice.ID, "mine: not unread")
	say(t, s, general.ID, bob.ID, "one")
	say(t, s, general.ID, bob.ID, "two")
	say(t, s, secret.ID, bob.ID, "hidden")
	say(t, s, books.ID, carol.ID, "alice is no member: 0")
	say(t, s, dmBob.ID, bob.ID, "hi alice")

	items, err := s.RoomsForUser(ctx, alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		id     int64
		member bool
		unread int
		peer   string
	}
	want := []row{
		{books.ID, false, 0, ""},
		{general.ID, true, 2, ""},
		{dmBob.ID, true, 1, "bob"},
		{dmCarol.ID, true, 0, "carol"},
	}
	var got []row
	for _, it := range items {
		got = append(got, row{it.ID, it.Member, it.Unread, it.Peer})
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("RoomsForUser(alice) =\n%v\nwant\n%v", got, want)
	}
	if items[1].Name != "general" || items[1].Kind != models.RoomOpen || items[1].CreatedAt.IsZero() {
		t.Fatalf("room fields not filled: %+v", items[1].Room)
	}

	// Bob sees the private room he is in; carol does not.
	if items, err = s.RoomsForUser(ctx, bob.ID); err != nil {
		t.Fatal(err)
	}
	if names := roomNames(items); names != "[books general Secret alice & bob]" {
		t.Fatalf("bob sees %s", names)
	}
	if items, err = s.RoomsForUser(ctx, carol.ID); err != nil {
		t.Fatal(err)
	}
	if names := roomNames(items); names != "[books general alice & carol]" {
		t.Fatalf("carol sees %s", names)
	}

	// Reading clears the count.
	latest, err := s.LatestMessageID(ctx, general.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.MarkRead(ctx, general.ID, alice.ID, latest); err != nil {
		t.Fatal(err)
	}
	if items, err = s.RoomsForUser(ctx, alice.ID); err != nil {
		t.Fatal(err)
	}
	if items[1].ID != general.ID || items[1].Unread != 0 {
		t.Fatalf("after MarkRead: %+v", items[1])
	}
}

func roomNames(items []models.RoomListItem) string {
	var names []string
	for _, it := range items {
		names = append(names, it.Name)
	}
	return fmt.Sprint(names)
}
