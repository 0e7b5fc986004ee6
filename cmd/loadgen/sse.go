package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// sseResult is the sse mode's JSON line.
type sseResult struct {
	Peer                 string    `json:"peer"`
	Mode                 string    `json:"mode"`
	Path                 string    `json:"path"`
	Subs                 int       `json:"subs"`
	Seconds              float64   `json:"seconds"`
	Events               int64     `json:"events"`
	EventsPerS           int64     `json:"events_per_s"`
	EventsPerSubPerS     float64   `json:"events_per_sub_per_s"`
	Latency              latencyMS `json:"latency_ms"`
	LatencyBasis         string    `json:"latency_basis"` // "timestamp": receive − the tick's timestamp; "first-receipt": receive − the first subscriber's receive of the same event id
	ServerRSSBytesPerSub *int64    `json:"server_rss_bytes_per_sub"`
	ServerRSSMB          *int64    `json:"server_rss_mb"`
	ServerCPUPct         *float64  `json:"server_cpu_pct"`
	ServerCPUMsPerS      *float64  `json:"server_cpu_ms_per_s"`
	ServerCPUUsPerEvent  *float64  `json:"server_cpu_us_per_event"`
	Failures             int64     `json:"failures"` // streams that ended during the window
	ClientCPUPct         float64   `json:"client_cpu_pct"`
}

type sseRun struct {
	cfg       config
	measuring atomic.Bool
	closing   atomic.Bool
	hist      histogram
	events    atomic.Int64
	failures  atomic.Int64
	jsonBasis bool

	firstMu   sync.Mutex
	firstSeen map[string]int64 // event id → the first receive (unix ns), for HTML streams without a timestamp
}

var timestampKey = []byte(`"timestamp":`)

func runSSE(ctx context.Context, cfg config) (*sseResult, error) {
	if err := checkFDs(cfg.conns); err != nil {
		return nil, err
	}
	d, err := newDialer(cfg.sourceIPs)
	if err != nil {
		return nil, err
	}
	path := cfg.path
	if cfg.symbols != "" {
		path += "?symbols=" + url.QueryEscape(cfg.symbols)
	}
	run := &sseRun{cfg: cfg, firstSeen: make(map[string]int64), jsonBasis: !strings.HasPrefix(cfg.path, "/ticker/")}

	// Credentials: a bearer token for the JSON API, or sessions of a few users for the page's stream.
	var headers []string
	switch {
	case cfg.token != "":
		headers = []string{"Authorization: Bearer " + cfg.token}
	case run.jsonBasis:
		users, err := signupUsers(ctx, cfg.url, cfg.run, 1)
		if err != nil {
			return nil, fmt.Errorf("setup: %w", err)
		}
		tok, err := users[0].createToken(ctx, "bench-"+cfg.run)
		if err != nil {
			return nil, fmt.Errorf("setup: %w", err)
		}
		headers = []string{"Authorization: Bearer " + tok}
	default:
		users, err := signupUsers(ctx, cfg.url, cfg.run, max(cfg.users, 4))
		if err != nil {
			return nil, fmt.Errorf("setup: %w", err)
		}
		for _, u := range users {
			headers = append(headers, "Cookie: "+u.cookieHeader())
		}
	}

	before := mustProc(cfg)
	conns := make([]io.Closer, cfg.conns)
	defer func() {
		run.closing.Store(true)
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	var opened atomic.Int64
	stop := progress(cfg, "streams open", cfg.conns, &opened)
	start := time.Now()
	err = parallel(ctx, cfg.conns, cfg.dialConc, func(ctx context.Context, i int) error {
		c, body, err := openStream(ctx, d, i, cfg.url.Host, path, headers[i%len(headers)])
		if err != nil {
			return fmt.Errorf("stream %d: %w", i, explain(err))
		}
		conns[i] = c
		go run.read(i, body)
		opened.Add(1)
		return nil
	})
	stop()
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	cfg.logf("%d streams open in %s", cfg.conns, time.Since(start).Round(time.Millisecond))
	if err := sleepCtx(ctx, settle); err != nil {
		return nil, err
	}
	idle := mustProc(cfg)
	run.measuring.Store(true)
	startStats := mustProc(cfg)
	cpu0 := selfCPU()
	t0 := time.Now()
	if err := sleepCtx(ctx, time.Duration(cfg.seconds*float64(time.Second))); err != nil {
		return nil, err
	}
	run.measuring.Store(false)
	end := mustProc(cfg)
	wall := time.Since(t0).Seconds()
	clientCPU := (selfCPU() - cpu0).Seconds()

	res := &sseResult{
		Peer: cfg.label, Mode: "sse", Path: cfg.path, Subs: cfg.conns, Seconds: cfg.seconds,
		Events: run.events.Load(), Latency: run.hist.Summary(), Failures: run.failures.Load(),
		ClientCPUPct: round2(clientCPU / wall * 100), LatencyBasis: "first-receipt",
	}
	if run.jsonBasis {
		res.LatencyBasis = "timestamp"
	}
	res.EventsPerS = int64(math.Round(float64(res.Events) / wall))
	res.EventsPerSubPerS = round2(float64(res.Events) / wall / float64(cfg.conns))
	if before.ok && idle.ok && end.ok {
		perSub := int64(math.Round(float64(idle.rss-before.rss) / float64(cfg.conns)))
		mb := int64(math.Round(float64(end.rss) / 1048576))
		cpu := end.cpu - startStats.cpu
		pct, msPerS := round2(cpu/wall*100), round2(cpu*1000/wall)
		res.ServerRSSBytesPerSub, res.ServerRSSMB, res.ServerCPUPct, res.ServerCPUMsPerS = &perSub, &mb, &pct, &msPerS
		if res.Events > 0 {
			v := round2(cpu * 1e6 / float64(res.Events))
			res.ServerCPUUsPerEvent = &v
		}
	}
	return res, nil
}

// openStream sends one GET for an event stream over its own connection and returns once the headers say 200
// text/event-stream; body is the de-chunked stream.
func openStream(ctx context.Context, d *dialer, i int, host, path, header string) (io.Closer, io.Reader, error) {
	ctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()
	c, err := d.netDialer(i).DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, nil, err
	}
	deadline, _ := ctx.Deadline()
	_ = c.SetDeadline(deadline)
	req := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n%s\r\n\r\n", path, host, header)
	if _, err := io.WriteString(c, req); err != nil {
		c.Close()
		return nil, nil, err
	}
	br := bufio.NewReaderSize(c, readBufferSize)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
	if err != nil {
		c.Close()
		return nil, nil, fmt.Errorf("stream response: %w", err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		c.Close()
		return nil, nil, &httpError{Status: resp.StatusCode, Body: resp.Header.Get("Content-Type") + " " + string(body)}
	}
	_ = c.SetDeadline(time.Time{})
	return c, resp.Body, nil
}

// read parses one stream: "data:" lines gather until a blank line ends the event; comments, "event:" and
// "retry:" lines are skipped.
func (r *sseRun) read(i int, body io.Reader) {
	br := bufio.NewReaderSize(body, readBufferSize)
	var id []byte
	var data []byte
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull { // a line longer than the buffer: keep its start only
			data = append(data, line...)
			continue
		}
		if err != nil {
			if !r.closing.Load() && r.measuring.Load() {
				if r.failures.Add(1) <= 5 {
					warnf("stream %d ended: %v", i, err)
				}
			}
			return
		}
		line = bytes.TrimRight(line, "\r\n")
		switch {
		case len(line) == 0:
			if len(data) > 0 || len(id) > 0 {
				r.event(id, data)
			}
			id, data = id[:0], data[:0]
		case bytes.HasPrefix(line, []byte("data:")):
			data = append(data, bytes.TrimPrefix(line[5:], []byte(" "))...)
		case bytes.HasPrefix(line, []byte("id:")):
			id = append(id[:0], bytes.TrimSpace(line[3:])...)
		}
	}
}

func (r *sseRun) event(id, data []byte) {
	if !r.measuring.Load() {
		return
	}
	now := time.Now().UnixNano()
	r.events.Add(1)
	if r.jsonBasis {
		if j := bytes.Index(data, timestampKey); j >= 0 {
			if ts, _, ok := parseInt(bytes.TrimLeft(data[j+len(timestampKey):], " ")); ok {
				r.hist.Record(time.Duration(now - ts*int64(time.Millisecond)))
			}
		}
		return
	}
	if len(id) == 0 {
		return
	}
	r.firstMu.Lock()
	first, ok := r.firstSeen[string(id)]
	if !ok {
		r.firstSeen[string(id)] = now
		first = now
	}
	r.firstMu.Unlock()
	r.hist.Record(time.Duration(now - first))
}
