package main

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

const settle = time.Second // before measuring (idle memory) and after sending (in-flight deliveries), as the peer

var (
	composeError = []byte(`id="compose-error"`) // the server's answer to a refused send, to the sender only
	ownClientID  = []byte(`data-client-id="lg-`)
)

// chatResult is the peer's JSON line, key for key, then Switchboard's extras.
type chatResult struct {
	Peer                   string    `json:"peer"`
	Conns                  int       `json:"conns"`
	Rooms                  int       `json:"rooms"`
	Senders                int       `json:"senders"`
	Rate                   float64   `json:"rate"`
	Seconds                float64   `json:"seconds"`
	Sent                   int64     `json:"sent"`
	Delivered              int64     `json:"delivered"`
	Expected               int64     `json:"expected"`
	DeliveriesPerS         int64     `json:"deliveries_per_s"`
	Latency                latencyMS `json:"latency_ms"`
	ServerRSSBytesPerConn  *int64    `json:"server_rss_bytes_per_conn"`
	ServerRSSMB            *int64    `json:"server_rss_mb"`
	ServerCPUUsPerDelivery *float64  `json:"server_cpu_us_per_delivery"`

	ServerCPUPct     *float64 `json:"server_cpu_pct"`     // % of one core over the measured window
	BytesPerDelivery *float64 `json:"bytes_per_delivery"` // WebSocket payload bytes of the frames that carried messages
	Lost             int64    `json:"lost"`               // expected − delivered
	ClientCPUPct     float64  `json:"client_cpu_pct"`     // this process, % of one core over the window
	OtherFrames      int64    `json:"other_frames"`       // frames in the window without a load-tool message
	SendErrors       int64    `json:"send_errors"`
	Refused          int64    `json:"refused"`       // sends the server answered with a compose error (e.g. its send-rate limit)
	Drops            int64    `json:"drops"`         // sockets that closed during the run
	ClientRSSMB      int64    `json:"client_rss_mb"` // this process at the end
	Users            int      `json:"users"`
	Client           string   `json:"client"`
}

type chatClient struct {
	i, room int
	conn    wsConn
	sendMu  sync.Mutex    // senders may share a socket
	first   chan struct{} // closed on the first frame (the room list) or on failure
	err     error         // why the socket failed before its first frame
}

type chatRun struct {
	cfg       config
	measuring atomic.Bool
	closing   atomic.Bool
	hist      histogram

	delivered, msgBytes, otherFrames, drops, refused atomic.Int64
}

func runChat(ctx context.Context, cfg config) (*chatResult, error) {
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
	run := &chatRun{cfg: cfg}
	before := mustProc(cfg)

	clients := make([]*chatClient, cfg.conns)
	for i := range clients {
		clients[i] = &chatClient{i: i, room: i % cfg.rooms, first: make(chan struct{})}
	}
	defer func() {
		run.closing.Store(true)
		closeAll(clients)
	}()
	var connected atomic.Int64
	stop := progress(cfg, "connected", cfg.conns, &connected)
	start := time.Now()
	err = parallel(ctx, cfg.conns, cfg.dialConc, func(ctx context.Context, i int) error {
		c := clients[i]
		conn, err := dialWS(ctx, cfg.client, d, i, b.socketURL(i, c.room, -1), b.roomUser(c.room).cookieHeader())
		if err != nil {
			return fmt.Errorf("client %d (room %d): %w", i, c.room, explain(err))
		}
		c.conn = conn
		go run.read(c)
		select {
		case <-c.first:
			if c.err != nil {
				return fmt.Errorf("client %d (room %d): %w", i, c.room, explain(c.err))
			}
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
	cfg.logf("%d sockets connected in %s", cfg.conns, time.Since(start).Round(time.Millisecond))

	if err := sleepCtx(ctx, settle); err != nil {
		return nil, err
	}
	idle := mustProc(cfg)
	run.measuring.Store(true)
	startStats := mustProc(cfg)
	cpu0 := selfCPU()

	// Open loop: sender k sends at phase k/rate and then every senders/rate seconds, whatever happens to the
	// earlier sends, and stamps each message with its scheduled time.
	sent := make([]atomic.Int64, cfg.senders)
	var sendErrors atomic.Int64
	var wg sync.WaitGroup
	t0 := time.Now()
	window := time.Duration(cfg.seconds * float64(time.Second))
	interval := float64(cfg.senders) / cfg.rate
	for k := range cfg.senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := clients[k%cfg.conns]
			var payload []byte
			for n := 0; ; n++ {
				at := time.Duration((float64(k)/cfg.rate + float64(n)*interval) * float64(time.Second))
				if at >= window {
					return
				}
				due := t0.Add(at)
				if sleepCtx(ctx, time.Until(due)) != nil {
					return
				}
				payload = sendPayload(payload[:0], cfg, b, c.room, due.UnixNano(), int64(k), n)
				c.sendMu.Lock()
				err := c.conn.Send(payload)
				c.sendMu.Unlock()
				if err != nil {
					if sendErrors.Add(1) <= 3 {
						warnf("send by client %d: %v", c.i, err)
					}
					continue
				}
				sent[k].Add(1)
			}
		}()
	}
	wg.Wait()
	if err := sleepCtx(ctx, time.Until(t0.Add(window))); err != nil {
		return nil, err
	}
	if err := sleepCtx(ctx, settle); err != nil { // let in-flight deliveries land
		return nil, err
	}
	end := mustProc(cfg)
	wall := time.Since(t0).Seconds()
	clientCPU := (selfCPU() - cpu0).Seconds()
	run.measuring.Store(false)

	res := &chatResult{
		Peer: cfg.label, Conns: cfg.conns, Rooms: cfg.rooms, Senders: cfg.senders, Rate: cfg.rate, Seconds: cfg.seconds,
		Delivered: run.delivered.Load(), Latency: run.hist.Summary(),
		OtherFrames: run.otherFrames.Load(), SendErrors: sendErrors.Load(), Drops: run.drops.Load(), Refused: run.refused.Load(),
		Users: len(b.users), Client: cfg.client,
		ClientCPUPct: round2(clientCPU / wall * 100),
	}
	var expected int64
	for k := range sent {
		res.Sent += sent[k].Load()
		expected += sent[k].Load() * int64(b.roomSize(k%cfg.conns%cfg.rooms))
	}
	res.Expected = expected
	if res.Refused > 0 {
		warnf("the server refused %d sends: is its send limit lifted (-send-rate 100000 -send-burst 100000)?", res.Refused)
	}
	if self, err := readProc(os.Getpid()); err == nil {
		res.ClientRSSMB = int64(math.Round(float64(self.rss) / 1048576))
	}
	res.Lost = expected - res.Delivered
	res.DeliveriesPerS = int64(math.Round(float64(res.Delivered) / wall))
	if res.Delivered > 0 {
		v := round2(float64(run.msgBytes.Load()) / float64(res.Delivered))
		res.BytesPerDelivery = &v
	}
	if before.ok && idle.ok && end.ok {
		perConn := int64(math.Round(float64(idle.rss-before.rss) / float64(cfg.conns)))
		mb := int64(math.Round(float64(end.rss) / 1048576))
		res.ServerRSSBytesPerConn, res.ServerRSSMB = &perConn, &mb
		pct := round2((end.cpu - startStats.cpu) / wall * 100)
		res.ServerCPUPct = &pct
		if res.Delivered > 0 {
			v := round2((end.cpu - startStats.cpu) * 1e6 / float64(res.Delivered))
			res.ServerCPUUsPerDelivery = &v
		}
	}
	return res, nil
}

// sendPayload is what htmx's ws-send sends for the compose form: its fields plus HEADERS.
func sendPayload(b []byte, cfg config, bn *bench, room int, t, k int64, n int) []byte {
	b = append(b, `{"text":"`...)
	b = append(b, chatText(t, k)...)
	b = append(b, `","client_id":"lg-`...)
	b = append(b, cfg.run...)
	b = append(b, '-')
	b = strconv.AppendInt(b, k, 10)
	b = append(b, '-')
	b = strconv.AppendInt(b, int64(n), 10)
	b = append(b, `","HEADERS":{"HX-Request":"true","HX-Trigger":"compose","HX-Trigger-Name":null,"HX-Target":"compose","HX-Current-URL":"`...)
	b = append(b, cfg.url.String()...)
	b = append(b, "/rooms/"...)
	b = strconv.AppendInt(b, bn.rooms[room], 10)
	return append(b, `"}}`...)
}

// read is a client's only reader: the first frame (the room list) marks it connected; in the window, every frame
// with load-tool messages counts one delivery per message, and anything else counts as another frame.
func (r *chatRun) read(c *chatClient) {
	gotFirst := false
	for {
		p, err := c.conn.Next()
		if err != nil {
			if !gotFirst {
				c.err = err
				close(c.first)
			} else if !r.closing.Load() {
				if r.drops.Add(1) <= 5 {
					warnf("client %d (room %d) dropped: %v", c.i, c.room, err)
				}
			}
			return
		}
		if !gotFirst {
			gotFirst = true
			close(c.first)
			continue
		}
		if !r.measuring.Load() {
			continue
		}
		now := time.Now().UnixNano()
		n := int64(0)
		for m := range messagesIn(p) {
			if m.Marked {
				n++
				r.hist.Record(time.Duration(now - m.T))
			}
		}
		if n > 0 {
			r.delivered.Add(n)
			r.msgBytes.Add(int64(len(p)))
		} else {
			r.otherFrames.Add(1)
			if bytes.Contains(p, composeError) && bytes.Contains(p, ownClientID) {
				r.refused.Add(1)
			}
		}
	}
}

// closeAll closes every open socket with 1000, a few hundred at a time, within a few seconds in all.
func closeAll(clients []*chatClient) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*closeTimeout)
	defer cancel()
	_ = parallel(ctx, len(clients), 256, func(_ context.Context, i int) error {
		if c := clients[i]; c.conn != nil {
			c.conn.Close(1000)
		}
		return nil
	})
}
