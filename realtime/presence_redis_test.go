package realtime

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"switchboard/realtime/redistest"
)

// presenceTracker is what the handlers need of a presence tracker; both implementations provide it, so the
// handlers can take either (they declare their own copy of this interface where they consume it).
type presenceTracker interface {
	Connect(room, user int64)
	Disconnect(room, user int64)
	Online(room int64) []int64
	Close()
}

var (
	_ presenceTracker = (*Presence)(nil)
	_ presenceTracker = (*RedisPresence)(nil)
)

const (
	// rpLinger is short so the tests are quick, and long enough that "within linger" is not a race.
	rpLinger = 100 * time.Millisecond
	// rpLease is the lease in these tests: a crashed instance's users are gone about a second later.
	rpLease = 900 * time.Millisecond
	// rpWait bounds waits that may span a Redis restart and the leases being registered again.
	rpWait = 20 * time.Second
	// rpSettle is how long a settled instance must stay quiet apart from repeats of the same online set.
	rpSettle = 50 * time.Millisecond
)

// rpInstance is one Switchboard instance's presence tracker, with the online sets its onChange calls saw.
type rpInstance struct {
	*RedisPresence
	name    string
	room    int64
	changes chan []int64
	logs    *recordingHandler
}

// newRPInstance starts a RedisPresence on url with the test lease. Its onChange reads Online inside the callback,
// as the handlers do, and sends the result on changes; it reports a call for any room but room.
func newRPInstance(t *testing.T, url, name string, room int64) *rpInstance {
	t.Helper()
	in := &rpInstance{name: name, room: room, changes: make(chan []int64, 256), logs: &recordingHandler{}}
	ready := make(chan struct{})
	p, err := newRedisPresence(url, rpLinger, rpLease, func(r int64) {
		<-ready
		if r != room {
			t.Errorf("%s: onChange(%d), want room %d", name, r, room)
		}
		select {
		case in.changes <- in.Online(r): // calling back in must not deadlock
		default:
			t.Errorf("%s: onChange calls pile up", name)
		}
	}, slog.New(in.logs))
	if err != nil {
		t.Fatalf("newRedisPresence(%q): %v", url, err)
	}
	in.RedisPresence = p
	close(ready)
	t.Cleanup(p.Close)
	return in
}

// waitSubscribed waits until the notice subscription is confirmed, so no notice sent afterwards is missed.
func (in *rpInstance) waitSubscribed(t *testing.T) {
	t.Helper()
	rpWaitFor(t, in.name+" subscribed", func() bool { return in.subscribed.Load() })
}

// settle waits for an onChange that saw want, then for quiet: repeats of want are tolerated (a notice and the
// instance's own change can race), any other set is not.
func (in *rpInstance) settle(t *testing.T, want []int64) {
	t.Helper()
	deadline := time.After(rpWait)
	for {
		select {
		case got := <-in.changes:
			if !slices.Equal(got, want) {
				t.Logf("%s: passing onChange with online %v on the way to %v", in.name, got, want)
				continue
			}
		case <-deadline:
			t.Fatalf("%s: no onChange with online %v within %v (now online %v)", in.name, want, rpWait,
				in.Online(in.room))
		}
		break
	}
	for {
		select {
		case got := <-in.changes:
			if !slices.Equal(got, want) {
				t.Fatalf("%s: onChange saw online %v after settling on %v", in.name, got, want)
			}
		case <-time.After(rpSettle):
			return
		}
	}
}

// quiet fails the test if onChange is called within d.
func (in *rpInstance) quiet(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case got := <-in.changes:
		t.Fatalf("%s: unexpected onChange with online %v", in.name, got)
	default:
	}
	select {
	case got := <-in.changes:
		t.Fatalf("%s: unexpected onChange with online %v", in.name, got)
	case <-time.After(d):
	}
}

// expectOnline checks Online(room) now.
func (in *rpInstance) expectOnline(t *testing.T, room int64, want []int64) {
	t.Helper()
	if got := in.Online(room); !slices.Equal(got, want) {
		t.Fatalf("%s: Online(%d) = %v, want %v", in.name, room, got, want)
	}
}

// rpWaitFor polls cond until it holds, failing the test after rpWait.
func rpWaitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(rpWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", rpWait, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// rpRoom returns a room id of the test's own, so a shared Redis (TEST_REDIS_URL) with leftovers of earlier runs
// does not disturb it.
func rpRoom() int64 { return rand.Int64N(1<<40) + 1 }

// twoInstances returns instances A and B on url, subscribed, with user 1 online on A and user 2 on B in room, and
// every onChange of getting there consumed.
func twoInstances(t *testing.T, url string, room int64) (a, b *rpInstance) {
	t.Helper()
	a, b = newRPInstance(t, url, "A", room), newRPInstance(t, url, "B", room)
	a.waitSubscribed(t)
	b.waitSubscribed(t)
	a.Connect(room, 1)
	a.settle(t, []int64{1})
	b.Connect(room, 2)
	b.settle(t, []int64{1, 2})
	a.settle(t, []int64{1, 2})
	return a, b
}

func TestRedisPresenceAcrossInstances(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	room := rpRoom()
	a, b := newRPInstance(t, srv.URL, "A", room), newRPInstance(t, srv.URL, "B", room)
	a.waitSubscribed(t)
	b.waitSubscribed(t)

	a.Connect(room, 1)
	a.settle(t, []int64{1})
	b.expectOnline(t, room, []int64{1})
	b.quiet(t, rpSettle) // B has nobody in the room: it is not told

	b.Connect(room, 2)
	b.settle(t, []int64{1, 2})
	a.settle(t, []int64{1, 2})
	a.expectOnline(t, room, []int64{1, 2})
	b.expectOnline(t, room, []int64{1, 2})
	a.expectOnline(t, room+1, []int64{})

	b.Connect(room, 2) // a second tab is not a change
	a.Connect(room, 2) // nor is the same user on another instance
	a.quiet(t, 3*rpLinger)
	b.quiet(t, rpSettle)
	a.expectOnline(t, room, []int64{1, 2})

	// Leases are renewed: well past the lease, everyone is still there and nothing changed.
	time.Sleep(2 * rpLease)
	a.quiet(t, 0)
	b.quiet(t, 0)
	a.expectOnline(t, room, []int64{1, 2})
	b.expectOnline(t, room, []int64{1, 2})
}

func TestRedisPresenceReconnectWithinLingerDoesNotFlap(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	room := rpRoom()
	a, b := twoInstances(t, srv.URL, room)

	// Same instance.
	a.Disconnect(room, 1)
	a.expectOnline(t, room, []int64{1, 2})
	b.expectOnline(t, room, []int64{1, 2})
	a.Connect(room, 1)
	a.quiet(t, 3*rpLinger)
	b.quiet(t, 0)
	b.expectOnline(t, room, []int64{1, 2})

	// Another instance (the load balancer sent the reconnect elsewhere): A's lease goes after linger, B's holds.
	a.Disconnect(room, 1)
	b.Connect(room, 1)
	a.quiet(t, 3*rpLinger)
	b.quiet(t, 0)
	a.expectOnline(t, room, []int64{1, 2})
	b.expectOnline(t, room, []int64{1, 2})
}

func TestRedisPresenceDisconnectGoesOfflineAfterLinger(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	room := rpRoom()
	a, b := twoInstances(t, srv.URL, room)
	a.Connect(room, 3) // A keeps someone in the room
	a.settle(t, []int64{1, 2, 3})
	b.settle(t, []int64{1, 2, 3})

	start := time.Now()
	a.Disconnect(room, 1)
	b.settle(t, []int64{2, 3})
	if waited := time.Since(start); waited < rpLinger {
		t.Fatalf("user 1 went offline after %v, before linger %v", waited, rpLinger)
	}
	a.settle(t, []int64{2, 3})
	a.expectOnline(t, room, []int64{2, 3})

	b.Disconnect(room, 2)
	a.settle(t, []int64{3})
	b.settle(t, []int64{3}) // its own change, though B has nobody left in the room
	b.expectOnline(t, room, []int64{3})

	b.Disconnect(room, 2) // unbalanced: ignored
	b.quiet(t, 2*rpLinger)
}

func TestRedisPresenceCrashedInstanceExpires(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	room := rpRoom()
	a, b := twoInstances(t, srv.URL, room)
	b.Connect(room, 1) // user 1 has a tab on B too
	b.quiet(t, rpSettle)

	start := time.Now()
	a.Close() // stops renewing without disconnecting anyone, as a crash would
	b.expectOnline(t, room, []int64{1, 2})
	// User 1 leaves B: A's lease still holds them online (its last renewal was at most a third of a lease ago).
	b.Disconnect(room, 1)
	b.quiet(t, 2*rpLinger)
	b.expectOnline(t, room, []int64{1, 2})
	b.settle(t, []int64{2}) // then A's lease ends
	if waited := time.Since(start); waited > rpLease+rpLease/3+2*time.Second {
		t.Fatalf("a crashed instance's user went offline after %v; the lease is %v", waited, rpLease)
	}
	b.expectOnline(t, room, []int64{2})
	t.Logf("crashed instance's user offline after %v (lease %v)", time.Since(start), rpLease)
}

func TestRedisPresenceRedisRestart(t *testing.T) {
	t.Parallel()
	srv := redistest.StartLocal(t)
	room := rpRoom()
	a, b := twoInstances(t, srv.URL, room)

	srv.Restart() // an empty dataset: every lease and cached script is gone
	rdb := rpClient(t, srv.URL)
	start := time.Now()
	rpWaitFor(t, "the leases registered again", func() bool {
		users, _ := rdb.ZRange(context.Background(), roomPresenceKey(room), 0, -1).Result()
		return slices.Equal(users, []string{"1", "2"})
	})
	t.Logf("leases back %v after the restart", time.Since(start))
	a.settle(t, []int64{1, 2})
	b.settle(t, []int64{1, 2})
	a.expectOnline(t, room, []int64{1, 2})
	b.expectOnline(t, room, []int64{1, 2})

	// Notices flow again.
	b.waitSubscribed(t)
	a.Connect(room, 3)
	a.settle(t, []int64{1, 2, 3})
	b.settle(t, []int64{1, 2, 3})
}

func TestRedisPresenceRedisDown(t *testing.T) {
	t.Parallel()
	srv := redistest.StartLocal(t)
	room := rpRoom()
	a, b := twoInstances(t, srv.URL, room)

	srv.Stop()
	start := time.Now()
	a.Connect(room, 5)
	a.Disconnect(room, 1)
	a.Connect(room, 1)
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Errorf("Connect and Disconnect took %v with Redis down; they must not wait for it", d)
	}
	a.settle(t, []int64{1, 5}) // local knowledge: B's user is out of sight
	for range 20 {
		start := time.Now()
		a.expectOnline(t, room, []int64{1, 5})
		if d := time.Since(start); d > presenceReadTimeout+100*time.Millisecond {
			t.Fatalf("Online took %v with Redis down", d)
		}
	}
	b.Connect(room, 6)
	b.settle(t, []int64{2, 6})
	time.Sleep(3 * presenceRetry) // several failed probes
	if n := a.logs.count(slog.LevelWarn, "unavailable"); n != 1 {
		t.Errorf("A logged the outage %d times, want once; its log:\n%s", n, a.logs)
	}

	srv.Restart()
	want := []int64{1, 2, 5, 6}
	a.settle(t, want)
	b.settle(t, want)
	a.expectOnline(t, room, want)
	b.expectOnline(t, room, want)
	for _, in := range []*rpInstance{a, b} {
		if n := in.logs.count(slog.LevelWarn, "unavailable"); n != 1 {
			t.Errorf("%s logged the outage %d times, want once; its log:\n%s", in.name, n, in.logs)
		}
		if n := in.logs.count(slog.LevelInfo, "restored"); n != 1 {
			t.Errorf("%s logged the recovery %d times, want once; its log:\n%s", in.name, n, in.logs)
		}
	}
}

func TestRedisPresenceUnreachableAtStart(t *testing.T) {
	t.Parallel()
	url := "redis://" + rpDeadAddr(t)
	room := rpRoom()
	a := newRPInstance(t, url, "A", room)
	start := time.Now()
	a.Connect(room, 1)
	a.Connect(room, 2)
	a.settle(t, []int64{1, 2})
	a.expectOnline(t, room, []int64{1, 2})
	a.Disconnect(room, 2)
	a.settle(t, []int64{1})
	t.Logf("without Redis: online, offline and answers within %v", time.Since(start))
	closed := time.Now()
	a.Close()
	if d := time.Since(closed); d > 2*presenceWriteTimeout {
		t.Errorf("Close took %v", d)
	}
	a.Connect(room, 3) // after Close: ignored
	a.quiet(t, 2*rpLinger)
}

func TestNewRedisPresenceRejectsBadURL(t *testing.T) {
	t.Parallel()
	if _, err := NewRedisPresence("http://localhost", time.Second, nil, nil); err == nil {
		t.Fatal("NewRedisPresence accepted an http URL")
	}
}

// rpClient returns a Redis client for inspecting the server at url.
func rpClient(t *testing.T, url string) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// rpDeadAddr returns host:port where nothing listens (a port that was free a moment ago).
func rpDeadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// recordingHandler is a slog.Handler that keeps every record's level and message, to count how often something
// was logged.
type recordingHandler struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r)
	return nil
}

func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler      { return h }

// count returns how many records of level have a message containing substr.
func (h *recordingHandler) count(level slog.Level, substr string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, r := range h.records {
		if r.Level == level && strings.Contains(r.Message, substr) {
			n++
		}
	}
	return n
}

// String lists the records, for failure messages.
func (h *recordingHandler) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var b strings.Builder
	for _, r := range h.records {
		b.WriteString(r.Level.String() + " " + r.Message)
		r.Attrs(func(a slog.Attr) bool {
			b.WriteString(" " + a.String())
			return true
		})
		b.WriteString("\n")
	}
	return b.String()
}

func TestRedisPresenceHungServerDoesNotBlockCallers(t *testing.T) {
	t.Parallel()
	room := rpRoom()
	a := newRPInstance(t, "redis://"+rpHungAddr(t), "A", room)
	start := time.Now()
	a.Connect(room, 1)
	a.Connect(room, 2)
	a.Connect(room, 2)
	a.Disconnect(room, 2)
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Errorf("Connect and Disconnect took %v against a server that never answers", d)
	}
	for range 3 {
		start := time.Now()
		a.expectOnline(t, room, []int64{1, 2})
		if d := time.Since(start); d > presenceReadTimeout+200*time.Millisecond {
			t.Errorf("Online took %v against a server that never answers; the bound is %v", d, presenceReadTimeout)
		}
	}
	a.settle(t, []int64{1, 2})
	rpWaitFor(t, "the outage to be logged", func() bool { return a.logs.count(slog.LevelWarn, "unavailable") > 0 })
	time.Sleep(2 * presenceRetry) // probes that time out
	if n := a.logs.count(slog.LevelWarn, "unavailable"); n != 1 {
		t.Errorf("the outage was logged %d times, want once; the log:\n%s", n, a.logs)
	}
	start = time.Now()
	a.Close()
	if d := time.Since(start); d > presenceWriteTimeout+500*time.Millisecond {
		t.Errorf("Close took %v against a server that never answers", d)
	}
}

// rpHungAddr returns host:port of a server that accepts connections and reads whatever is sent, but never answers.
func rpHungAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				buf := make([]byte, 4096)
				for {
					if _, err := c.Read(buf); err != nil {
						return
					}
				}
			})
		}
	})
	return l.Addr().String()
}

// TestRedisPresenceNoticesBypassTheBroker runs a RedisBroker next to presence on one Redis: the broker's pattern
// subscription (sb:*) must not see the presence notices, which it could not decode.
func TestRedisPresenceNoticesBypassTheBroker(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	logs := &recordingHandler{}
	b, err := NewRedisBroker(srv.URL, slog.New(logs))
	if err != nil {
		t.Fatal(err)
	}
	hub := NewHub(b, slog.New(logs))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- hub.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = b.Close()
	})
	rpWaitFor(t, "the broker subscribed", b.Healthy)

	room := rpRoom()
	a, c := twoInstances(t, srv.URL, room)
	a.Disconnect(room, 1)
	c.settle(t, []int64{2})
	if n := logs.count(slog.LevelWarn, "undecodable"); n != 0 {
		t.Fatalf("the broker dropped %d presence notices as undecodable messages; the log:\n%s", n, logs)
	}
}
