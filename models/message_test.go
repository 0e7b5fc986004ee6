package models_test

import (
	"fmt"
	"slices"
	"testing"

	"switchboard/models"
	"switchboard/models/modelstest"
)

func TestJoinOnce(t *testing.T) {
	s := modelstest.NewStore(t)
	ctx := t.Context()
	alice := createUser(t, s, "alice")
	room, err := s.EnsureRoom(ctx, "general", models.RoomOpen)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.Join(ctx, room.ID, alice.ID)
	if err != nil || m == nil {
		t.Fatalf("first Join = %v, %v", m, err)
	}
	if m.Kind != models.MessageJoin || m.Text != "" || m.UserID != alice.ID || m.Author != "alice" || m.RoomID != room.ID {
		t.Fatalf("join message = %+v", m)
	}
	again, err := s.Join(ctx, room.ID, alice.ID)
	if err != nil || again != nil {
		t.Fatalf("second Join = %v, %v; want nil, nil", again, err)
	}
	ms, err := s.RecentMessages(ctx, room.ID, 10)
	if err != nil || len(ms) != 1 || ms[0].ID != m.ID {
		t.Fatalf("messages after two joins = %+v, %v", ms, err)
	}
	mem, err := s.Membership(ctx, room.ID, alice.ID)
	if err != nil || mem.LastReadID != m.ID {
		t.Fatalf("membership = %+v, %v; want LastReadID %d", mem, err, m.ID)
	}
	if _, err := s.Join(ctx, room.ID+100, alice.ID); err == nil {
		t.Fatal("Join of a missing room succeeded")
	}
	if _, err := s.Join(ctx, room.ID, 9999); err == nil {
		t.Fatal("Join of a missing user succeeded (foreign keys off?)")
	}
}

func TestCreateMessageIdempotentOnClientID(t *testing.T) {
	s := modelstest.NewStore(t)
	ctx := t.Context()
	alice := createUser(t, s, "alice")
	room := createRoom(t, s, "r", models.RoomOpen, alice.ID)
	nm := models.NewMessage{RoomID: room.ID, UserID: alice.ID, Text: "hello", ClientID: "c-1"}

	first, created, err := s.CreateMessage(ctx, nm)
	if err != nil || !created {
		t.Fatalf("first = %+v, %v, %v", first, created, err)
	}
	if first.Kind != models.MessageText || first.Author != "alice" || first.ClientID == nil || *first.ClientID != "c-1" || first.CreatedAt.IsZero() {
		t.Fatalf("first = %+v", first)
	}
	nm.Text = "hello again"
	second, created, err := s.CreateMessage(ctx, nm)
	if err != nil || created || second.ID != first.ID || second.Text != "hello" || second.Author != "alice" {
		t.Fatalf("resend = %+v, %v, %v", second, created, err)
	}
	// Without a client id, and in another room with the same client id, messages are new.
	nm.ClientID = ""
	if _, created, err := s.CreateMessage(ctx, nm); err != nil || !created {
		t.Fatalf("no client id: %v, %v", created, err)
	}
	if _, created, err := s.CreateMessage(ctx, nm); err != nil || !created {
		t.Fatalf("no client id again: %v, %v", created, err)
	}
	other := createRoom(t, s, "other", models.RoomOpen, alice.ID)
	if _, created, err := s.CreateMessage(ctx, models.NewMessage{RoomID: other.ID, UserID: alice.ID, Text: "x", ClientID: "c-1"}); err != nil || !created {
		t.Fatalf("same client id, other room: %v, %v", created, err)
	}
	ms, err := s.MessagesAfter(ctx, room.ID, 0, 100)
	if err != nil || len(ms) != 3 {
		t.Fatalf("rows in room = %d, %v; want 3", len(ms), err)
	}
	if _, _, err := s.CreateMessage(ctx, models.NewMessage{RoomID: room.ID, UserID: alice.ID, Kind: "shout"}); err == nil {
		t.Fatal("invalid kind accepted")
	}
}

func TestMessagePaging(t *testing.T) {
	s := modelstest.NewStore(t)
	ctx := t.Context()
	alice := createUser(t, s, "alice")
	room := createRoom(t, s, "r", models.RoomOpen, alice.ID)
	other := createRoom(t, s, "other", models.RoomOpen, alice.ID)
	if id, err := s.LatestMessageID(ctx, room.ID); err != nil || id != 0 {
		t.Fatalf("LatestMessageID(empty) = %d, %v", id, err)
	}
	var all []int64
	for i := range 10 {
		all = append(all, say(t, s, room.ID, alice.ID, fmt.Sprint(i)).ID)
		say(t, s, other.ID, alice.ID, "noise")
	}
	if !slices.IsSorted(all) {
		t.Fatalf("ids not increasing: %v", all)
	}

	check := func(name string, ms []models.Message, err error, want []int64) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !slices.Equal(ids(ms), want) {
			t.Fatalf("%s = %v, want %v", name, ids(ms), want)
		}
		for _, m := range ms {
			if m.Author != "alice" || m.RoomID != room.ID {
				t.Fatalf("%s: message %+v", name, m)
			}
		}
	}
	ms, err := s.RecentMessages(ctx, room.ID, 3)
	check("Recent(3)", ms, err, all[7:])
	ms, err = s.RecentMessages(ctx, room.ID, 50)
	check("Recent(50)", ms, err, all)
	ms, err = s.MessagesBefore(ctx, room.ID, all[7], 3)
	check("Before(7th, 3)", ms, err, all[4:7])
	ms, err = s.MessagesBefore(ctx, room.ID, all[2], 50)
	check("Before(2nd, 50)", ms, err, all[:2])
	ms, err = s.MessagesBefore(ctx, room.ID, all[0], 50)
	check("Before(first)", ms, err, []int64{})
	ms, err = s.MessagesAfter(ctx, room.ID, all[2], 4)
	check("After(2nd, 4)", ms, err, all[3:7])
	ms, err = s.MessagesAfter(ctx, room.ID, 0, 50)
	check("After(0, 50)", ms, err, all)
	ms, err = s.MessagesAfter(ctx, room.ID, all[9], 50)
	check("After(last)", ms, err, []int64{})
	ms, err = s.RecentMessages(ctx, room.ID, 0)
	check("Recent(0)", ms, err, []int64{})

	if id, err := s.LatestMessageID(ctx, room.ID); err != nil || id != all[9] {
		t.Fatalf("LatestMessageID = %d, %v; want %d", id, err, all[9])
	}
}

func TestMarkReadKeepsMax(t *testing.T) {
	s := modelstest.NewStore(t)
	ctx := t.Context()
	alice, bob := createUser(t, s, "alice"), createUser(t, s, "bob")
	room := createRoom(t, s, "r", models.RoomOpen, alice.ID)
	lastRead := func() int64 {
		t.Helper()
		m, err := s.Membership(ctx, room.ID, alice.ID)
		if err != nil {
			t.Fatal(err)
		}
		return m.LastReadID
	}
	for _, step := range []struct{ mark, want int64 }{{5, 5}, {3, 5}, {9, 9}, {0, 9}} {
		if err := s.MarkRead(ctx, room.ID, alice.ID, step.mark); err != nil {
			t.Fatal(err)
		}
		if got := lastRead(); got != step.want {
			t.Fatalf("after MarkRead(%d): last read %d, want %d", step.mark, got, step.want)
		}
	}
	// A non-member: no error and no membership.
	if err := s.MarkRead(ctx, room.ID, bob.ID, 7); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Membership(ctx, room.ID, bob.ID); err == nil {
		t.Fatal("MarkRead made bob a member")
	}
}
