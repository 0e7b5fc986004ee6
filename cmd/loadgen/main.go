// Command loadgen loads a running Switchboard server the way browsers do and prints one JSON line of figures, the
// same as the Socket.io peer's loadgen.js (../shared/peers/socketio-seed/loadgen.js) prints for the same load, so
// the two can be set side by side.
//
//	loadgen --url http://127.0.0.1:3000 --pid <server pid> --conns 1000 --rooms 10 --senders 10 --rate 200 --seconds 10
//
// Modes: chat (default: room sockets, fan-out latency and server cost per delivery), sse (ticker stream
// subscribers: server CPU per second, memory per subscriber, tick latency) and reconnect (a server restart: time
// until every socket is back and caught up, messages lost). See bench/README.md.
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// config is every flag; the peer's flags keep their names and meaning.
type config struct {
	mode      string
	url       *url.URL
	pid       int
	alsoURLs  []*url.URL // more instances of one deployment: client i connects to instance i % (1 + len)
	alsoPIDs  []int      // their pids: CPU and memory figures add up every instance
	conns     int
	rooms     int
	senders   int
	rate      float64
	seconds   float64
	users     int
	sourceIPs string
	client    string
	dialConc  int
	run       string
	quiet     bool
	label     string
	profile   string

	// sse
	path    string
	token   string
	symbols string

	// reconnect
	restartCmd string
	messages   int
	timeout    time.Duration
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	var ue usageError
	switch {
	case errors.As(err, &ue):
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(2)
	case err != nil:
		fatalf("%v", err)
	}
}

// usageError is a flag that does not parse or validate (exit status 2).
type usageError struct{ error }

// run parses args, runs the mode and writes its JSON line to stdout.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	cfg, err := parseFlags(args)
	if err != nil {
		return usageError{err}
	}
	if cfg.profile != "" {
		f, err := os.Create(cfg.profile)
		if err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	var out any
	switch cfg.mode {
	case "chat":
		out, err = runChat(ctx, cfg)
	case "sse":
		out, err = runSSE(ctx, cfg)
	case "reconnect":
		out, err = runReconnect(ctx, cfg)
	}
	if err != nil {
		return err
	}
	line, _ := json.Marshal(out)
	_, err = fmt.Fprintln(stdout, string(line))
	return err
}

func parseFlags(args []string) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	rawURL := fs.String("url", "http://127.0.0.1:3000", "the server's base URL")
	fs.StringVar(&cfg.mode, "mode", "chat", "chat, sse or reconnect")
	fs.IntVar(&cfg.pid, "pid", 0, "the server's pid, for CPU and memory figures from /proc (0: none)")
	alsoURL := fs.String("also-url", "", "chat: comma-separated base URLs of more instances sharing the database and Redis; clients are spread over all instances, setup goes through --url")
	alsoPID := fs.String("also-pid", "", "comma-separated pids of the --also-url instances (figures add up all instances)")
	fs.IntVar(&cfg.conns, "conns", 1000, "client connections (chat, reconnect) or stream subscribers (sse)")
	fs.IntVar(&cfg.rooms, "rooms", 10, "rooms; client i joins room i % rooms")
	fs.IntVar(&cfg.senders, "senders", 10, "clients 0..senders-1 send; sender k sends in room k % rooms")
	fs.Float64Var(&cfg.rate, "rate", 200, "messages per second, all senders together (an open-loop schedule)")
	fs.Float64Var(&cfg.seconds, "seconds", 10, "how long to send (chat) or to listen (sse)")
	fs.IntVar(&cfg.users, "users", 0, "accounts to spread the connections over (0: one per room, so no socket gets another room's unread marks)")
	fs.StringVar(&cfg.sourceIPs, "source-ips", "", "comma-separated local addresses to dial from, round robin (e.g. 127.0.0.1,127.0.0.2): one address gives at most ~28k sockets")
	fs.StringVar(&cfg.client, "client", "raw", "WebSocket client: raw (hand-rolled framing, least CPU) or coder (github.com/coder/websocket)")
	fs.IntVar(&cfg.dialConc, "dial-concurrency", 64, "sockets opened at once while connecting")
	fs.StringVar(&cfg.run, "run", "", "a name for this run's users and rooms (default: random)")
	fs.BoolVar(&cfg.quiet, "quiet", false, "no progress lines on stderr")
	fs.StringVar(&cfg.label, "label", "switchboard", `the "peer" field of the output (sse mode can load the Socket.io peer's stream too)`)
	fs.StringVar(&cfg.profile, "cpuprofile", "", "write this tool's own CPU profile to a file (to find client-side cost)")
	fs.StringVar(&cfg.path, "path", "/api/stock-stream", "sse: /api/stock-stream (JSON, bearer token) or /ticker/stream (HTML, session)")
	fs.StringVar(&cfg.token, "token", "", "sse: the API token for /api/stock-stream (default: create one through the settings form)")
	fs.StringVar(&cfg.symbols, "symbols", "", "sse: ?symbols= filter, e.g. VOIDX (default: all)")
	fs.StringVar(&cfg.restartCmd, "restart-cmd", "", "reconnect: a shell command that restarts the server on the same address and database (its last output line may be the new pid)")
	fs.IntVar(&cfg.messages, "messages", 100, "reconnect: messages posted right after the server is back, round robin over the rooms")
	fs.DurationVar(&cfg.timeout, "timeout", 60*time.Second, "reconnect: give up waiting for clients to come back and catch up after this")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	u, err := url.Parse(strings.TrimSuffix(*rawURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "ws") || u.Host == "" {
		return cfg, fmt.Errorf("--url: %q is not like http://127.0.0.1:3000", *rawURL)
	}
	u.Scheme = "http"
	cfg.url = u
	for _, raw := range strings.Split(*alsoURL, ",") {
		if raw = strings.TrimSpace(raw); raw == "" {
			continue
		}
		au, err := url.Parse(strings.TrimSuffix(raw, "/"))
		if err != nil || au.Host == "" {
			return cfg, fmt.Errorf("--also-url: %q is not like http://127.0.0.1:3001", raw)
		}
		cfg.alsoURLs = append(cfg.alsoURLs, au)
	}
	for _, raw := range strings.Split(*alsoPID, ",") {
		if raw = strings.TrimSpace(raw); raw == "" {
			continue
		}
		pid, err := strconv.Atoi(raw)
		if err != nil {
			return cfg, fmt.Errorf("--also-pid: %q is not a pid", raw)
		}
		cfg.alsoPIDs = append(cfg.alsoPIDs, pid)
	}
	switch {
	case cfg.mode != "chat" && cfg.mode != "sse" && cfg.mode != "reconnect":
		return cfg, fmt.Errorf("--mode: %q is not chat, sse or reconnect", cfg.mode)
	case cfg.conns < 1 || cfg.rooms < 1:
		return cfg, fmt.Errorf("--conns and --rooms must be at least 1")
	case cfg.mode == "chat" && (cfg.senders < 1 || cfg.rate <= 0):
		return cfg, fmt.Errorf("--senders must be at least 1 and --rate positive")
	case cfg.seconds <= 0:
		return cfg, fmt.Errorf("--seconds must be positive")
	case cfg.client != "raw" && cfg.client != "coder":
		return cfg, fmt.Errorf("--client: %q is not raw or coder", cfg.client)
	case cfg.dialConc < 1:
		return cfg, fmt.Errorf("--dial-concurrency must be at least 1")
	case cfg.mode == "reconnect" && cfg.restartCmd == "":
		return cfg, fmt.Errorf("--mode reconnect needs --restart-cmd")
	case cfg.users < 0 || cfg.messages < 0:
		return cfg, fmt.Errorf("--users and --messages must not be negative")
	}
	if cfg.pid != 0 {
		if _, err := readProc(cfg.pid); err != nil {
			return cfg, fmt.Errorf("--pid %d: %w", cfg.pid, err)
		}
	}
	if cfg.run == "" {
		var b [4]byte
		_, _ = rand.Read(b[:])
		cfg.run = fmt.Sprintf("%x", b)
	}
	return cfg, nil
}

// logf prints a progress line to stderr (stdout carries only the JSON line).
func (c config) logf(format string, args ...any) {
	if !c.quiet {
		fmt.Fprintf(os.Stderr, "loadgen: "+format+"\n", args...)
	}
}

// warnf prints a warning to stderr even with --quiet: something in the run is off.
func warnf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "loadgen: warning: "+format+"\n", args...)
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "loadgen: "+format+"\n", args...)
	os.Exit(1)
}

// sleepCtx sleeps d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
