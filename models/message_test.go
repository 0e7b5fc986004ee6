package models_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"switchboard/models"
	"switchboard/models/modelstest"
)

func TestJoinOnce(t *testing.T) { modelstest.Each(t, testJoinOnce) }

func testJoinOnce(t *testing.T, s *models.Store) {
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
	modelstest.Each(t, testCreateMessageIdempotentOnClientID)
}

func testCreateMessageIdempotentOnClientID(t *testing.T, s *models.Store) {
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

func TestMessagePaging(t *testing.T) { modelstest.Each(t, testMessagePaging) }

func testMessagePaging(t *testing.T, s *models.Store) {
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

func TestMarkReadKeepsMax(t *testing.T) { modelstest.Each(t, testMarkReadKeepsMax) }

func testMarkReadKeepsMax(t *testing.T, s *models.Store) {
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

// TestMessageIDsCommitInOrder: while writers insert into one room concurrently, a reader that polls
// MessagesAfter(the newest id it has seen) gets every message: no message ever commits with an id below one
// already visible (the realtime replay relies on it; on Postgres the room's advisory lock keeps it).
func TestMessageIDsCommitInOrder(t *testing.T) { modelstest.Each(t, testMessageIDsCommitInOrder) }

func testMessageIDsCommitInOrder(t *testing.T, s *models.Store) {
	const writers, perWriter = 8, 200
	ctx := t.Context()
	alice := createUser(t, s, "alice")
	room := createRoom(t, s, "r", models.RoomOpen, alice.ID)
	other := createRoom(t, s, "other", models.RoomOpen, alice.ID)

	done := make(chan struct{})
	var seen []int64
	readerErr := make(chan error, 1)
	go func() {
		var last int64
		poll := func() error {
			ms, err := s.MessagesAfter(ctx, room.ID, last, 1000)
			if err != nil {
				return err
			}
			for _, m := range ms {
				if m.ID <= last {
					return fmt.Errorf("MessagesAfter(%d) returned %d", last, m.ID)
				}
				last = m.ID
				seen = append(seen, m.ID)
			}
			return nil
		}
		for {
			select {
			case <-done:
				readerErr <- poll() // the writers are done: one last poll sees the rest
				return
			default:
			}
			if err := poll(); err != nil {
				readerErr <- err
				return
			}
		}
	}()

	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				roomID := room.ID
				if i%10 == 9 { // some traffic in another room, which takes another lock
					roomID = other.ID
				}
				if _, _, err := s.CreateMessage(ctx, models.NewMessage{RoomID: roomID, UserID: alice.ID, Text: fmt.Sprint(w, i)}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(done)
	if err := <-readerErr; err != nil {
		t.Fatal(err)
	}
	all, err := s.MessagesAfter(ctx, room.ID, 0, 2*writers*perWriter)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != writers*perWriter*9/10 {
		t.Fatalf("%d messages in the room, want %d", len(all), writers*perWriter*9/10)
	}
	if missed := len(all) - len(seen); missed != 0 || !slices.Equal(ids(all), seen) {
		t.Fatalf("the polling reader missed %d messages: they committed below an id it had seen", missed)
	}
}

func TestCreateMessageAuthor(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		ctx := context.Background()
		u, err := s.CreateUser(ctx, "ana", []byte("h"))
		if err != nil {
			t.Fatal(err)
		}
		r, err := s.EnsureRoom(ctx, "general", models.RoomOpen)
		if err != nil {
			t.Fatal(err)
		}
		given, _, err := s.CreateMessage(ctx, models.NewMessage{RoomID: r.ID, UserID: u.ID, Text: "a", Author: "ana"})
		if err != nil || given.Author != "ana" || given.ID == 0 || given.CreatedAt.IsZero() {
			t.Fatalf("with the author given: %+v, %v", given, err)
		}
		read, _, err := s.CreateMessage(ctx, models.NewMessage{RoomID: r.ID, UserID: u.ID, Text: "b"})
		if err != nil || read.Author != "ana" || read.ID <= given.ID {
			t.Fatalf("with the author read back: %+v, %v", read, err)
		}
		stored, err := s.MessagesAfter(ctx, r.ID, 0, 10)
		if err != nil || len(stored) != 2 || stored[0].Text != "a" || !stored[0].CreatedAt.Equal(given.CreatedAt) {
			t.Fatalf("stored: %+v, %v", stored, err)
		}
	})
}

func TestCreateMessagesGroup(t *testing.T) { modelstest.Each(t, testCreateMessagesGroup) }

// testCreateMessagesGroup stores a group across two rooms, with a resend of a client id stored earlier and one
// repeated inside the group, and checks every result and what the rooms hold.
func testCreateMessagesGroup(t *testing.T, s *models.Store) {
	ctx := t.Context()
	alice, bob := createUser(t, s, "alice"), createUser(t, s, "bob")
	r1 := createRoom(t, s, "one", models.RoomOpen, alice.ID)
	r2 := createRoom(t, s, "two", models.RoomOpen, bob.ID)
	earlier, _, err := s.CreateMessage(ctx, models.NewMessage{RoomID: r1.ID, UserID: alice.ID, Text: "earlier", ClientID: "old"})
	if err != nil {
		t.Fatal(err)
	}
	group := []models.NewMessage{
		{RoomID: r1.ID, UserID: alice.ID, Text: "a", ClientID: "x"},
		{RoomID: r2.ID, UserID: bob.ID, Text: "b", Author: "bob"},
		{RoomID: r1.ID, UserID: alice.ID, Text: "resent", ClientID: "old"},
		{RoomID: r1.ID, UserID: alice.ID, Text: "a twice", ClientID: "x"},
		{RoomID: r1.ID, UserID: bob.ID, Kind: models.MessageJoin},
	}
	stored, err := s.CreateMessages(ctx, group)
	if err != nil || len(stored) != len(group) {
		t.Fatalf("CreateMessages = %d results, %v", len(stored), err)
	}
	a, b, resent, twice, join := stored[0], stored[1], stored[2], stored[3], stored[4]
	if !a.Created || a.Text != "a" || a.Author != "alice" || a.RoomID != r1.ID || a.CreatedAt.IsZero() {
		t.Errorf("first = %+v", a)
	}
	if !b.Created || b.Author != "bob" || b.RoomID != r2.ID || b.ID <= a.ID {
		t.Errorf("second = %+v (first id %d)", b, a.ID)
	}
	if resent.Created || resent.ID != earlier.ID || resent.Text != "earlier" || resent.Author != "alice" {
		t.Errorf("resend of an earlier client id = %+v, want message %d", resent, earlier.ID)
	}
	if twice.Created || twice.ID != a.ID || twice.Text != "a" {
		t.Errorf("client id repeated in the group = %+v, want message %d", twice, a.ID)
	}
	if !join.Created || join.Kind != models.MessageJoin || join.Author != "bob" || join.ID <= b.ID {
		t.Errorf("join = %+v", join)
	}
	ms, err := s.RecentMessages(ctx, r1.ID, 10)
	if want := []int64{earlier.ID, a.ID, join.ID}; err != nil || !slices.Equal(ids(ms), want) {
		t.Errorf("room one holds %v, %v; want %v", ids(ms), err, want)
	}
}

func TestCreateMessagesAllOrNone(t *testing.T) { modelstest.Each(t, testCreateMessagesAllOrNone) }

// testCreateMessagesAllOrNone: one bad message (a room that does not exist) fails the group and stores nothing.
func testCreateMessagesAllOrNone(t *testing.T, s *models.Store) {
	ctx := t.Context()
	alice := createUser(t, s, "alice")
	room := createRoom(t, s, "r", models.RoomOpen, alice.ID)
	_, err := s.CreateMessages(ctx, []models.NewMessage{
		{RoomID: room.ID, UserID: alice.ID, Text: "fine"},
		{RoomID: room.ID + 1000, UserID: alice.ID, Text: "no such room"},
	})
	if err == nil {
		t.Fatal("a group with a message for a missing room was stored")
	}
	if ms, err := s.RecentMessages(ctx, room.ID, 10); err != nil || len(ms) != 0 {
		t.Fatalf("after a failed group the room holds %d messages, %v; want none", len(ms), err)
	}
	if _, err := s.CreateMessages(ctx, []models.NewMessage{{RoomID: room.ID, UserID: alice.ID, Kind: "shout"}}); err == nil {
		t.Fatal("a message of an invalid kind was stored")
	}
}

// The prepared statements run outside gorm, so they report to ObserveQueries themselves: the send path's insert
// as "create", the rooms list as "query".
func TestObserveQueriesSeesPreparedStatements(t *testing.T) {
	s := modelstest.NewStore(t)
	var mu sync.Mutex
	seen := map[string]int{}
	err := s.ObserveQueries(func(op string, d time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		seen[op]++
	})
	if err != nil {
		t.Fatal(err)
	}
	count := func(op string) int {
		mu.Lock()
		defer mu.Unlock()
		return seen[op]
	}
	alice := createUser(t, s, "alice")
	room := createRoom(t, s, "r", models.RoomOpen, alice.ID)

	creates := count("create")
	nm := models.NewMessage{RoomID: room.ID, UserID: alice.ID, Text: "hi", Author: "alice"} // no read-back
	if _, _, err := s.CreateMessage(t.Context(), nm); err != nil {
		t.Fatal(err)
	}
	if got := count("create"); got != creates+1 {
		t.Errorf("one message stored: %d creates observed, want %d", got, creates+1)
	}
	queries := count("query")
	if _, err := s.RoomsForUser(t.Context(), alice.ID); err != nil {
		t.Fatal(err)
	}
	if got := count("query"); got != queries+1 {
		t.Errorf("one rooms list: %d queries observed, want %d", got, queries+1)
	}
}
