package realtime

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

var (
	_ Broker   = (*RedisBroker)(nil)
	_ Resyncer = (*RedisBroker)(nil)
)

// Timeouts and retry pacing of the Redis broker.
const (
	// redisPublishTimeout bounds one PUBLISH, so a Redis that hangs slows a user's send by at most this much.
	redisPublishTimeout = 2 * time.Second
	// redisIdleTimeout is how long the subscription may be silent before Run pings it; a ping that gets no
	// answer within another redisIdleTimeout marks the connection dead and Run subscribes on a new one.
	redisIdleTimeout = 3 * time.Second
	// redisRetryMin and redisRetryMax pace resubscription attempts while Redis is unreachable.
	redisRetryMin = 50 * time.Millisecond
	redisRetryMax = time.Second
)

// RedisChannelPrefix is put before a topic to name its Redis channel; a RedisBroker subscribes to the pattern
// RedisChannelPrefix + "*".
const RedisChannelPrefix = "sb:"

// redisWireVersion is the first byte of every encoded message; a message with another version is dropped.
const redisWireVersion = 1

// ErrLocalOnly is wrapped by the error a RedisBroker's Publish returns when Redis did not take the message: it was
// delivered to this process's subscribers only. Other instances miss it until they fill the gap from the database.
var ErrLocalOnly = errors.New("realtime: delivered to local subscribers only")

// Resyncer is implemented by brokers that can lose messages (Redis pub/sub delivers at most once). A value is
// sent on Resynced after every successful subscription, the first one included; the owner then fills gaps from
// the database. The channel has a buffer of 1 and sends never block, so several resubscriptions in a row may
// coalesce into one value.
type Resyncer interface {
	Resynced() <-chan struct{}
}

// Broker returns the broker the hub was built with, so its owner can reach optional interfaces such as Resyncer
// or a Healthy method.
func (h *Hub) Broker() Broker { return h.broker }

// RedisBroker carries messages between instances over Redis pub/sub: Publish PUBLISHes each message on the
// channel RedisChannelPrefix+topic, and Run holds one pattern subscription per instance (PSUBSCRIBE sb:*) whose
// messages it hands to the local hub. When Redis does not take a message, Publish delivers it locally instead, so
// a single instance keeps working while Redis is away. A RedisBroker serves one Hub.
type RedisBroker struct {
	client   *redis.Client
	log      *slog.Logger
	pattern  string
	resynced chan struct{} // buffer 1; Run sends without blocking after every subscription

	deliver atomic.Pointer[func(*Message)] // set by Run; Publish's local fallback uses it
	running atomic.Bool                    // Run is active; a second concurrent Run is refused

	// subUp is true while the subscription is confirmed; only Run writes it. pubFailed is true from a failed
	// PUBLISH until the next successful one or the next subscription; Swap makes exactly one caller log each
	// change, so an outage is logged once however many sends fail.
	subUp     atomic.Bool
	pubFailed atomic.Bool
}

// NewRedisBroker returns a broker for the Redis at url (redis://[user:password@]host:port[/db][?options], as
// redis.ParseURL reads it). It does not connect: a Redis that is down now is not an error, Run keeps trying and
// Publish falls back to local delivery. A nil log discards log output. Close releases the connections.
func NewRedisBroker(url string, log *slog.Logger) (*RedisBroker, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("realtime: redis url: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// A PUBLISH is not retried unless the URL asks for it (max_retries): a retry after a lost reply would publish
	// twice, and a failure is handled by delivering locally. One dial attempt per try keeps a send fast while
	// Redis is down; deadlines come from the context (redisPublishTimeout).
	if opt.MaxRetries == 0 {
		opt.MaxRetries = -1
	}
	opt.DialerRetries = 1
	opt.ContextTimeoutEnabled = true
	return &RedisBroker{
		client:   redis.NewClient(opt),
		log:      log,
		pattern:  RedisChannelPrefix + "*",
		resynced: make(chan struct{}, 1),
	}, nil
}

// Close closes the Redis connections; call it after Run has returned. Publish fails (and delivers locally)
// afterwards.
func (b *RedisBroker) Close() error {
	return b.client.Close()
}

// Healthy reports whether the subscription is up and the last publish reached Redis; /healthz reports degraded
// when it is false. It is false until Run's first subscription is confirmed.
func (b *RedisBroker) Healthy() bool {
	return b.subUp.Load() && !b.pubFailed.Load()
}

// Resynced returns the channel that receives a value after every subscription, the first one included.
func (b *RedisBroker) Resynced() <-chan struct{} { return b.resynced }

// Publish encodes m and PUBLISHes it on its topic's channel; every instance's Run loop, this one's included,
// delivers it. If Redis does not take it, Publish delivers m to this instance's subscribers directly (when Run
// has started) and returns an error wrapping ErrLocalOnly: the caller logs it (at debug level: the broker logs
// the outage once) and does not fail the user's send. Once a publish has failed, later ones skip Redis until
// Run's subscription is back. If the failure is ambiguous (a lost reply) the message can reach local subscribers twice; room messages carry
// their id, which lets a connection skip the second copy.
func (b *RedisBroker) Publish(ctx context.Context, m *Message) error {
	// During an outage (a publish failed and the subscription is not back) do not make every send wait for a
	// dial: Run notices when Redis returns and clears pubFailed.
	if b.pubFailed.Load() && !b.subUp.Load() {
		b.deliverLocally(m)
		return fmt.Errorf("%w: %w", ErrLocalOnly, errRedisDown)
	}
	pctx, cancel := context.WithTimeout(ctx, redisPublishTimeout)
	err := b.client.Publish(pctx, RedisChannelPrefix+m.Topic, encodeMessage(m)).Err()
	cancel()
	if err == nil {
		if b.pubFailed.Swap(false) {
			b.log.Info("realtime: redis publish recovered")
		}
		return nil
	}
	// A caller that gave up is not a Redis fault.
	if ctx.Err() == nil && !b.pubFailed.Swap(true) {
		b.log.Warn("realtime: redis publish failing; delivering to local subscribers only", slog.Any("err", err))
	}
	b.deliverLocally(m)
	return fmt.Errorf("%w: redis publish: %w", ErrLocalOnly, err)
}

// errRedisDown is why Publish skipped Redis during an outage.
var errRedisDown = errors.New("redis unavailable; waiting for the subscription to come back")

// deliverLocally hands m to this instance's hub, once Run has attached it.
func (b *RedisBroker) deliverLocally(m *Message) {
	if d := b.deliver.Load(); d != nil {
		(*d)(m)
	}
}

// Run subscribes to every topic with one pattern subscription and delivers each message it receives until ctx
// is done; it returns nil then. Faults do not end it: go-redis reconnects and resubscribes, Run pings an idle
// connection and replaces one that stops answering, and it logs an outage once when it starts and once when it
// ends. deliver must not block. Run must not be called again while it is running.
func (b *RedisBroker) Run(ctx context.Context, deliver func(*Message)) error {
	if !b.running.CompareAndSwap(false, true) {
		return errors.New("realtime: redis broker: Run is already running")
	}
	defer b.running.Store(false)
	b.deliver.Store(&deliver)

	sub := newRedisSub(ctx, b.client, b.pattern)
	defer sub.close()

	var (
		pinged    bool          // a ping is out and nothing has arrived since
		retry     time.Duration // the wait before the next attempt while Redis is unreachable
		downSince time.Time     // zero unless an outage has been logged and not yet ended
	)
	down := func(err error) {
		b.subUp.Store(false)
		if downSince.IsZero() {
			downSince = time.Now()
			b.log.Warn("realtime: redis subscription down; instances will miss each other's messages until it is back",
				slog.Any("err", err))
		}
	}
	for {
		ps := sub.current()
		if ps == nil {
			return nil // ctx is done
		}
		msg, err := ps.ReceiveTimeout(ctx, redisIdleTimeout)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			if errors.Is(err, redis.ErrClosed) {
				return errors.New("realtime: redis broker: closed while Run was running")
			}
			if isTimeout(err) && !pinged {
				// Silence: ask the server whether the connection still lives.
				err = ps.Ping(ctx)
				if err == nil {
					pinged = true
					continue
				}
			} else if isTimeout(err) {
				// The connection is dead without knowing it: subscribe on a new one.
				down(errors.New("no reply to ping within " + redisIdleTimeout.String()))
				sub.renew()
			}
			pinged = false
			down(err)
			if !sleepCtx(ctx, retry) {
				return nil
			}
			retry = min(max(retry*2, redisRetryMin), redisRetryMax)
			continue
		}
		pinged, retry = false, 0
		switch msg := msg.(type) {
		case *redis.Message:
			b.handle(msg, deliver)
		case *redis.Subscription:
			if msg.Kind != "psubscribe" {
				continue
			}
			b.subUp.Store(true)
			b.pubFailed.Store(false) // Redis answers again; the next publish will tell otherwise
			if !downSince.IsZero() {
				b.log.Info("realtime: redis subscription restored", slog.Duration("outage", time.Since(downSince)))
				downSince = time.Time{}
			}
			select {
			case b.resynced <- struct{}{}:
			default:
			}
		}
	}
}

// handle decodes one received message and delivers it; a message that does not decode is dropped and logged
// (without its content).
func (b *RedisBroker) handle(msg *redis.Message, deliver func(*Message)) {
	topic, ok := strings.CutPrefix(msg.Channel, RedisChannelPrefix)
	if !ok || topic == "" {
		return
	}
	m, err := decodeMessage(topic, msg.Payload)
	if err != nil {
		b.log.Warn("realtime: dropped an undecodable redis message", slog.String("channel", msg.Channel),
			slog.Int("bytes", len(msg.Payload)), slog.Any("err", err))
		return
	}
	deliver(m)
}

// redisSub owns Run's PubSub. Run's goroutine uses current and renew; close runs once ctx is done, possibly on
// another goroutine, and mu makes it close whichever PubSub is current then.
type redisSub struct {
	ctx     context.Context
	client  *redis.Client
	pattern string
	stop    func() bool // unregisters the AfterFunc

	mu sync.Mutex
	ps *redis.PubSub // nil once closed
}

func newRedisSub(ctx context.Context, client *redis.Client, pattern string) *redisSub {
	// PSubscribe dials and subscribes now if it can; otherwise the first Receive retries. Either way the
	// pattern is remembered and resubscribed on every reconnect.
	s := &redisSub{ctx: ctx, client: client, pattern: pattern, ps: client.PSubscribe(ctx, pattern)}
	s.mu.Lock() // close may run at once (ctx already done) and reads stop
	s.stop = context.AfterFunc(ctx, s.close)
	s.mu.Unlock()
	return s
}

// current returns the live PubSub, or nil once closed.
func (s *redisSub) current() *redis.PubSub {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ps
}

// renew closes the current PubSub and subscribes on a new connection.
func (s *redisSub) renew() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ps == nil {
		return
	}
	_ = s.ps.Close()
	s.ps = s.client.PSubscribe(s.ctx, s.pattern)
}

// close closes the current PubSub, which ends a Receive in progress; it is idempotent.
func (s *redisSub) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stop != nil {
		s.stop()
	}
	if s.ps != nil {
		_ = s.ps.Close()
		s.ps = nil
	}
}

// isTimeout reports whether err is a network timeout (here: a Receive that saw nothing within its timeout).
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// sleepCtx waits d and reports whether ctx is still live.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// encodeMessage returns m's wire form: the version byte, ID and Close as signed varints, then Data. The topic is
// not encoded: it is the channel name.
func encodeMessage(m *Message) []byte {
	buf := make([]byte, 0, 1+2*binary.MaxVarintLen64+len(m.Data))
	buf = append(buf, redisWireVersion)
	buf = binary.AppendVarint(buf, m.ID)
	buf = binary.AppendVarint(buf, int64(m.Close))
	return append(buf, m.Data...)
}

// decodeMessage parses a payload made by encodeMessage into a new Message on topic. Empty data decodes as nil.
func decodeMessage(topic, payload string) (*Message, error) {
	if len(payload) == 0 {
		return nil, errors.New("empty payload")
	}
	if payload[0] != redisWireVersion {
		return nil, fmt.Errorf("wire version %d, want %d", payload[0], redisWireVersion)
	}
	rest := payload[1:]
	id, n := varint(rest)
	if n <= 0 {
		return nil, errors.New("bad id")
	}
	rest = rest[n:]
	code, n := varint(rest)
	if n <= 0 || code != int64(int32(code)) {
		return nil, errors.New("bad close code")
	}
	rest = rest[n:]
	m := &Message{Topic: topic, ID: id, Close: int(code)}
	if len(rest) > 0 {
		m.Data = []byte(rest)
	}
	return m, nil
}

// varint is binary.Varint over a string, so decoding does not copy the payload first.
func varint(s string) (int64, int) {
	var ux uint64
	var shift uint
	for i := 0; i < len(s) && i < binary.MaxVarintLen64; i++ {
		c := s[i]
		if c < 0x80 {
			if i == binary.MaxVarintLen64-1 && c > 1 {
				return 0, -(i + 1) // overflow
			}
			ux |= uint64(c) << shift
			x := int64(ux >> 1)
			if ux&1 != 0 {
				x = ^x
			}
			return x, i + 1
		}
		ux |= uint64(c&0x7f) << shift
		shift += 7
	}
	return 0, 0
}

// attach lets the hub receive local deliveries before Run has started (Redis down at start).
func (b *RedisBroker) attach(deliver func(*Message)) {
	b.deliver.CompareAndSwap(nil, &deliver)
}
