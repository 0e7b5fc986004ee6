package realtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Leases, pacing and timeouts of RedisPresence.
const (
	// presenceLease is how long a user's lease on this instance lives in Redis without renewal: an instance that
	// crashes leaves its users online for at most this long (plus one sweep).
	presenceLease = 30 * time.Second
	// presenceRetry paces the probes that find Redis again after an outage.
	presenceRetry = time.Second
	// presenceRecheck is how soon after a failed read or flush the worker checks Redis. Only its check declares an
	// outage: go-redis can fail a call or two fast just after Redis is back.
	presenceRecheck = 100 * time.Millisecond
	// presenceWriteTimeout bounds one round trip of the background worker (a pipeline of leases, a flush).
	presenceWriteTimeout = time.Second
	// presenceReadTimeout bounds the Redis read in Online; on a timeout Online answers from local knowledge.
	presenceReadTimeout = 500 * time.Millisecond
	// presenceIdle is how long the notice subscription may be silent before it is pinged; a ping with no answer
	// within another presenceIdle replaces the connection.
	presenceIdle = 3 * time.Second
)

// presenceKeyPrefix names a room's sorted set sb:presence:<room> (member: user id, score: the latest lease expiry of
// that user on any instance, unix ms) and, with :<user> appended, the user's sorted set of instances (member:
// instance id, score: that instance's lease expiry). Both expire on their own when nobody renews them.
const presenceKeyPrefix = "sb:presence:"

// presenceChannel carries "<room>:<instance id>" whenever a room's online set changed. It must not start with
// RedisChannelPrefix: the broker's pattern subscription (sb:*) would take the notices for undecodable messages.
const presenceChannel = "sb-presence-changed"

// presenceNow is the Lua prelude that reads the Redis server's clock in unix ms, so instances with skewed clocks
// agree on when a lease ends.
const presenceNow = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`

// presenceAddScript grants or renews a lease: KEYS[1] room set, KEYS[2] user set; ARGV user, instance, lease ms,
// channel, notice. The room score only grows here (it is the maximum over instances). It publishes the notice and
// returns 1 when the user was not online before (a new user, or one whose leases had all gone: Redis restarted).
var presenceAddScript = redis.NewScript(presenceNow + `
local lease = tonumber(ARGV[3])
local exp = string.format('%.0f', now + lease)
local ttl = string.format('%.0f', 2 * lease)
redis.call('ZADD', KEYS[2], exp, ARGV[2])
redis.call('PEXPIRE', KEYS[2], ttl)
local was = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]) or '0')
if was < now + lease then
  redis.call('ZADD', KEYS[1], exp, ARGV[1])
end
redis.call('PEXPIRE', KEYS[1], ttl)
if was < now then
  redis.call('PUBLISH', ARGV[4], ARGV[5])
  return 1
end
return 0
`)

// presenceRemoveScript ends this instance's lease: KEYS as above; ARGV user, instance, lease ms, channel, notice.
// The room score becomes the latest live lease of the user's other instances; when there is none the user leaves
// the room set, and the script publishes the notice and returns 1 if the user was online until now.
var presenceRemoveScript = redis.NewScript(presenceNow + `
local cutoff = '(' .. string.format('%.0f', now)
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', cutoff)
local was = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]) or '0')
local top = redis.call('ZREVRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if #top > 0 then
  redis.call('ZADD', KEYS[1], top[2], ARGV[1])
  if redis.call('PTTL', KEYS[1]) == -1 then
    redis.call('PEXPIRE', KEYS[1], string.format('%.0f', 2 * tonumber(ARGV[3])))
  end
  return 0
end
redis.call('ZREM', KEYS[1], ARGV[1])
if was >= now then
  redis.call('PUBLISH', ARGV[4], ARGV[5])
  return 1
end
return 0
`)

// presenceSweepScript drops the users of KEYS[1] whose every lease has expired (their instances stopped renewing:
// crashed, or cut off from Redis); ARGV channel, notice. It publishes the notice when it dropped any and returns
// how many.
var presenceSweepScript = redis.NewScript(presenceNow + `
local n = redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. string.format('%.0f', now))
if n > 0 then
  redis.call('PUBLISH', ARGV[1], ARGV[2])
end
return n
`)

// presenceOnlineScript returns the users of KEYS[1] with a live lease.
var presenceOnlineScript = redis.NewScript(presenceNow + `
return redis.call('ZRANGEBYSCORE', KEYS[1], string.format('%.0f', now), '+inf')
`)

// RedisPresence is Presence shared by every instance through Redis: a user is online in a room from their first
// connection on any instance until their last one anywhere has been gone for linger. Each instance counts its own
// connections as Presence does and holds an expiring lease in Redis for each of its online users, renewed every
// lease/3 in one pipeline; an instance that dies stops renewing, and its users go offline when the leases end.
//
// Connect and Disconnect never touch the network: a background worker brings Redis in line with the local state.
// onChange(room) is called on every instance that has connections in room whenever the room's online set changes
// anywhere: the instance that changed it publishes a notice on presenceChannel, and each instance's one
// subscription hands it on. onChange is called from background goroutines, never with a lock held; it must not
// block for long. While Redis is unreachable Online answers from this instance's users alone and onChange follows
// local changes; the outage is logged once, and on recovery the leases are registered again.
type RedisPresence struct {
	client   *redis.Client
	log      *slog.Logger
	linger   time.Duration
	lease    time.Duration
	onChange func(room int64)
	id       string // this instance's member name in the user sets

	ctx    context.Context // cancelled by Close; ends the worker and the listener
	cancel context.CancelFunc
	wg     sync.WaitGroup
	wake   chan struct{} // buffer 1: dirty has entries for the worker
	check  chan struct{} // buffer 1: a read or a flush failed; the worker checks Redis presenceRecheck later

	// mu guards rooms, dirty, stale, staleNotified and closed. It is never held during network I/O or while calling onChange.
	mu     sync.Mutex
	rooms  map[int64]map[int64]*presenceEntry // room → user → this instance's connections; empty maps are deleted
	dirty  map[presenceKey]bool               // pairs whose lease must follow rooms; true: a local onChange is owed
	stale  map[int64]bool                     // rooms whose Online fell back to local users while Redis seemed up
	closed bool
	// staleNotified is when renew last called onChange for stale rooms.
	staleNotified time.Time

	// down is true from a failed check of the worker until its next successful one. Only the worker writes it, so
	// each outage is logged once at its start and once at its end; downSince (unix ns) is when it began.
	down      atomic.Bool
	downSince atomic.Int64
	// subscribed is true while the notice subscription is confirmed (tests wait for it).
	subscribed atomic.Bool
}

// presenceKey is one user in one room.
type presenceKey struct{ room, user int64 }

// NewRedisPresence returns a RedisPresence on the Redis at url (as redis.ParseURL reads it) that calls onChange(room)
// (if not nil) whenever a room's online set changes; it does not wait for Redis, which may be down now. A nil log
// discards log output. Close stops it and releases the connections.
func NewRedisPresence(url string, linger time.Duration, onChange func(room int64), log *slog.Logger) (*RedisPresence, error) {
	return newRedisPresence(url, linger, presenceLease, onChange, log)
}

// newRedisPresence is NewRedisPresence with the lease as a parameter, so tests can see a crashed instance's users
// expire quickly.
func newRedisPresence(url string, linger, lease time.Duration, onChange func(room int64), log *slog.Logger) (*RedisPresence, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("realtime: redis url: %w", err)
	}
	if lease <= 0 {
		return nil, errors.New("realtime: presence lease must be positive")
	}
	if onChange == nil {
		onChange = func(int64) {}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// No command is retried: the worker retries whole rounds itself, and a second try would only delay a caller
	// of Online. Every call carries its own deadline (at most a second); one dial attempt per try.
	if opt.MaxRetries == 0 {
		opt.MaxRetries = -1
	}
	opt.DialerRetries = 1
	if opt.DialTimeout <= 0 || opt.DialTimeout > presenceWriteTimeout {
		opt.DialTimeout = presenceWriteTimeout
	}
	opt.PoolTimeout = presenceWriteTimeout
	opt.ReadTimeout = presenceWriteTimeout // also bounds the handshake of a new connection
	opt.WriteTimeout = presenceWriteTimeout
	opt.ContextTimeoutEnabled = true
	var id [8]byte
	_, _ = rand.Read(id[:]) // never fails (crypto/rand)
	ctx, cancel := context.WithCancel(context.Background())
	p := &RedisPresence{
		client:   redis.NewClient(opt),
		log:      log,
		linger:   linger,
		lease:    lease,
		onChange: onChange,
		id:       hex.EncodeToString(id[:]),
		ctx:      ctx,
		cancel:   cancel,
		wake:     make(chan struct{}, 1),
		check:    make(chan struct{}, 1),
		rooms:    make(map[int64]map[int64]*presenceEntry),
		dirty:    make(map[presenceKey]bool),
		stale:    make(map[int64]bool),
	}
	p.wg.Add(2)
	go p.work()
	go p.listen()
	return p, nil
}

// Connect records a new connection of user in room. When the user becomes online on this instance the worker
// grants them a lease, and onChange(room) follows if that changed the room's online set. It does no I/O.
func (p *RedisPresence) Connect(room, user int64) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	users := p.rooms[room]
	if users == nil {
		users = make(map[int64]*presenceEntry)
		p.rooms[room] = users
	}
	e := users[user]
	changed := e == nil
	if changed {
		e = &presenceEntry{}
		users[user] = e
		p.dirty[presenceKey{room, user}] = true
	}
	e.conns++
	if e.timer != nil {
		e.timer.Stop()
		e.timer = nil
	}
	p.mu.Unlock()
	if changed {
		signal(p.wake)
	}
}

// Disconnect records that a connection of user in room has gone. When it was the last one on this instance and no
// new one arrives within linger, the worker removes this instance's lease; onChange(room) follows if the user has
// no other instance. It does no I/O.
func (p *RedisPresence) Disconnect(room, user int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := p.rooms[room][user]
	if p.closed || e == nil || e.conns == 0 {
		return
	}
	e.conns--
	if e.conns > 0 {
		return
	}
	e.gen++
	gen := e.gen
	e.timer = time.AfterFunc(p.linger, func() { p.expire(room, user, gen) })
}

// expire removes a user whose linger timer (generation gen) fired, unless they came back in the meantime.
func (p *RedisPresence) expire(room, user int64, gen uint64) {
	p.mu.Lock()
	e := p.rooms[room][user]
	if p.closed || e == nil || e.conns > 0 || e.gen != gen {
		p.mu.Unlock()
		return
	}
	delete(p.rooms[room], user)
	if len(p.rooms[room]) == 0 {
		delete(p.rooms, room)
	}
	p.dirty[presenceKey{room, user}] = true
	p.mu.Unlock()
	signal(p.wake)
}

// signal sends on a channel with a buffer of 1 without blocking.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Online returns the ids of the users online in room on any instance, lingering ones included, sorted. It reads
// Redis (for at most presenceReadTimeout); while Redis is unreachable it returns this instance's users.
func (p *RedisPresence) Online(room int64) []int64 {
	p.mu.Lock()
	users := make([]int64, 0, len(p.rooms[room]))
	for u := range p.rooms[room] {
		users = append(users, u)
	}
	closed := p.closed
	p.mu.Unlock()
	if !closed && !p.down.Load() {
		ctx, cancel := context.WithTimeout(p.ctx, presenceReadTimeout)
		members, err := presenceOnlineScript.Run(ctx, p.client, []string{roomPresenceKey(room)}).StringSlice()
		cancel()
		if err != nil && p.ctx.Err() == nil {
			// The caller (onChange, a page) gets local users only. The worker checks Redis soon: when it answers,
			// onChange(room) is called again; when it does not, that is an outage, logged there.
			p.log.Debug("realtime: redis presence read failed; answered from this instance", slog.Any("err", err))
			p.mu.Lock()
			p.stale[room] = true
			p.mu.Unlock()
			signal(p.check)
		}
		// Local users are added even when Redis answers: the worker may not have granted a new user's lease yet.
		for _, m := range members {
			if u, err := strconv.ParseInt(m, 10, 64); err == nil {
				users = append(users, u)
			}
		}
	}
	slices.Sort(users)
	return slices.Compact(users)
}

// Close stops the worker, the subscription and the linger timers, then closes the connections; onChange is not
// called once it has returned, and later calls to Connect and Disconnect do nothing. It does not remove this
// instance's leases: they run out within the lease, so clients that move to another instance (a restart) do not
// flap offline and back.
func (p *RedisPresence) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	for _, users := range p.rooms {
		for _, e := range users {
			if e.timer != nil {
				e.timer.Stop()
				e.timer = nil
			}
		}
	}
	p.mu.Unlock()
	p.cancel()
	p.wg.Wait()
	_ = p.client.Close()
}

// work is the one goroutine that writes presence to Redis, so leases are granted and removed in the order the
// local state changed. Its renewals (every lease/3; presenceRecheck after a failed read or flush; every
// presenceRetry during an outage) are its checks of Redis: they alone declare an outage and its end, so a stray
// failed call does not flap the state.
func (p *RedisPresence) work() {
	defer p.wg.Done()
	renewEvery := max(p.lease/3, time.Millisecond)
	renew := time.NewTicker(renewEvery)
	defer renew.Stop()
	retry := time.NewTicker(min(presenceRetry, renewEvery))
	defer retry.Stop()
	var recheck <-chan time.Time // armed by a request on p.check
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-p.wake:
			p.flush()
		case <-p.check:
			if recheck == nil {
				recheck = time.After(presenceRecheck)
			}
		case <-recheck:
			recheck = nil
			p.renew()
		case <-renew.C:
			p.renew()
		case <-retry.C:
			if p.down.Load() {
				p.renew()
			}
		}
	}
}

// flush brings the leases of the dirty pairs in line with the local state. When Redis does not take them (or is
// known to be down) it calls the owed local onChange and keeps the pairs for the next successful renewal.
func (p *RedisPresence) flush() {
	p.mu.Lock()
	batch := p.dirty
	if len(batch) == 0 {
		p.mu.Unlock()
		return
	}
	p.dirty = make(map[presenceKey]bool)
	keys := make([]presenceKey, 0, len(batch))
	calls := make([]scriptCall, 0, len(batch))
	for k := range batch {
		keys = append(keys, k)
		script := presenceRemoveScript
		if p.rooms[k.room][k.user] != nil {
			script = presenceAddScript
		}
		calls = append(calls, p.leaseCall(script, k))
	}
	p.mu.Unlock()

	if !p.down.Load() {
		ctx, cancel := context.WithTimeout(p.ctx, presenceWriteTimeout)
		cmds, err := runScripts(ctx, p.client, calls)
		cancel()
		if err == nil {
			changed := make(map[int64]bool)
			for i, cmd := range cmds {
				if n, _ := cmd.Int64(); n > 0 {
					changed[keys[i].room] = true
				}
			}
			p.notify(changed)
			return
		}
		if p.ctx.Err() != nil {
			return
		}
		p.log.Debug("realtime: redis presence flush failed", slog.Any("err", err))
		signal(p.check)
	}
	// Redis did not take the batch: follow the local change now, and retry the leases after the next renewal.
	owed := make(map[int64]bool)
	p.mu.Lock()
	for k, o := range batch {
		if o {
			owed[k.room] = true
		}
		if _, newer := p.dirty[k]; !newer {
			p.dirty[k] = false
		}
	}
	p.mu.Unlock()
	p.notify(owed)
}

// renew renews the leases of every local user and sweeps the local rooms of expired leases, in one pipeline. A
// failure declares an outage. A success ends one (the local rooms are announced to every instance), retries the
// pairs a flush could not write, and calls onChange again for the rooms whose Online fell back meanwhile.
func (p *RedisPresence) renew() {
	p.mu.Lock()
	var keys []presenceKey
	rooms := make([]int64, 0, len(p.rooms))
	for room, users := range p.rooms {
		rooms = append(rooms, room)
		for user := range users {
			keys = append(keys, presenceKey{room, user})
		}
	}
	p.mu.Unlock()
	calls := make([]scriptCall, 0, len(keys)+len(rooms))
	for _, k := range keys {
		calls = append(calls, p.leaseCall(presenceAddScript, k))
	}
	for _, room := range rooms {
		calls = append(calls, scriptCall{presenceSweepScript, []string{roomPresenceKey(room)},
			[]any{presenceChannel, p.notice(room)}})
	}

	ctx, cancel := context.WithTimeout(p.ctx, presenceWriteTimeout)
	defer cancel()
	var cmds []*redis.Cmd
	var err error
	if len(calls) == 0 {
		err = p.client.Ping(ctx).Err() // nothing to renew: still learn whether Redis is there
	} else {
		cmds, err = runScripts(ctx, p.client, calls)
	}
	if err != nil {
		p.fail(err)
		return
	}
	changed := make(map[int64]bool)
	for i, cmd := range cmds {
		if n, _ := cmd.Int64(); n > 0 {
			if i < len(keys) {
				changed[keys[i].room] = true // a lease Redis had lost: it restarted, or we stalled past the lease
			} else {
				changed[rooms[i-len(keys)]] = true // a crashed instance's users expired
			}
		}
	}
	if p.down.Swap(false) {
		p.log.Info("realtime: redis presence restored",
			slog.Duration("outage", time.Since(time.Unix(0, p.downSince.Load()))))
		// Others may have missed our changes, and we theirs: everyone with these rooms refreshes.
		pipe := p.client.Pipeline()
		for _, room := range rooms {
			pipe.Publish(ctx, presenceChannel, p.notice(room))
			changed[room] = true
		}
		if _, err := pipe.Exec(ctx); err != nil {
			p.log.Debug("realtime: redis presence announcement failed", slog.Any("err", err))
		}
	}
	p.mu.Lock()
	// At most once per presenceRetry, so a Redis too slow for Online but not for the worker cannot make onChange
	// and Online chase each other; later stale rooms wait for a later renewal.
	if now := time.Now(); len(p.stale) > 0 && now.Sub(p.staleNotified) >= presenceRetry {
		p.staleNotified = now
		for room := range p.stale {
			if p.rooms[room] != nil {
				changed[room] = true
			}
		}
		clear(p.stale)
	}
	pending := len(p.dirty) > 0
	p.mu.Unlock()
	if pending {
		p.flush()
	}
	p.notify(changed)
}

// fail records a failed check of the worker; the first one of an outage is logged. Failures caused by Close are
// not faults.
func (p *RedisPresence) fail(err error) {
	if p.ctx.Err() != nil {
		return
	}
	if !p.down.Swap(true) {
		p.downSince.Store(time.Now().UnixNano())
		p.log.Warn("realtime: redis presence unavailable; showing this instance's users only until it is back",
			slog.Any("err", err))
	}
}

// leaseCall returns the call of an add or remove script for k.
func (p *RedisPresence) leaseCall(script *redis.Script, k presenceKey) scriptCall {
	return scriptCall{script, []string{roomPresenceKey(k.room), userPresenceKey(k.room, k.user)},
		[]any{k.user, p.id, p.lease.Milliseconds(), presenceChannel, p.notice(k.room)}}
}

// notice is the payload announcing a change in room by this instance.
func (p *RedisPresence) notice(room int64) string {
	return strconv.FormatInt(room, 10) + ":" + p.id
}

// notify calls onChange for rooms, unless Close has begun.
func (p *RedisPresence) notify(rooms map[int64]bool) {
	for room := range rooms {
		if p.ctx.Err() != nil {
			return
		}
		p.onChange(room)
	}
}

// localRooms returns the rooms this instance has connections in (lingering ones included).
func (p *RedisPresence) localRooms() map[int64]bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	rooms := make(map[int64]bool, len(p.rooms))
	for room := range p.rooms {
		rooms[room] = true
	}
	return rooms
}

// listen holds this instance's one subscription to presenceChannel and calls onChange for the notices of other
// instances about rooms this instance has connections in. After every (re)subscription it calls onChange for all
// local rooms, since notices sent while it was away are lost.
func (p *RedisPresence) listen() {
	defer p.wg.Done()
	ctx := p.ctx
	var sub presenceSub
	stop := context.AfterFunc(ctx, sub.close) // ends a Receive in progress when Close cancels ctx
	defer stop()
	defer sub.close()
	var (
		pinged bool
		retry  time.Duration
	)
	ps := sub.replace(ctx, p.client)
	for ps != nil {
		msg, err := ps.ReceiveTimeout(ctx, presenceIdle)
		if ctx.Err() != nil || errors.Is(err, redis.ErrClosed) {
			return
		}
		if err != nil {
			if isTimeout(err) && !pinged {
				// Silence: ask the server whether the connection still lives.
				if ps.Ping(ctx) == nil {
					pinged = true
					continue
				}
			}
			p.subscribed.Store(false)
			if isTimeout(err) && pinged {
				ps = sub.replace(ctx, p.client) // no answer to the ping: the connection is dead without knowing it
			}
			pinged = false
			if !sleepCtx(ctx, retry) {
				return
			}
			retry = min(max(retry*2, redisRetryMin), redisRetryMax)
			continue
		}
		pinged, retry = false, 0
		switch msg := msg.(type) {
		case *redis.Message:
			roomText, from, ok := strings.Cut(msg.Payload, ":")
			room, err := strconv.ParseInt(roomText, 10, 64)
			if !ok || err != nil || from == p.id {
				continue // ours were reported when the worker made them
			}
			p.mu.Lock()
			local := p.rooms[room] != nil
			p.mu.Unlock()
			if local {
				p.notify(map[int64]bool{room: true})
			}
		case *redis.Subscription:
			if msg.Kind == "subscribe" {
				p.subscribed.Store(true)
				p.notify(p.localRooms())
			}
		}
	}
}

// presenceSub owns the listener's PubSub. The listener uses replace; close runs once Close cancels the context,
// possibly on another goroutine (even before the first replace), and mu makes it close whichever PubSub is
// current then and every later replace return nil.
type presenceSub struct {
	mu     sync.Mutex
	ps     *redis.PubSub
	closed bool
}

// replace closes the current PubSub, if any, and subscribes to presenceChannel on a new connection; it returns
// nil once closed. A subscription that fails now is remembered by go-redis, and the next Receive tries again.
func (s *presenceSub) replace(ctx context.Context, client *redis.Client) *redis.PubSub {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	if s.ps != nil {
		_ = s.ps.Close()
	}
	ps := client.Subscribe(ctx) // no channels: no I/O yet
	s.ps = ps
	s.mu.Unlock()
	sctx, cancel := context.WithTimeout(ctx, presenceWriteTimeout)
	_ = ps.Subscribe(sctx, presenceChannel)
	cancel()
	return ps
}

// close closes the current PubSub, which ends a Receive in progress; it is idempotent.
func (s *presenceSub) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.ps != nil {
		_ = s.ps.Close()
		s.ps = nil
	}
}

// roomPresenceKey names room's set of online users.
func roomPresenceKey(room int64) string {
	return presenceKeyPrefix + strconv.FormatInt(room, 10)
}

// userPresenceKey names the set of instances holding a lease for user in room.
func userPresenceKey(room, user int64) string {
	return presenceKeyPrefix + strconv.FormatInt(room, 10) + ":" + strconv.FormatInt(user, 10)
}

// scriptCall is one script invocation in a pipeline.
type scriptCall struct {
	script *redis.Script
	keys   []string
	args   []any
}

// runScripts runs calls in one pipeline by EVALSHA, then runs those the server had not cached (NOSCRIPT: Redis
// restarted or its script cache was flushed) once more by EVAL, which caches them. It returns every call's result
// and the first error.
func runScripts(ctx context.Context, c *redis.Client, calls []scriptCall) ([]*redis.Cmd, error) {
	cmds := make([]*redis.Cmd, len(calls))
	pipe := c.Pipeline()
	for i, call := range calls {
		cmds[i] = call.script.EvalSha(ctx, pipe, call.keys, call.args...)
	}
	_, _ = pipe.Exec(ctx)
	var missing []int
	for i, cmd := range cmds {
		if redis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") {
			missing = append(missing, i)
		}
	}
	if len(missing) > 0 {
		pipe = c.Pipeline()
		for _, i := range missing {
			cmds[i] = calls[i].script.Eval(ctx, pipe, calls[i].keys, calls[i].args...)
		}
		_, _ = pipe.Exec(ctx)
	}
	for _, cmd := range cmds {
		if err := cmd.Err(); err != nil {
			return cmds, err
		}
	}
	return cmds, nil
}
