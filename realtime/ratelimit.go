package realtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"
)

// Timeouts and pacing of the rate limiters.
const (
	// rateTimeout bounds the Redis round trip of one Allow; past it the call is decided by the local bucket.
	rateTimeout = 250 * time.Millisecond
	// rateRetry paces the background probes that find Redis again after an outage; until one succeeds every Allow
	// is decided locally, without waiting for Redis.
	rateRetry = time.Second
	// ratePruneEvery is how often a LocalRateLimiter drops the buckets that have filled up again.
	ratePruneEvery = time.Minute
)

// rateKeyPrefix names the Redis key of a limiter key: sb:rate:<key>, holding the bucket's theoretical arrival time.
const rateKeyPrefix = "sb:rate:"

// rateScript is GCRA (a token bucket kept as one number): KEYS[1] holds the theoretical arrival time (TAT) in unix
// µs by the Redis server's clock; ARGV[1] is the emission interval in µs (1/rate), ARGV[2] the burst. A request is
// allowed when, after it, the TAT is at most burst intervals ahead of now; an allowed request moves the TAT one
// interval on and makes the key expire when the bucket is full again (so an idle key costs nothing). It returns 1
// when allowed, 0 when not; a denied request changes nothing.
var rateScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then
  tat = now
end
local new = tat + interval
if new - burst * interval > now then
  return 0
end
redis.call('SET', KEYS[1], string.format('%.0f', new), 'PX', string.format('%.0f', math.ceil((new - now) / 1000) + 1))
return 1
`)

// RedisRateLimiter is a token bucket per key that every instance shares through Redis: perSecond tokens a second,
// at most burst at once, checked and taken atomically by a Lua script. When Redis does not answer it fails open to
// a local bucket per key, so each instance still limits on its own; the outage is logged once, and a background
// probe every rateRetry finds Redis again.
type RedisRateLimiter struct {
	client   *redis.Client
	log      *slog.Logger
	interval float64 // µs per token
	burst    int
	local    *LocalRateLimiter

	// down is true from a failed call until a probe succeeds; Swap makes exactly one goroutine log each change.
	// probing is true while a probe runs, so there is at most one.
	down    atomic.Bool
	probing atomic.Bool
}

// NewRedisRateLimiter returns a limiter on the Redis at url (as redis.ParseURL reads it) allowing perSecond
// requests a second per key (perSecond > 0) after a burst of burst (≥ 1). It does not wait for Redis, which may
// be down now. A nil log discards log output. Close releases the connections.
func NewRedisRateLimiter(url string, perSecond float64, burst int, log *slog.Logger) (*RedisRateLimiter, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("realtime: redis url: %w", err)
	}
	if !(perSecond > 0) || math.IsInf(perSecond, 1) || burst < 1 {
		return nil, fmt.Errorf("realtime: rate limit %v/s with burst %d: want a finite rate > 0 and a burst ≥ 1",
			perSecond, burst)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// A retried script could take two tokens; a failure is decided locally instead. The deadline comes from the
	// context (rateTimeout).
	if opt.MaxRetries == 0 {
		opt.MaxRetries = -1
	}
	opt.DialerRetries = 1
	opt.ContextTimeoutEnabled = true
	return &RedisRateLimiter{
		client:   redis.NewClient(opt),
		log:      log,
		interval: 1e6 / perSecond,
		burst:    burst,
		local:    NewLocalRateLimiter(perSecond, burst),
	}, nil
}

// Allow takes a token from key's bucket and reports whether there was one. It waits for Redis at most
// rateTimeout, and not at all during an outage.
func (l *RedisRateLimiter) Allow(key string) bool {
	if l.down.Load() {
		l.probe()
		return l.local.Allow(key)
	}
	ctx, cancel := context.WithTimeout(context.Background(), rateTimeout)
	n, err := rateScript.Run(ctx, l.client, []string{rateKeyPrefix + key}, l.interval, l.burst).Int64()
	cancel()
	if err != nil {
		if !l.down.Swap(true) {
			l.log.Warn("realtime: redis rate limiter unavailable; limiting per instance until it is back",
				slog.Any("err", err))
		}
		return l.local.Allow(key)
	}
	return n == 1
}

// probe starts a background check of Redis unless one runs or one ran less than rateRetry ago; success ends the
// outage.
func (l *RedisRateLimiter) probe() {
	if !l.probing.CompareAndSwap(false, true) {
		return
	}
	go func() {
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), rateTimeout)
		err := l.client.Ping(ctx).Err()
		cancel()
		if err == nil {
			if l.down.Swap(false) {
				l.log.Info("realtime: redis rate limiter restored")
			}
		} else if errors.Is(err, redis.ErrClosed) {
			return // closed: stay local, and probe no more
		}
		time.Sleep(rateRetry - time.Since(start)) // pace the probes; a negative wait returns at once
		l.probing.Store(false)
	}()
}

// Close releases the connections; Allow is decided locally afterwards.
func (l *RedisRateLimiter) Close() error {
	return l.client.Close()
}

// LocalRateLimiter is a token bucket per key in this process's memory: perSecond tokens a second, at most burst at
// once. Buckets that have filled up again are dropped now and then, which changes nothing for their keys. It is
// safe for concurrent use.
type LocalRateLimiter struct {
	limit rate.Limit
	burst int
	full  time.Duration // how long an unused bucket takes to fill up; 0: never (a rate of 0 never refills)
	// pruneEvery is ratePruneEvery (tests shorten it).
	pruneEvery time.Duration

	// mu guards buckets and pruned.
	mu      sync.Mutex
	buckets map[string]*localBucket
	pruned  time.Time
}

// localBucket is one key's bucket and when it was last used.
type localBucket struct {
	lim  *rate.Limiter
	last time.Time
}

// NewLocalRateLimiter returns an in-memory limiter allowing perSecond requests a second per key after a burst of
// burst. A perSecond of 0 or less allows each key burst requests in all.
func NewLocalRateLimiter(perSecond float64, burst int) *LocalRateLimiter {
	l := &LocalRateLimiter{limit: rate.Limit(max(perSecond, 0)), burst: burst, buckets: make(map[string]*localBucket),
		pruned: time.Now(), pruneEvery: ratePruneEvery}
	if perSecond > 0 && !math.IsInf(perSecond, 1) {
		l.full = time.Duration(float64(max(burst, 1)) / perSecond * float64(time.Second))
	}
	return l
}

// Allow takes a token from key's bucket and reports whether there was one.
func (l *LocalRateLimiter) Allow(key string) bool {
	if math.IsInf(float64(l.limit), 1) {
		return true
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.full > 0 && now.Sub(l.pruned) >= l.pruneEvery {
		l.pruned = now
		for k, b := range l.buckets {
			if now.Sub(b.last) >= l.full {
				delete(l.buckets, k)
			}
		}
	}
	b := l.buckets[key]
	if b == nil {
		b = &localBucket{lim: rate.NewLimiter(l.limit, l.burst)}
		l.buckets[key] = b
	}
	b.last = now
	return b.lim.AllowN(now, 1)
}

// size returns how many buckets are kept (tests check the pruning).
func (l *LocalRateLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}
