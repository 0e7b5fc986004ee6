package handlers_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"switchboard/models"
	"switchboard/models/modelstest"
	"switchboard/realtime"
	"switchboard/realtime/redistest"
)

// twoInstances starts two servers on one Postgres schema and one Redis: a scaled-out deployment in miniature.
func twoInstances(t *testing.T) (a, b *testServer, redis *redistest.Server) {
	t.Helper()
	pg := modelstest.PostgresURL(t) // skips without TEST_DATABASE_URL
	redis = redistest.StartLocal(t) // skips without redis-server
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var servers []*testServer
	for range 2 {
		store, err := models.Open(context.Background(), pg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		broker, err := realtime.NewRedisBroker(redis.URL, log)
		if err != nil {
			t.Fatal(err)
		}
		servers = append(servers, startServer(t, store, broker, noSendLimit))
		deadline := time.Now().Add(5 * time.Second)
		for !broker.Healthy() && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	return servers[0], servers[1], redis
}

// on returns a client of srv that carries c's cookies (the session lives in the shared database).
func (c *client) on(srv *testServer) *client {
	other := srv.newClient()
	from, _ := url.Parse(c.srv.URL)
	to, _ := url.Parse(srv.URL)
	other.http.Jar.SetCookies(to, c.http.Jar.Cookies(from))
	other.Name = c.Name
	return other
}

// receivedIDs reads room message ids from a socket until it has n distinct ones, and fails on a duplicate.
func receivedIDs(t *testing.T, conn *wsConn, n int, within time.Duration) []int64 {
	t.Helper()
	var ids []int64
	seen := map[int64]bool{}
	deadline := time.After(within)
	for len(seen) < n {
		select {
		case f := <-conn.in:
			for _, m := range msgIDPattern.FindAllStringSubmatch(f, -1) {
				id, _ := strconv.ParseInt(m[1], 10, 64)
				if seen[id] {
					t.Fatalf("message %d delivered twice", id)
				}
				seen[id] = true
				ids = append(ids, id)
			}
		case <-deadline:
			t.Fatalf("%d of %d messages after %v", len(seen), n, within)
		}
	}
	return ids
}

func TestTwoInstancesShareRooms(t *testing.T) {
	a, b, _ := twoInstances(t)
	ana := a.signup("ana")
	bob := b.signup("bob")
	general := a.roomID("general", a.user("ana").ID)
	path := fmt.Sprintf("/rooms/%d/ws", general)
	bob.get(fmt.Sprintf("/rooms/%d", general))

	// The session made on A works on B: sessions live in the database.
	if resp, _ := ana.on(b).get("/rooms"); resp.StatusCode != http.StatusOK {
		t.Fatalf("ana's session on instance B: %d", resp.StatusCode)
	}
	onA := ana.mustDial(path)
	sender := bob.mustDial(path)
	frames(onA, 300*time.Millisecond)
	for i := 0; i < 200; i++ {
		send(t, sender, fmt.Sprintf("from B %d", i), fmt.Sprintf("b-%d", i))
	}
	ids := receivedIDs(t, onA, 200, 15*time.Second)
	for i := 1; i < len(ids); i++ {
		if ids[i] <= ids[i-1] {
			t.Fatalf("out of order on A: %d after %d", ids[i], ids[i-1])
		}
	}
	if fs := frames(onA, 300*time.Millisecond); count(fs, "from B") != 0 {
		t.Fatalf("more than 200 deliveries: %d extra frames", len(fs))
	}
}

func TestRedisRestartLosesNothing(t *testing.T) {
	a, b, redis := twoInstances(t)
	ana := a.signup("ana")
	bob := b.signup("bob")
	general := a.roomID("general", a.user("ana").ID)
	path := fmt.Sprintf("/rooms/%d/ws", general)
	bob.get(fmt.Sprintf("/rooms/%d", general))
	onA := ana.mustDial(path)
	sender := bob.mustDial(path)
	frames(onA, 300*time.Millisecond)

	const total = 300
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < total; i++ {
			send(t, sender, fmt.Sprintf("through the outage %d", i), fmt.Sprintf("o-%d", i))
			time.Sleep(5 * time.Millisecond)
			if i == total/3 {
				redis.Restart()
			}
		}
	}()
	ids := receivedIDs(t, onA, total, 30*time.Second)
	<-done
	if fs := frames(onA, 500*time.Millisecond); count(fs, "through the outage") != 0 {
		t.Fatal("a message arrived twice after the fill")
	}
	late := 0
	for i := 1; i < len(ids); i++ {
		if ids[i] < ids[i-1] {
			late++
		}
	}
	t.Logf("%d messages; %d filled late from the database (the page puts them in place by id)", len(ids), late)
	resp, body := a.newClient().get("/healthz")
	if resp.StatusCode != http.StatusOK || body != "ok" {
		t.Fatalf("health after the restart: %d %q", resp.StatusCode, body)
	}
}

func TestRedisDownDegradesButServes(t *testing.T) {
	a, _, redis := twoInstances(t)
	redis.Stop()
	ana := a.signup("ana")
	general := a.roomID("general", a.user("ana").ID)
	conn := ana.mustDial(fmt.Sprintf("/rooms/%d/ws", general))
	send(t, conn, "still here", "")
	readUntil(t, conn, "still here")
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, body := a.newClient().get("/healthz")
		if body == "degraded" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz says %q with Redis down", body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	redis.Restart()
	deadline = time.Now().Add(10 * time.Second)
	for {
		if _, body := a.newClient().get("/healthz"); body == "ok" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("/healthz did not recover after Redis came back")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// One instance runs the market; pages on every instance show its prices, and a new stream anywhere starts with
// the newest of each.
func TestTicksReachEveryInstance(t *testing.T) {
	a, b, _ := twoInstances(t)
	ana := a.signup("ana")
	onB := ana.on(b).openStream("/ticker/stream?symbols=VOIDX", nil)
	time.Sleep(200 * time.Millisecond) // B's stream is subscribed
	a.tick("VOIDX", 123.45)
	if ev := onB.next(t); ev.Event != "quote-VOIDX" || !containsAll(ev.Data, "123.45") {
		t.Fatalf("B's stream: %+v", ev)
	}
	late := ana.on(b).openStream("/ticker/stream?symbols=VOIDX", nil)
	if ev := late.next(t); !containsAll(ev.Data, "123.45") {
		t.Fatalf("a new stream on B does not start with the snapshot: %+v", ev)
	}
}

func containsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}
