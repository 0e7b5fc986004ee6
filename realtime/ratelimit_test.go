package realtime

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"switchboard/realtime/redistest"
)

// rateLimiter is what the handlers need of a limiter; both implementations provide it (the handlers declare their
// own copy where they consume it).
type rateLimiter interface {
	Allow(key string) bool
}

var (
	_ rateLimiter = (*RedisRateLimiter)(nil)
	_ rateLimiter = (*LocalRateLimiter)(nil)
)

const (
	rlRate  = 10.0 // tokens a second: one every rlEvery
	rlBurst = 5
	rlEvery = 100 * time.Millisecond
)

// rlKey returns a key of the test's own, so a shared Redis (TEST_REDIS_URL) with leftovers does not disturb it.
func rlKey(name string) string {
	return name + "-" + strconv.FormatUint(rand.Uint64(), 36)
}

// newRedisLimiter returns a RedisRateLimiter on url with rlRate and rlBurst, closed at cleanup.
func newRedisLimiter(t *testing.T, url string, logs *recordingHandler) *RedisRateLimiter {
	t.Helper()
	if logs == nil {
		logs = &recordingHandler{}
	}
	l, err := NewRedisRateLimiter(url, rlRate, rlBurst, slog.New(logs))
	if err != nil {
		t.Fatalf("NewRedisRateLimiter(%q): %v", url, err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// burst makes n quick calls for key, spread round-robin over limiters, and returns how many were allowed and how
// long the calls took from the first start to the last end.
func burst(limiters []rateLimiter, key string, n int) (allowed int, took time.Duration) {
	start := time.Now()
	for i := range n {
		if limiters[i%len(limiters)].Allow(key) {
			allowed++
		}
	}
	return allowed, time.Since(start)
}

// expectAllowed checks a count of allowed calls against a bucket that held base tokens when the calls started and
// refilled for at most took while they ran: exactly base when they were quicker than one token.
func expectAllowed(t *testing.T, what string, allowed, base int, took time.Duration) {
	t.Helper()
	most := base + int(took/rlEvery)
	if allowed < base || allowed > most {
		t.Fatalf("%s: %d allowed in %v, want %d (at most %d at this pace)", what, allowed, took, base, most)
	}
}

func TestRedisRateLimiterSharedAcrossInstances(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	a, b := newRedisLimiter(t, srv.URL, nil), newRedisLimiter(t, srv.URL, nil)
	both := []rateLimiter{a, b}
	key := rlKey("user")

	burstStart := time.Now()
	allowed, took := burst(both, key, 2*rlBurst)
	burstEnd := burstStart.Add(took)
	expectAllowed(t, "burst over two instances", allowed, rlBurst, took)
	t.Logf("burst: %d of %d allowed in %v", allowed, 2*rlBurst, took)

	// Other keys have buckets of their own.
	other := rlKey("other")
	allowed, took = burst(both, other, 2*rlBurst)
	expectAllowed(t, "another key", allowed, rlBurst, took)

	// Then the rate: steady calls for about a second get one token every rlEvery, counted from the burst to the
	// last call (the bucket never fills up meanwhile, so no token is lost).
	var got int
	var lastStart, lastEnd time.Time
	for i := 0; time.Since(burstStart) < time.Second; i++ {
		lastStart = time.Now()
		if both[i%2].Allow(key) {
			got++
		}
		lastEnd = time.Now()
		time.Sleep(5 * time.Millisecond)
	}
	least, most := int(lastStart.Sub(burstEnd)/rlEvery), int(lastEnd.Sub(burstStart)/rlEvery)
	if got < least || got > most {
		t.Fatalf("%d allowed in %v of steady calls after the burst, want %d..%d (%v/s)", got,
			lastEnd.Sub(burstStart), least, most, rlRate)
	}
	t.Logf("rate: %d allowed in %v after the burst", got, lastEnd.Sub(burstStart))
}

func TestRedisRateLimiterConcurrent(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	limiters := []*RedisRateLimiter{newRedisLimiter(t, srv.URL, nil), newRedisLimiter(t, srv.URL, nil)}
	key := rlKey("concurrent")
	var allowed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for g := range 8 {
		wg.Go(func() {
			for range 5 {
				if limiters[g%2].Allow(key) {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	expectAllowed(t, "40 concurrent calls", int(allowed.Load()), rlBurst, time.Since(start))
}

func TestRedisRateLimiterFallsBackWhenRedisIsDown(t *testing.T) {
	t.Parallel()
	srv := redistest.StartLocal(t)
	logs := &recordingHandler{}
	l := newRedisLimiter(t, srv.URL, logs)
	if !l.Allow(rlKey("warm")) {
		t.Fatal("the first call was refused")
	}

	srv.Stop()
	key := rlKey("down")
	start := time.Now()
	allowed, took := burst([]rateLimiter{l}, key, 2*rlBurst)
	expectAllowed(t, "Redis down", allowed, rlBurst, took)
	if d := time.Since(start); d > rateTimeout+100*time.Millisecond {
		t.Errorf("10 calls took %v with Redis down", d)
	}
	time.Sleep(2 * rateRetry) // failed probes in the background
	l.Allow(key)
	if n := logs.count(slog.LevelWarn, "unavailable"); n != 1 {
		t.Errorf("the outage was logged %d times, want once; the log:\n%s", n, logs)
	}

	srv.Restart()
	rdb := rpClient(t, srv.URL)
	probe := rlKey("back")
	rpWaitFor(t, "the limiter to use Redis again", func() bool {
		l.Allow(probe)
		n, _ := rdb.Exists(context.Background(), rateKeyPrefix+probe).Result()
		return n == 1
	})
	if n := logs.count(slog.LevelInfo, "restored"); n != 1 {
		t.Errorf("the recovery was logged %d times, want once; the log:\n%s", n, logs)
	}
	// Back on Redis, which lost everything in the restart (NOSCRIPT: the script is sent again).
	fresh := rlKey("fresh")
	allowed, took = burst([]rateLimiter{l}, fresh, 2*rlBurst)
	expectAllowed(t, "after the restart", allowed, rlBurst, took)
}

func TestRedisRateLimiterUnreachableAtStart(t *testing.T) {
	t.Parallel()
	l := newRedisLimiter(t, "redis://"+rpDeadAddr(t), nil)
	allowed, took := burst([]rateLimiter{l}, "k", 2*rlBurst)
	expectAllowed(t, "no Redis", allowed, rlBurst, took)
}

func TestRedisRateLimiterKeysExpire(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	l := newRedisLimiter(t, srv.URL, nil)
	rdb := rpClient(t, srv.URL)
	key := rlKey("ttl")
	l.Allow(key)
	ttl, err := rdb.PTTL(context.Background(), rateKeyPrefix+key).Result()
	if err != nil {
		t.Fatal(err)
	}
	// One token taken: the bucket is full again one interval later, and the key goes then.
	if ttl <= 0 || ttl > rlEvery+10*time.Millisecond {
		t.Fatalf("%s expires in %v, want about %v", rateKeyPrefix+key, ttl, rlEvery)
	}
}

func TestNewRedisRateLimiterRejectsBadArguments(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		url   string
		rate  float64
		burst int
	}{
		{"http://localhost", 1, 1},
		{"redis://localhost:6379", 0, 1},
		{"redis://localhost:6379", -1, 1},
		{"redis://localhost:6379", 1, 0},
	} {
		if l, err := NewRedisRateLimiter(c.url, c.rate, c.burst, nil); err == nil {
			_ = l.Close()
			t.Errorf("NewRedisRateLimiter(%q, %v, %d) succeeded", c.url, c.rate, c.burst)
		}
	}
}

func TestLocalRateLimiter(t *testing.T) {
	t.Parallel()
	l := NewLocalRateLimiter(rlRate, rlBurst)
	allowed, took := burst([]rateLimiter{l}, "a", 2*rlBurst)
	expectAllowed(t, "burst", allowed, rlBurst, took)
	allowed, took = burst([]rateLimiter{l}, "b", 2*rlBurst)
	expectAllowed(t, "another key", allowed, rlBurst, took)

	time.Sleep(rlEvery + rlEvery/2)
	allowed, took = burst([]rateLimiter{l}, "a", 2*rlBurst)
	if allowed < 1 || allowed > 2+int(took/rlEvery) {
		t.Fatalf("%d allowed after %v, want 1", allowed, rlEvery+rlEvery/2)
	}
}

func TestLocalRateLimiterPrunesFullBuckets(t *testing.T) {
	t.Parallel()
	l := NewLocalRateLimiter(1000, 2) // full again 2 ms after use
	l.pruneEvery = time.Millisecond
	for i := range 100 {
		l.Allow(strconv.Itoa(i))
	}
	time.Sleep(10 * time.Millisecond)
	l.Allow("last")
	if n := l.size(); n != 1 {
		t.Fatalf("%d buckets kept, want 1", n)
	}

	never := NewLocalRateLimiter(0, 1) // a budget for life: never pruned
	never.pruneEvery = time.Millisecond
	if !never.Allow("k") || never.Allow("k") {
		t.Fatal("rate 0, burst 1: want one call allowed, then none")
	}
	time.Sleep(5 * time.Millisecond)
	never.Allow("other")
	if never.Allow("k") {
		t.Fatal("a key's lifetime budget came back")
	}
}

func TestRedisRateLimiterHungServerDoesNotBlockCallers(t *testing.T) {
	t.Parallel()
	logs := &recordingHandler{}
	l := newRedisLimiter(t, "redis://"+rpHungAddr(t), logs)
	start := time.Now()
	l.Allow("k")
	if d := time.Since(start); d > rateTimeout+100*time.Millisecond {
		t.Errorf("the first Allow took %v against a server that never answers; the bound is %v", d, rateTimeout)
	}
	allowed, took := burst([]rateLimiter{l}, "k", 2*rlBurst)
	expectAllowed(t, "hung server", allowed, rlBurst-1, took)
	if took > 50*time.Millisecond {
		t.Errorf("10 calls took %v once the outage was known", took)
	}
	if n := logs.count(slog.LevelWarn, "unavailable"); n != 1 {
		t.Errorf("the outage was logged %d times, want once; the log:\n%s", n, logs)
	}
}
