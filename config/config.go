// Package config reads Switchboard's settings from flags, with environment variables as fallbacks.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

var symbolPattern = regexp.MustCompile(`^[A-Z0-9.-]{1,12}$`)

// Config is everything the server needs to start.
type Config struct {
	Addr           string   // listen address, e.g. ":3000"
	DatabaseURL    string   // a SQLite path (default) or a postgres:// URL
	RedisURL       string   // redis://… to fan out over Redis pub/sub (several instances); empty: in-process
	AllowedOrigins []string // extra origins allowed to open WebSockets, e.g. "https://chat.example.com"
	SecureCookies  bool     // mark cookies Secure (set when served over HTTPS)
	Feed           string   // where prices come from: "sim" (simulated market) or "none" (only POST /api/prices)
	Symbols        []string // the ticker's symbols; empty means the simulator's default dozen
	Tick           time.Duration
	Seed           int64    // the simulator's seed; 0 picks one at start
	SendRate       float64  // messages per second one user may send
	SendBurst      int      // messages one user may send at once
	MaxUserConns   int      // live sockets and streams one user may hold
	BotPrivateOK   bool     // bots' webhooks may be on loopback, private or link-local addresses
	PprofAddr      string   // where to serve net/http/pprof (e.g. 127.0.0.1:6060); empty: not served
	LogFormat      string   // "text" or "json"
	Version        bool     // print the version and exit
	Args           []string // what follows the flags (a subcommand's arguments)
}

// setting ties one flag to its environment variable and default.
type setting struct {
	flag, env, def, usage string
}

var settings = []setting{
	{"addr", "ADDR", ":3000", "listen address"},
	{"db", "DATABASE_URL", "switchboard.db", "SQLite file path or postgres:// URL"},
	{"redis", "REDIS_URL", "", "redis:// URL: fan out through Redis pub/sub so several instances share rooms"},
	{"origins", "ALLOWED_ORIGINS", "", "comma-separated extra origins allowed to open WebSockets"},
	{"secure-cookies", "SECURE_COOKIES", "false", "mark session cookies Secure (behind HTTPS)"},
	{"feed", "FEED", "sim", "price source: sim (simulated market) or none (only POST /api/prices)"},
	{"symbols", "SYMBOLS", "", "comma-separated ticker symbols (default: a dozen simulated ones)"},
	{"tick", "TICK", "1s", "how often the simulator ticks each symbol"},
	{"seed", "SEED", "0", "the simulator's random seed (0: pick one at start)"},
	{"send-rate", "SEND_RATE", "5", "messages per second one user may send (a flood beyond it is refused)"},
	{"send-burst", "SEND_BURST", "20", "messages one user may send at once, on top of the rate"},
	{"log-format", "LOG_FORMAT", "text", "log lines as text or json"},
	{"pprof", "PPROF_ADDR", "", "serve Go's profiler (net/http/pprof) on this address, e.g. 127.0.0.1:6060; keep it private"},
	{"max-user-conns", "MAX_USER_CONNS", "16", "live sockets and streams one user may hold over all tabs and devices"},
	{"bot-private-ok", "BOT_ALLOW_PRIVATE", "false", "let bots' webhooks reach loopback, private and link-local addresses (off: refused)"},
}

// Load parses args (without the program name); a flag wins over its environment variable, which wins over the default.
func Load(args []string, getenv func(string) string, usage io.Writer) (Config, error) {
	fs := flag.NewFlagSet("switchboard", flag.ContinueOnError)
	fs.SetOutput(usage)
	values := make(map[string]*string, len(settings))
	for _, s := range settings {
		def := s.def
		if v := getenv(s.env); v != "" {
			def = v
		}
		values[s.flag] = fs.String(s.flag, def, fmt.Sprintf("%s (env %s)", s.usage, s.env))
	}
	version := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	secure, err := strconv.ParseBool(*values["secure-cookies"])
	if err != nil {
		return Config{}, fmt.Errorf("config: -secure-cookies: %q is not a boolean", *values["secure-cookies"])
	}
	botPrivateOK, err := strconv.ParseBool(*values["bot-private-ok"])
	if err != nil {
		return Config{}, fmt.Errorf("config: -bot-private-ok: %q is not a boolean", *values["bot-private-ok"])
	}
	tick, err := time.ParseDuration(*values["tick"])
	if err != nil {
		return Config{}, fmt.Errorf("config: -tick: %q is not a duration like 1s or 250ms", *values["tick"])
	}
	seed, err := strconv.ParseInt(*values["seed"], 10, 64)
	if err != nil {
		return Config{}, fmt.Errorf("config: -seed: %q is not a whole number", *values["seed"])
	}
	sendRate, err := strconv.ParseFloat(*values["send-rate"], 64)
	if err != nil || sendRate <= 0 {
		return Config{}, fmt.Errorf("config: -send-rate: %q is not a positive number", *values["send-rate"])
	}
	sendBurst, err := strconv.Atoi(*values["send-burst"])
	if err != nil || sendBurst < 1 {
		return Config{}, fmt.Errorf("config: -send-burst: %q is not a whole number of at least 1", *values["send-burst"])
	}
	maxConns, err := strconv.Atoi(*values["max-user-conns"])
	if err != nil || maxConns < 1 {
		return Config{}, fmt.Errorf("config: -max-user-conns: %q is not a whole number of at least 1", *values["max-user-conns"])
	}
	var symbols []string
	for _, s := range splitList(*values["symbols"]) {
		symbols = append(symbols, strings.ToUpper(s))
	}
	var rest []string
	if fs.NArg() > 0 {
		rest = fs.Args()
	}
	cfg := Config{
		Addr:           *values["addr"],
		DatabaseURL:    *values["db"],
		RedisURL:       *values["redis"],
		AllowedOrigins: splitList(*values["origins"]),
		SecureCookies:  secure,
		Feed:           *values["feed"],
		Symbols:        symbols,
		Tick:           tick,
		Seed:           seed,
		SendRate:       sendRate,
		SendBurst:      sendBurst,
		MaxUserConns:   maxConns,
		BotPrivateOK:   botPrivateOK,
		PprofAddr:      *values["pprof"],
		LogFormat:      *values["log-format"],
		Version:        *version,
		Args:           rest,
	}
	return cfg, cfg.Validate()
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	if c.Addr == "" {
		return errors.New("config: -addr must not be empty")
	}
	if c.DatabaseURL == "" {
		return errors.New("config: -db must not be empty")
	}
	if c.RedisURL != "" && !strings.HasPrefix(c.RedisURL, "redis://") && !strings.HasPrefix(c.RedisURL, "rediss://") {
		return fmt.Errorf("config: -redis: %q is not a redis:// URL", c.RedisURL)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return fmt.Errorf("config: -log-format: %q is neither text nor json", c.LogFormat)
	}
	if c.Feed != "sim" && c.Feed != "none" {
		return fmt.Errorf("config: -feed: %q is neither sim nor none", c.Feed)
	}
	if c.Tick < 10*time.Millisecond {
		return errors.New("config: -tick must be at least 10ms")
	}
	for _, s := range c.Symbols {
		if !symbolPattern.MatchString(s) {
			return fmt.Errorf("config: -symbols: %q is not a symbol (1–12 of A–Z 0–9 . -)", s)
		}
	}
	for _, o := range c.AllowedOrigins {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return fmt.Errorf("config: -origins: %q is not an origin like https://chat.example.com", o)
		}
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, strings.TrimSuffix(part, "/"))
		}
	}
	return out
}
