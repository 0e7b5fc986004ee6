package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	probeEvery    = 10 * time.Millisecond // /healthz while the server restarts
	downUnseenFor = 5 * time.Second       // restart command done and the server never looked down: take "up" as then
	preDelivered  = 15 * time.Second      // before the restart, every client has the room's first message
	maxBackoffExp = 6                     // htmx ws: full jitter over 0..1000·2^min(retry, 6) ms
	postWorkers   = 8
)

// reconnectResult is the reconnect mode's JSON line. Times are in ms; "_ms" figures of clients count from the
// moment the restarted server first answered /healthz ("up"), as the benchmark plan's t50/t99/t100 do.
type reconnectResult struct {
	Peer           string    `json:"peer"`
	Mode           string    `json:"mode"`
	Conns          int       `json:"conns"`
	Rooms          int       `json:"rooms"`
	Messages       int       `json:"messages"`
	Posted         int       `json:"posted"`
	PostErrors     int       `json:"post_errors"`
	RestartCmdMS   float64   `json:"restart_cmd_ms"`
	DownMS         *float64  `json:"down_ms"` // restart start → /healthz first failed
	UpMS           *float64  `json:"up_ms"`   // restart start → /healthz answered again
	BackMS         latencyMS `json:"back_ms"` // up → a client's new socket delivered its first frame
	AllBackMS      *float64  `json:"all_back_ms"`
	CaughtUpMS     latencyMS `json:"caught_up_ms"` // up → a client holds every message posted to its room
	AllCaughtUpMS  *float64  `json:"all_caught_up_ms"`
	PostMS         float64   `json:"post_ms"` // the sender's time to post all messages
	NotBack        int       `json:"not_back"`
	NotCaughtUp    int       `json:"not_caught_up"`
	Lost           int64     `json:"lost"`       // (client, message) pairs posted to its room and never received
	Duplicates     int64     `json:"duplicates"` // message ids a client received more than once
	Attempts       int64     `json:"attempts"`   // connection attempts after the restart began
	FailedAttempts int64     `json:"failed_attempts"`
	FailedAfterUp  int64     `json:"failed_after_up"` // attempts that failed once /healthz answered again
	// up → … is bounded below by the posting itself; this is how long the slowest client lagged behind the last post.
	AllCaughtUpAfterPostsMS *float64       `json:"all_caught_up_after_posts_ms"`
	CloseCodes              map[string]int `json:"close_codes"` // how the old server's sockets ended
	NewPID                  int            `json:"new_pid,omitempty"`
	ServerCPUMS             *float64       `json:"server_cpu_ms"`      // the new server's CPU time, start to end of the run
	ServerPeakRSS           *int64         `json:"server_peak_rss_mb"` // the new server's VmHWM
	Client                  string         `json:"client"`
}

type rcClient struct {
	i, room int

	mu         sync.Mutex // guards everything below: the client's goroutine writes, the run reads
	conn       wsConn
	lastID     int64
	seen       map[int64]bool
	seqAt      map[int64]int64 // message sequence (k) → first receive, unix ns
	dups       int64
	backAt     int64 // first frame of a socket opened after the restart began
	attempts   int64
	failed     int64
	closeCode  int // how the socket open at the restart ended
	postSeen   int // distinct sequences ≥ the first post-restart one
	stopped    bool
	firstFrame chan struct{}
}

type rcRun struct {
	cfg       config
	b         *bench
	d         *dialer
	restartAt atomic.Int64 // unix ns; 0 before the restart
	upAt      atomic.Int64 // unix ns; 0 until the restarted server answered /healthz
	failedUp  atomic.Int64
	firstPost int64 // sequences from here on are posted after the restart
	stopping  atomic.Bool
}

func runReconnect(ctx context.Context, cfg config) (*reconnectResult, error) {
	if err := checkFDs(cfg.conns); err != nil {
		return nil, err
	}
	d, err := newDialer(cfg.sourceIPs)
	if err != nil {
		return nil, err
	}
	b, err := setupBench(ctx, cfg)
	if err != nil {
		return nil, err
	}
	r := &rcRun{cfg: cfg, b: b, d: d, firstPost: int64(cfg.rooms)}
	clients := make([]*rcClient, cfg.conns)
	for i := range clients {
		clients[i] = &rcClient{i: i, room: i % cfg.rooms, seen: map[int64]bool{}, seqAt: map[int64]int64{}, firstFrame: make(chan struct{})}
	}
	defer func() {
		r.stopping.Store(true)
		for _, c := range clients {
			c.mu.Lock()
			c.stopped = true
			conn := c.conn
			c.mu.Unlock()
			if conn != nil {
				conn.Close(1000)
			}
		}
	}()

	// Connect everyone (a failure here is a setup failure), then keep each socket alive in its own goroutine.
	var connected atomic.Int64
	stop := progress(cfg, "connected", cfg.conns, &connected)
	runCtx := ctx // the clients live as long as the run, not as long as the connect phase
	err = parallel(ctx, cfg.conns, cfg.dialConc, func(ctx context.Context, i int) error {
		c := clients[i]
		conn, err := dialWS(ctx, cfg.client, d, i, b.socketURL(i, c.room, -1), b.roomUser(c.room).cookieHeader())
		if err != nil {
			return fmt.Errorf("client %d (room %d): %w", i, c.room, explain(err))
		}
		go r.keep(runCtx, c, conn)
		select {
		case <-c.firstFrame:
		case <-time.After(firstFrameWait):
			return fmt.Errorf("client %d (room %d): no first frame within %s", i, c.room, firstFrameWait)
		case <-ctx.Done():
			return ctx.Err()
		}
		connected.Add(1)
		return nil
	})
	stop()
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}

	// One message per room before the restart, so every client reconnects with ?after=<an id it holds>.
	if n, err := r.post(ctx, 0, cfg.rooms); err != nil || n != cfg.rooms {
		return nil, fmt.Errorf("posting the first message of each room: %d of %d posted: %v", n, cfg.rooms, err)
	}
	if err := waitUntil(ctx, preDelivered, func() bool { return r.countHaving(clients, 0, int64(cfg.rooms)) == cfg.conns }); err != nil {
		return nil, fmt.Errorf("before the restart: not every client received its room's message within %s", preDelivered)
	}
	cfg.logf("%d clients connected and current; restarting the server", cfg.conns)

	// The restart: the command runs while /healthz is probed; "up" is the first 200 after a failure.
	res := &reconnectResult{Peer: cfg.label, Mode: "reconnect", Conns: cfg.conns, Rooms: cfg.rooms, Messages: cfg.messages,
		CloseCodes: map[string]int{}, Client: cfg.client}
	t0 := time.Now()
	r.restartAt.Store(t0.UnixNano())
	cmdDone := make(chan error, 1)
	var cmdOut bytes.Buffer
	go func() { cmdDone <- runRestart(ctx, cfg.restartCmd, &cmdOut) }()
	downAt, upAt, cmdErr := probeRestart(ctx, cfg, t0, cmdDone, res)
	if cmdErr != nil {
		return nil, fmt.Errorf("--restart-cmd: %w; output: %s", cmdErr, strings.TrimSpace(cmdOut.String()))
	}
	if upAt.IsZero() {
		return nil, fmt.Errorf("the server did not answer /healthz within %s of the restart", cfg.timeout)
	}
	if !downAt.IsZero() {
		v := msSince(t0, downAt)
		res.DownMS = &v
	}
	up := msSince(t0, upAt)
	res.UpMS = &up
	r.upAt.Store(upAt.UnixNano())
	if pid := lastInt(cmdOut.String()); pid > 0 {
		res.NewPID = pid
	}
	cfg.logf("server up %.0f ms after the restart began; posting %d messages", up, cfg.messages)

	// Post while the clients are still coming back: they must catch up through ?after= or live.
	postStart := time.Now()
	posted, postErr := r.post(ctx, r.firstPost, cfg.messages)
	postEnd := time.Now()
	res.PostMS = msSince(postStart, postEnd)
	res.Posted, res.PostErrors = posted, cfg.messages-posted
	if postErr != nil {
		cfg.logf("posting: %v", postErr)
	}
	expected := make([]int, cfg.rooms) // post-restart messages per room
	for j := range posted {
		expected[(int(r.firstPost)+j)%cfg.rooms]++
	}
	deadline := t0.Add(cfg.timeout)
	_ = waitUntil(ctx, time.Until(deadline), func() bool {
		for _, c := range clients {
			c.mu.Lock()
			ok := c.backAt != 0 && c.postSeen >= expected[c.room]
			c.mu.Unlock()
			if !ok {
				return false
			}
		}
		return true
	})
	r.stopping.Store(true)

	// Figures.
	var back, caught histogram
	var allBack, allCaught float64
	upNS := upAt.UnixNano()
	for _, c := range clients {
		c.mu.Lock()
		res.Duplicates += c.dups
		res.Attempts += c.attempts
		res.FailedAttempts += c.failed
		if c.closeCode != 0 {
			res.CloseCodes[strconv.Itoa(c.closeCode)]++
		}
		if c.backAt == 0 {
			res.NotBack++
		} else {
			v := time.Duration(c.backAt - upNS)
			back.Record(v)
			allBack = max(allBack, float64(v)/1e6)
		}
		var last int64
		missing := 0
		for seq := r.firstPost + int64(c.room); seq < r.firstPost+int64(posted); seq += int64(cfg.rooms) {
			if at, ok := c.seqAt[seq]; ok {
				last = max(last, at)
			} else {
				missing++
			}
		}
		for seq := int64(c.room); seq < int64(cfg.rooms); seq += int64(cfg.rooms) { // the pre-restart message
			if _, ok := c.seqAt[seq]; !ok {
				missing++
			}
		}
		res.Lost += int64(missing)
		switch {
		case missing > 0 || c.backAt == 0:
			res.NotCaughtUp++
		default:
			v := time.Duration(max(last, c.backAt) - upNS)
			caught.Record(v)
			allCaught = max(allCaught, float64(v)/1e6)
		}
		c.mu.Unlock()
	}
	res.BackMS, res.CaughtUpMS = back.Summary(), caught.Summary()
	if res.NotBack == 0 {
		v := math.Round(allBack*100) / 100
		res.AllBackMS = &v
	}
	if res.NotCaughtUp == 0 {
		v := math.Round(allCaught*100) / 100
		res.AllCaughtUpMS = &v
		lag := max(0, round2(v-msSince(upAt, postEnd)))
		res.AllCaughtUpAfterPostsMS = &lag
	}
	res.FailedAfterUp = r.failedUp.Load()
	if res.NewPID > 0 {
		if s, err := readProc(res.NewPID); err == nil {
			v := round2(s.cpu * 1000)
			res.ServerCPUMS = &v
		}
		if hwm := readHWM(res.NewPID); hwm > 0 {
			v := int64(math.Round(float64(hwm) / 1048576))
			res.ServerPeakRSS = &v
		}
	}
	return res, nil
}

// keep runs one client like the htmx ws extension: read until the socket ends, wait a full-jitter backoff
// (random 0–1 s, then 0–2 s, …, at most 0–64 s; reset once a socket opens), reconnect with ?after=<newest id held>.
func (r *rcRun) keep(ctx context.Context, c *rcClient, conn wsConn) {
	retry := 0
	for {
		if conn != nil {
			code := r.readUntilClosed(c, conn, &retry)
			c.mu.Lock()
			if c.closeCode == 0 && r.restartAt.Load() != 0 {
				c.closeCode = code
			}
			c.mu.Unlock()
		}
		if r.stopping.Load() || ctx.Err() != nil {
			return
		}
		exp := min(retry, maxBackoffExp)
		delay := time.Duration(mrand.Float64() * float64(time.Second) * float64(int(1)<<exp))
		retry++
		if sleepCtx(ctx, delay) != nil || r.stopping.Load() {
			return
		}
		c.mu.Lock()
		after := c.lastID
		if r.restartAt.Load() != 0 {
			c.attempts++
		}
		c.mu.Unlock()
		var err error
		conn, err = dialWS(ctx, r.cfg.client, r.d, c.i, r.b.socketURL(c.i, c.room, after), r.b.roomUser(c.room).cookieHeader())
		if err != nil {
			conn = nil
			c.mu.Lock()
			c.failed++
			c.mu.Unlock()
			if up := r.upAt.Load(); up != 0 && time.Now().UnixNano() > up {
				if r.failedUp.Add(1) <= 3 {
					warnf("client %d: reconnect failed after the server was up: %v", c.i, explain(err))
				}
			}
			continue
		}
	}
}

// readUntilClosed reads one socket to its end and returns its close code (1006 when it just dropped).
func (r *rcRun) readUntilClosed(c *rcClient, conn wsConn, retry *int) int {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		conn.Close(1000)
		return 1000
	}
	c.conn = conn
	c.mu.Unlock()
	first := true
	for {
		p, err := conn.Next()
		if err != nil {
			c.mu.Lock()
			c.conn = nil
			c.mu.Unlock()
			conn.Close(1000)
			return closeCode(err)
		}
		now := time.Now().UnixNano()
		c.mu.Lock()
		if first {
			first = false
			*retry = 0 // htmx resets its retry count when a socket opens
			if r.restartAt.Load() != 0 && c.backAt == 0 {
				c.backAt = now
			}
		}
		for m := range messagesIn(p) { // the first frame carries the replay after the room list
			if m.ID > 0 {
				if c.seen[m.ID] {
					c.dups++
				}
				c.seen[m.ID] = true
				c.lastID = max(c.lastID, m.ID)
			}
			if m.Marked {
				if _, ok := c.seqAt[m.K]; !ok {
					c.seqAt[m.K] = now
					if m.K >= r.firstPost {
						c.postSeen++
					}
				}
			}
		}
		c.mu.Unlock()
		if p != nil && c.firstFrame != nil {
			select {
			case <-c.firstFrame:
			default:
				close(c.firstFrame)
			}
		}
	}
}

// post sends messages with sequences from..from+n-1, message j to room j % rooms as that room's user, over the
// form path; a refused or failed post is retried until the run's timeout. It returns how many were stored.
func (r *rcRun) post(ctx context.Context, from int64, n int) (int, error) {
	var ok atomic.Int64
	var mu sync.Mutex
	var firstErr error
	ctx, cancel := context.WithTimeout(ctx, r.cfg.timeout)
	defer cancel()
	_ = parallel(ctx, n, postWorkers, func(ctx context.Context, j int) error {
		seq := from + int64(j)
		room := int(seq) % r.cfg.rooms
		u := r.b.roomUser(room)
		text := string(chatText(time.Now().UnixNano(), seq))
		for {
			t := time.Now()
			err := u.postMessage(ctx, r.b.rooms[room], text, fmt.Sprintf("rc-%s-%d", r.cfg.run, seq))
			if d := time.Since(t); d > time.Second {
				warnf("posting message %d took %s (err %v)", seq, d.Round(time.Millisecond), err)
			}
			if err == nil {
				ok.Add(1)
				return nil
			}
			var he *httpError
			if errors.As(err, &he) && he.Status == http.StatusForbidden { // a stale CSRF token: fetch a fresh one
				_, _ = u.get(ctx, "/rooms")
			}
			if sleepCtx(ctx, 50*time.Millisecond) != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				return nil
			}
		}
	})
	return int(ok.Load()), firstErr
}

// countHaving counts the clients that received every sequence of their room in [from, to).
func (r *rcRun) countHaving(clients []*rcClient, from, to int64) int {
	n := 0
	for _, c := range clients {
		c.mu.Lock()
		all := true
		for seq := from + int64((c.room-int(from%int64(r.cfg.rooms))+r.cfg.rooms)%r.cfg.rooms); seq < to; seq += int64(r.cfg.rooms) {
			if _, ok := c.seqAt[seq]; !ok {
				all = false
				break
			}
		}
		c.mu.Unlock()
		if all {
			n++
		}
	}
	return n
}

// runRestart runs the restart command with its output in a buffer (not a pipe: a server it starts in the
// background inherits the output and would hold a pipe open).
func runRestart(ctx context.Context, command string, out *bytes.Buffer) error {
	f, err := os.CreateTemp("", "loadgen-restart-*.log")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	cmd := exec.CommandContext(ctx, "sh", "-c", command)
	cmd.Stdout, cmd.Stderr = f, f
	err = cmd.Run()
	data, _ := os.ReadFile(f.Name())
	out.Write(data)
	return err
}

// probeRestart polls /healthz with fresh connections until the server was seen down and then up again.
func probeRestart(ctx context.Context, cfg config, t0 time.Time, cmdDone <-chan error, res *reconnectResult) (downAt, upAt time.Time, cmdErr error) {
	c := &http.Client{Timeout: 500 * time.Millisecond, Transport: &http.Transport{DisableKeepAlives: true}}
	var cmdAt time.Time
	deadline := t0.Add(cfg.timeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		select {
		case err := <-cmdDone:
			cmdAt = time.Now()
			res.RestartCmdMS = msSince(t0, cmdAt)
			if err != nil {
				return downAt, upAt, err
			}
			cmdDone = nil
		default:
		}
		ok := healthy(ctx, c, cfg.url)
		now := time.Now()
		switch {
		case !ok && downAt.IsZero():
			downAt = now
		case ok && !downAt.IsZero():
			upAt = now
		case ok && !cmdAt.IsZero() && now.Sub(cmdAt) > downUnseenFor:
			upAt = cmdAt // it restarted between two probes
		}
		if !upAt.IsZero() {
			if cmdDone != nil { // wait for the command, for its output (the new pid)
				if err := <-cmdDone; err != nil {
					return downAt, upAt, err
				}
				res.RestartCmdMS = msSince(t0, time.Now())
			}
			return downAt, upAt, nil
		}
		_ = sleepCtx(ctx, probeEvery)
	}
	return downAt, upAt, nil
}

// waitUntil polls cond every 20 ms until it holds or d passes.
func waitUntil(ctx context.Context, d time.Duration, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}

func msSince(a, b time.Time) float64 { return round2(float64(b.Sub(a)) / 1e6) }

// lastInt is the last line of s when it is a whole number (the restart command may print the new pid).
func lastInt(s string) int {
	lines := strings.Fields(strings.TrimSpace(s))
	if len(lines) == 0 {
		return 0
	}
	n, err := strconv.Atoi(lines[len(lines)-1])
	if err != nil {
		return 0
	}
	return n
}

// readHWM is a process's peak RSS (VmHWM) in bytes, or 0.
func readHWM(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb * 1024
			}
		}
	}
	return 0
}
