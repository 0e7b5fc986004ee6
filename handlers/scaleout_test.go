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

	"switchboard/handlers"
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
		limiter, err := realtime.NewRedisRateLimiter(redis.URL, 1e6, 1e6, log)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { limiter.Close() })
		servers = append(servers, startServer(t, store, broker, noSendLimit, func(d *handlers.Deps) {
			d.SendLimiter = limiter
			d.NewPresence = func(linger time.Duration, onChange func(int64)) handlers.PresenceTracker {
				p, err := realtime.NewRedisPresence(redis.URL, linger, onChange, log)
				if err != nil {
					t.Fatal(err)
				}
				return p
			}
		}))
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
	// Who is online is right on both instances: ana (on A) sees bob (on B), and the other way round.
	readUntilMatch(t, onA, `data-online="true"><span[^>]*></span> <a href="/dm/bob"`, 5*time.Second)
	readUntilMatch(t, sender, `data-online="true"><span[^>]*></span> <a href="/dm/ana"`, 5*time.Second)
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

// The send limit is per user across instances: a flood split over two instances is cut at the same total.
func TestSendLimitAcrossInstances(t *testing.T) {
	pg := modelstest.PostgresURL(t)
	redis := redistest.StartLocal(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var servers []*testServer
	for range 2 {
		store, err := models.Open(context.Background(), pg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		broker, _ := realtime.NewRedisBroker(redis.URL, log)
		limiter, err := realtime.NewRedisRateLimiter(redis.URL, 1, 10, log) // 10 at once, then 1 a second
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { limiter.Close() })
		servers = append(servers, startServer(t, store, broker, func(d *handlers.Deps) { d.SendLimiter = limiter }))
	}
	a, b := servers[0], servers[1]
	ana := a.signup("ana")
	general := a.roomID("general", a.user("ana").ID)
	room := fmt.Sprintf("/rooms/%d", general)
	ana.get(room)
	onB := ana.on(b)
	accepted := 0
	for i := 0; i < 20; i++ {
		c := ana
		if i%2 == 1 {
			c = onB
		}
		if resp, _ := c.post(room+"/messages", url.Values{"text": {fmt.Sprintf("flood %d", i)}}); resp.StatusCode == http.StatusSeeOther {
			accepted++
		}
	}
	if accepted < 10 || accepted > 12 {
		t.Fatalf("%d of 20 sends accepted over two instances, want about the burst of 10", accepted)
	}
}
