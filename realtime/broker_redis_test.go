package realtime_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"switchboard/realtime"
	"switchboard/realtime/redistest"
)

// redisWait bounds waits that span a Redis outage and go-redis's reconnect pacing.
const redisWait = 20 * time.Second

// instance is one Switchboard process's realtime half: a hub on its own RedisBroker.
type instance struct {
	hub    *realtime.Hub
	broker *realtime.RedisBroker
	runErr chan error // receives Run's result once it returns
}

// newInstance starts a hub on a new RedisBroker for url. The cleanup cancels Run, checks it returned nil, and
// closes the broker.
func newInstance(t testing.TB, url string) *instance {
	t.Helper()
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
	b, err := realtime.NewRedisBroker(url, log)
	if err != nil {
		t.Fatalf("NewRedisBroker(%q): %v", url, err)
	}
	in := &instance{hub: realtime.NewHub(b, log), broker: b, runErr: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { in.runErr <- in.hub.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-in.runErr:
			if err != nil {
				t.Errorf("Run returned %v after cancel, want nil", err)
			}
		case <-time.After(waitTimeout):
			t.Error("Run did not return after cancel")
		}
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return in
}

// resynced waits for the broker's next Resynced signal.
func (in *instance) resynced(t testing.TB, why string) {
	t.Helper()
	select {
	case <-in.broker.Resynced():
	case err := <-in.runErr:
		t.Fatalf("Run returned %v while waiting for a resync (%s)", err, why)
	case <-time.After(redisWait):
		t.Fatalf("no Resynced signal %s", why)
	}
}

// attached waits until Run has handed the broker its deliver function, which Publish's local fallback needs
// while Redis is down (before that, a publish that Redis does not take reaches no one on this instance). It
// publishes probes on a topic of its own until one arrives.
func (in *instance) attached(t testing.TB) {
	t.Helper()
	topic := uniqueTopic(t)
	s := in.hub.Subscribe(1, topic)
	defer in.hub.Unsubscribe(s)
	deadline := time.Now().Add(waitTimeout)
	for {
		_ = in.hub.Publish(context.Background(), &realtime.Message{Topic: topic})
		select {
		case <-s.C():
			return
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("Run did not attach the hub in time")
		}
	}
}

// running fails the test if Run has returned.
func (in *instance) running(t testing.TB) {
	t.Helper()
	select {
	case err := <-in.runErr:
		t.Fatalf("Run returned %v while Redis was only away", err)
	default:
	}
}

// uniqueTopic returns a topic no other test uses, even against a shared TEST_REDIS_URL.
func uniqueTopic(t testing.TB) string {
	return fmt.Sprintf("test:%s:%x", t.Name(), rand.Uint64())
}

// waitFor polls cond until it holds, failing the test after d.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// quiet fails the test if s receives anything within d.
func quiet(t testing.TB, s *realtime.Subscriber, d time.Duration) {
	t.Helper()
	select {
	case m := <-s.C():
		t.Fatalf("unexpected extra message id %d", m.ID)
	case <-time.After(d):
	}
}

func TestRedisBrokerAcrossInstances(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	a, b := newInstance(t, srv.URL), newInstance(t, srv.URL)
	a.resynced(t, "after the first subscription of A")
	b.resynced(t, "after the first subscription of B")
	waitFor(t, waitTimeout, "both brokers healthy", func() bool { return a.broker.Healthy() && b.broker.Healthy() })

	const n = 1000
	topic := uniqueTopic(t)
	onB := b.hub.Subscribe(n+1, topic)
	onA := a.hub.Subscribe(n+1, topic) // the publisher's own instance hears it through Redis, once
	other := b.hub.Subscribe(1, uniqueTopic(t))

	payload := func(i int) []byte { return []byte("<p>" + strconv.Itoa(i) + "</p>\x00\xff") }
	for i := 1; i <= n; i++ {
		publish(t, a.hub, &realtime.Message{Topic: topic, ID: int64(i), Data: payload(i)})
	}
	for _, s := range []*realtime.Subscriber{onB, onA} {
		for i := 1; i <= n; i++ {
			m := recv(t, s)
			if m.Topic != topic || m.ID != int64(i) || m.Close != 0 || !bytes.Equal(m.Data, payload(i)) {
				t.Fatalf("message %d: got topic %q id %d close %d data %q", i, m.Topic, m.ID, m.Close, m.Data)
			}
		}
	}
	quiet(t, onB, 100*time.Millisecond)
	quiet(t, onA, 0)
	quiet(t, other, 0)

	// A control message closes the topic's subscribers on every instance, and no one else.
	publish(t, a.hub, &realtime.Message{Topic: topic, Close: realtime.ClosePolicyViolation})
	for name, s := range map[string]*realtime.Subscriber{"B": onB, "A": onA} {
		select {
		case <-s.Done():
			if got := s.CloseCode(); got != realtime.ClosePolicyViolation {
				t.Errorf("subscriber on %s closed with %d, want %d", name, got, realtime.ClosePolicyViolation)
			}
		case <-time.After(waitTimeout):
			t.Errorf("subscriber on %s not closed by the control message", name)
		}
	}
	select {
	case <-other.Done():
		t.Error("a subscriber of another topic was closed")
	default:
	}
}

func TestRedisBrokerRestartWhileFlowing(t *testing.T) {
	t.Parallel()
	srv := redistest.StartLocal(t)
	a, b := newInstance(t, srv.URL), newInstance(t, srv.URL)
	a.resynced(t, "after the first subscription of A")
	b.resynced(t, "after the first subscription of B")

	topic := uniqueTopic(t)
	onB := b.hub.Subscribe(1<<16, topic)
	onA := a.hub.Subscribe(1<<16, topic)

	// The publisher sends ids 1, 2, 3, ... every millisecond until stopped; a failed publish is expected while
	// Redis is away and must wrap ErrLocalOnly.
	var (
		lastSent  atomic.Int64
		localOnly atomic.Int64
		stop      = make(chan struct{})
		pubDone   = make(chan struct{})
	)
	go func() {
		defer close(pubDone)
		for id := int64(1); ; id++ {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			err := a.hub.Publish(context.Background(), &realtime.Message{Topic: topic, ID: id, Data: []byte("x")})
			if err != nil {
				if !errors.Is(err, realtime.ErrLocalOnly) {
					t.Errorf("publish %d: %v, want an error wrapping ErrLocalOnly", id, err)
				}
				localOnly.Add(1)
			}
			lastSent.Store(id)
		}
	}()

	// Each receiver checks that ids only increase (nothing twice, order kept) and records the newest.
	type seen struct{ last, count atomic.Int64 }
	var seenA, seenB seen
	var wg sync.WaitGroup
	for _, r := range []struct {
		name string
		s    *realtime.Subscriber
		seen *seen
	}{{"A", onA, &seenA}, {"B", onB, &seenB}} {
		wg.Go(func() {
			for {
				select {
				case m := <-r.s.C():
					if last := r.seen.last.Load(); m.ID <= last {
						t.Errorf("%s: id %d after %d (duplicate or out of order)", r.name, m.ID, last)
					}
					r.seen.last.Store(m.ID)
					r.seen.count.Add(1)
				case <-r.s.Done():
					return
				}
			}
		})
	}

	waitFor(t, waitTimeout, "B to receive 50 messages", func() bool { return seenB.count.Load() >= 50 })

	srv.Stop()
	waitFor(t, redisWait, "both brokers to report unhealthy", func() bool {
		return !a.broker.Healthy() && !b.broker.Healthy()
	})
	// While Redis is away, A's own subscribers still get A's publishes (locally).
	mark := lastSent.Load()
	waitFor(t, waitTimeout, "A's subscriber to get a message published during the outage", func() bool {
		return seenA.last.Load() > mark
	})
	a.running(t)
	b.running(t)

	srv.Restart()
	a.resynced(t, "after the restart (A)")
	b.resynced(t, "after the restart (B)")
	waitFor(t, redisWait, "both brokers to report healthy", func() bool {
		return a.broker.Healthy() && b.broker.Healthy()
	})
	mark = lastSent.Load()
	waitFor(t, redisWait, "B to receive messages published after the restart", func() bool {
		return seenB.last.Load() > mark+20
	})

	close(stop)
	<-pubDone
	final := lastSent.Load()
	waitFor(t, waitTimeout, "the last message to reach A and B", func() bool {
		return seenA.last.Load() == final && seenB.last.Load() == final
	})
	onA.Close(realtime.CloseNormalClosure)
	onB.Close(realtime.CloseNormalClosure)
	wg.Wait()
	a.running(t)
	b.running(t)
	if localOnly.Load() == 0 {
		t.Error("no publish failed while Redis was stopped")
	}
	t.Logf("sent %d; A got %d, B got %d (Redis pub/sub is at-most-once: B misses the outage); %d delivered locally only",
		final, seenA.count.Load(), seenB.count.Load(), localOnly.Load())
}

func TestRedisBrokerDownAtStart(t *testing.T) {
	t.Parallel()
	srv := redistest.StartLocal(t)
	srv.Stop()
	a, b := newInstance(t, srv.URL), newInstance(t, srv.URL)

	a.attached(t)

	topic := uniqueTopic(t)
	onA := a.hub.Subscribe(16, topic)
	onB := b.hub.Subscribe(16, topic)

	// Without Redis, A's publish fails but still reaches A's own subscribers.
	err := a.hub.Publish(context.Background(), &realtime.Message{Topic: topic, ID: 1, Data: []byte("one")})
	if !errors.Is(err, realtime.ErrLocalOnly) {
		t.Fatalf("publish with Redis down: %v, want an error wrapping ErrLocalOnly", err)
	}
	if m := recv(t, onA); m.ID != 1 || string(m.Data) != "one" {
		t.Fatalf("A got id %d %q, want 1 \"one\"", m.ID, m.Data)
	}
	if a.broker.Healthy() || b.broker.Healthy() {
		t.Error("a broker reports healthy with Redis down")
	}
	quiet(t, onB, 50*time.Millisecond)
	a.running(t)

	srv.Restart()
	a.resynced(t, "once Redis is up (A)")
	b.resynced(t, "once Redis is up (B)")
	waitFor(t, waitTimeout, "both brokers healthy", func() bool { return a.broker.Healthy() && b.broker.Healthy() })

	publish(t, a.hub, &realtime.Message{Topic: topic, ID: 2, Data: []byte("two")})
	for name, s := range map[string]*realtime.Subscriber{"A": onA, "B": onB} {
		if m := recv(t, s); m.ID != 2 || string(m.Data) != "two" {
			t.Fatalf("%s got id %d %q, want 2 \"two\"", name, m.ID, m.Data)
		}
	}
	quiet(t, onA, 100*time.Millisecond) // delivered through Redis only, not also locally
	quiet(t, onB, 0)
}

// TestRedisBrokerHungServer pauses every client (the server accepts and reads but answers nothing): the idle
// ping goes unanswered, Run replaces the connection and reports unhealthy, then recovers when the pause ends. It
// also shows that an idle but live subscription is not torn down by the ping.
func TestRedisBrokerHungServer(t *testing.T) {
	if testing.Short() {
		t.Skip("takes about 10 s")
	}
	t.Parallel()
	srv := redistest.StartLocal(t)
	a := newInstance(t, srv.URL)
	a.resynced(t, "after the first subscription")

	// Idle for more than two ping rounds: no resubscription, still healthy.
	time.Sleep(7 * time.Second)
	select {
	case <-a.broker.Resynced():
		t.Fatal("an idle, live subscription was resubscribed")
	default:
	}
	if !a.broker.Healthy() {
		t.Fatal("unhealthy after an idle period")
	}

	opt, err := redis.ParseURL(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	admin := redis.NewClient(opt)
	defer admin.Close()
	if err := admin.Do(context.Background(), "CLIENT", "PAUSE", "9000", "ALL").Err(); err != nil {
		t.Fatalf("CLIENT PAUSE: %v", err)
	}
	waitFor(t, 9*time.Second, "unhealthy while the server hangs", func() bool { return !a.broker.Healthy() })
	a.resynced(t, "after the pause ends")
	waitFor(t, waitTimeout, "healthy again", a.broker.Healthy)
	a.running(t)

	topic := uniqueTopic(t)
	s := a.hub.Subscribe(1, topic)
	publish(t, a.hub, &realtime.Message{Topic: topic, ID: 7})
	if m := recv(t, s); m.ID != 7 {
		t.Fatalf("got id %d, want 7", m.ID)
	}
}

// BenchmarkRedisPublishDeliver measures a message's trip from Publish on one instance to a subscriber's queue on
// another: "roundtrip" publishes and waits for each message in turn (latency), "parallel" publishes from
// GOMAXPROCS goroutines at once, like many users sending (throughput).
func BenchmarkRedisPublishDeliver(b *testing.B) {
	srv := redistest.Start(b)
	data := bytes.Repeat([]byte("x"), 200) // about one rendered chat message
	for _, mode := range []string{"roundtrip", "parallel"} {
		b.Run(mode, func(b *testing.B) {
			pub, sub := newInstance(b, srv.URL), newInstance(b, srv.URL)
			pub.resynced(b, "publisher subscribed")
			sub.resynced(b, "subscriber subscribed")
			topic := uniqueTopic(b)
			s := sub.hub.Subscribe(b.N+1, topic)
			ctx := context.Background()
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			b.ResetTimer()
			if mode == "roundtrip" {
				for i := range b.N {
					if err := pub.hub.Publish(ctx, &realtime.Message{Topic: topic, ID: int64(i + 1), Data: data}); err != nil {
						b.Fatal(err)
					}
					recv(b, s)
				}
				return
			}
			var got int
			done := make(chan struct{})
			go func() {
				defer close(done)
				for ; got < b.N; got++ {
					select {
					case <-s.C():
					case <-time.After(waitTimeout):
						return
					}
				}
			}()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := pub.hub.Publish(ctx, &realtime.Message{Topic: topic, Data: data}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			<-done
			if got != b.N {
				b.Fatalf("received %d of %d messages (subscriber closed with %d)", got, b.N, s.CloseCode())
			}
		})
	}
}
