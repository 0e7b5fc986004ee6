package handlers

import (
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Connection kinds, as counted for the cap and labelled in metrics.
const (
	connRoomSocket  = "room_ws"    // a room page's WebSocket
	connUserSocket  = "user_ws"    // another page's WebSocket (/ws)
	connAPISocket   = "api_ws"     // a program's JSON WebSocket
	connRoomStream  = "room_sse"   // a room page's SSE fallback
	connTickStream  = "ticker_sse" // a ticker stream, HTML or JSON
	connAdminStream = "admin_sse"  // the admin page's live figures
)

var connKinds = []string{connRoomSocket, connUserSocket, connAPISocket, connRoomStream, connTickStream, connAdminStream}

// metrics is what /metrics reports (Prometheus text format, from client_golang). Counters that other parts keep
// anyway (the hub's deliveries, the live connections) are read when scraped, not counted twice.
type metrics struct {
	registry *prometheus.Registry
	stored   prometheus.Counter
	groups   prometheus.Histogram
	replays  *prometheus.CounterVec
	fanout   prometheus.Histogram
	queries  *prometheus.HistogramVec
}

func (h *Handlers) newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		stored: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchboard_messages_stored_total", Help: "Chat messages stored (resends with a known client id excluded).",
		}),
		groups: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "switchboard_store_group_messages",
			Help:    "Messages stored per transaction: sends that wait while one commits are stored together.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 7), // 1 … 64 (maxGroup)
		}),
		replays: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_replays_total", Help: "Reconnects that asked for a replay: the gap sent, or the newest page in its place.",
		}, []string{"kind"}),
		fanout: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "switchboard_fanout_seconds",
			Help:    "Time to hand one published event to every local subscriber's queue (or to the broker).",
			Buckets: prometheus.ExponentialBuckets(0.00001, 4, 10),
		}),
		queries: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "switchboard_db_query_seconds",
			Help:    "Database query latency by kind of statement.",
			Buckets: prometheus.ExponentialBuckets(0.00005, 4, 10),
		}, []string{"op"}),
	}
	hub := h.hub
	m.registry.MustRegister(
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.stored, m.groups, m.replays, m.fanout, m.queries,
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "switchboard_deliveries_total", Help: "Events queued for a subscriber (one per recipient).",
		}, func() float64 { return float64(hub.Stats().Queued) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "switchboard_events_total", Help: "Events delivered to this instance's hub (each fans out to its subscribers).",
		}, func() float64 { return float64(hub.Stats().Messages) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "switchboard_drops_total", Help: "Connections dropped for being too slow (close 1013); they reconnect and replay.",
			ConstLabels: prometheus.Labels{"reason": "slow"},
		}, func() float64 { return float64(hub.Stats().Dropped) }),
	)
	for _, kind := range connKinds {
		m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "switchboard_connections", Help: "Live connections by kind (SSE streams included).",
			ConstLabels: prometheus.Labels{"kind": kind},
		}, func() float64 { return float64(h.connCount(kind)) }))
	}
	if err := h.store.ObserveQueries(func(op string, d time.Duration) { m.queries.WithLabelValues(op).Observe(d.Seconds()) }); err != nil {
		h.log.Warn("database metrics unavailable")
	}
	return m
}

// showMetrics serves the Prometheus text format.
func (h *Handlers) showMetrics(c *fiber.Ctx) error {
	return adaptor.HTTPHandler(promhttp.HandlerFor(h.metrics.registry, promhttp.HandlerOpts{}))(c)
}

// ready answers 200 when the database answers and, when configured, Redis too; 503 says which is not.
func (h *Handlers) ready(c *fiber.Ctx) error {
	if err := h.store.Ping(c.UserContext()); err != nil {
		return c.Status(fiber.StatusServiceUnavailable).SendString("not ready: database")
	}
	if b, ok := h.hub.Broker().(interface{ Healthy() bool }); ok && !b.Healthy() {
		return c.Status(fiber.StatusServiceUnavailable).SendString("not ready: redis")
	}
	return c.SendString("ready")
}
