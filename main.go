// Switchboard is a self-hosted real-time web app in one binary: browser chat rooms over WebSocket and a live
// stock ticker over Server-Sent Events, server-rendered with templ and htmx, on SQLite by default.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"golang.org/x/time/rate"

	"switchboard/config"
	"switchboard/handlers"
	"switchboard/market"
	"switchboard/models"
	"switchboard/realtime"
	"switchboard/static"
	"switchboard/views"
)

const (
	shutdownTimeout = 10 * time.Second // how long open connections get to finish on SIGINT/SIGTERM
	sessionSweep    = 10 * time.Minute // how often expired sessions are deleted
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "switchboard:", err)
		os.Exit(1)
	}
}

// run wires config → database → store → hub → market → handlers → Fiber app, serves until ctx is done, then shuts down:
// stop accepting, close every socket with 1012, wait for the handlers, close the database last.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	backup := len(args) > 0 && args[0] == "backup"
	if backup {
		args = args[1:]
	}
	cfg, err := config.Load(args, getenv, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if cfg.Version {
		fmt.Fprintln(stdout, "switchboard", version())
		return nil
	}
	if backup {
		return backupTo(ctx, cfg, stdout)
	}
	log := slog.New(slog.NewTextHandler(stdout, nil))
	if cfg.LogFormat == "json" {
		log = slog.New(slog.NewJSONHandler(stdout, nil))
	}

	store, err := models.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer store.Close()
	if _, err := store.EnsureRoom(ctx, "general", models.RoomOpen); err != nil {
		return err
	}
	files, err := static.NewAssets()
	if err != nil {
		return err
	}
	broker, closeBroker, err := newBroker(cfg.RedisURL, log)
	if err != nil {
		return err
	}
	defer closeBroker()
	hub := realtime.NewHub(broker, log)
	symbols := cfg.Symbols
	if len(symbols) == 0 {
		symbols = market.DefaultSymbols()
	}
	mkt := market.NewService(symbols)
	deps := handlers.Deps{
		Log:             log,
		Store:           store,
		Hub:             hub,
		Market:          mkt,
		Assets:          assetURLs(files),
		AllowedOrigins:  cfg.AllowedOrigins,
		SecureCookies:   cfg.SecureCookies,
		SendRate:        rate.Limit(cfg.SendRate),
		SendBurst:       cfg.SendBurst,
		MaxUserConns:    cfg.MaxUserConns,
		BotAllowPrivate: cfg.BotPrivateOK,
	}
	if cfg.RedisURL != "" {
		// Several instances: who is online and the send limit are shared through Redis too.
		limiter, err := realtime.NewRedisRateLimiter(cfg.RedisURL, cfg.SendRate, cfg.SendBurst, log)
		if err != nil {
			return err
		}
		defer limiter.Close()
		deps.SendLimiter = limiter
		deps.NewPresence = redisPresence(cfg.RedisURL, log)
	}
	h := handlers.New(deps)
	app := h.NewApp()

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	background, stopBackground := context.WithCancel(context.Background())
	defer stopBackground()
	go func() {
		if err := hub.Run(background); err != nil {
			log.Error("hub stopped", slog.Any("error", err))
		}
	}()
	go sweepSessions(background, store, log)
	go h.Run(background)
	if cfg.Feed == "sim" {
		seed := cfg.Seed
		if seed == 0 {
			seed = time.Now().UnixNano()
		}
		go func() {
			if err := mkt.Run(background, market.NewSim(symbols, seed, cfg.Tick), h.PublishQuote); err != nil {
				log.Error("market stopped", slog.Any("error", err))
			}
		}()
	}

	if cfg.PprofAddr != "" {
		go servePprof(cfg.PprofAddr, log)
	}
	served := make(chan error, 1)
	go func() { served <- app.Listener(ln) }()
	log.Info("switchboard is listening", slog.String("addr", ln.Addr().String()), slog.String("db", store.Driver()),
		slog.Bool("redis", cfg.RedisURL != ""))

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- app.ShutdownWithContext(shutdownCtx) }()
	if err := h.Shutdown(shutdownCtx); err != nil {
		log.Warn("sockets still open at shutdown", slog.Any("error", err))
	}
	if err := <-stopped; err != nil {
		log.Warn("connections still open at shutdown", slog.Any("error", err))
	}
	log.Info("stopped")
	return nil
}

// backupTo writes a consistent online copy of the SQLite database: `switchboard backup [-db FILE] COPY`.
func backupTo(ctx context.Context, cfg config.Config, stdout io.Writer) error {
	if len(cfg.Args) != 1 {
		return errors.New("usage: switchboard backup [-db switchboard.db] COPY.db")
	}
	store, err := models.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.Backup(ctx, cfg.Args[0]); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backed up %s to %s\n", cfg.DatabaseURL, cfg.Args[0])
	return nil
}

// version is the module version, or the VCS revision the binary was built from.
func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown)"
	}
	v := info.Main.Version
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " " + s.Value[:12]
		}
	}
	return v
}

// newBroker is the in-process broker, or Redis pub/sub when a URL is given (several instances). Redis need not be
// up yet: the instance serves its own clients meanwhile and connects when Redis comes.
func newBroker(url string, log *slog.Logger) (realtime.Broker, func() error, error) {
	if url == "" {
		return realtime.NewMemoryBroker(), func() error { return nil }, nil
	}
	b, err := realtime.NewRedisBroker(url, log)
	if err != nil {
		return nil, nil, err
	}
	return b, b.Close, nil
}

// servePprof serves Go's profiler on its own listener, apart from the app (never on the public address).
func servePprof(addr string, log *slog.Logger) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	log.Info("profiler listening", slog.String("addr", addr))
	if err := http.ListenAndServe(addr, mux); err != nil {
		log.Error("profiler stopped", slog.Any("error", err))
	}
}

// redisPresence builds the presence tracker shared by every instance through Redis leases. It is called once.
func redisPresence(url string, log *slog.Logger) func(time.Duration, func(int64)) handlers.PresenceTracker {
	return func(linger time.Duration, onChange func(int64)) handlers.PresenceTracker {
		p, err := realtime.NewRedisPresence(url, linger, onChange, log)
		if err != nil { // the URL was checked already by the broker and the limiter
			log.Error("presence over redis", slog.Any("error", err))
			return realtime.NewPresence(linger, onChange)
		}
		return p
	}
}

// assetURLs names the cache-busted URLs of the embedded static files.
func assetURLs(a *static.Assets) views.Assets {
	return views.Assets{
		CSS:  a.URL("css/app.css"),
		HTMX: a.URL("js/htmx.min.js"),
		WS:   a.URL("js/ext/ws.js"),
		SSE:  a.URL("js/ext/sse.js"),
		App:  a.URL("js/app.js"),
	}
}

// sweepSessions deletes expired sessions now and then.
func sweepSessions(ctx context.Context, store *models.Store, log *slog.Logger) {
	t := time.NewTicker(sessionSweep)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := store.DeleteExpiredSessions(ctx); err != nil {
				log.Warn("session sweep", slog.Any("error", err))
			} else if n > 0 {
				log.Info("expired sessions deleted", slog.Int64("count", n))
			}
		}
	}
}
