package handlers_test

import (
	"context"
	"fmt"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"

	"switchboard/handlers"
)

// waitFor polls cond until it holds or d has passed, and reports whether it held.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

// ourGoroutines returns the stacks that serverGoroutines counts, for a failure message.
func ourGoroutines() string {
	buf := make([]byte, 8<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "switchboard/handlers.") || strings.Contains(g, "switchboard/realtime.") {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}

// heapAlloc is the live Go heap after a full collection.
func heapAlloc() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// A peer that completes the handshake and then goes silent (never reads, never answers a ping, sends nothing) is
// dropped once the pong deadline passes: its subscription and the goroutines serving it are gone within
// PongWait + 1 s, while a peer that answers pings outlives the same deadline.
func TestHalfOpenPeerIsDroppedAfterPongWait(t *testing.T) {
	const pongWait = time.Second
	srv := newTestServer(t, func(d *handlers.Deps) { d.PongWait = pongWait })
	ana, bob := srv.signup("ana"), srv.signup("bob")
	_, path, topic := srv.general("ana")
	// The control client answers pings (coder/websocket does, from its reader goroutine). Its first frame means
	// the server's writer for it is running, so the baseline counts it.
	control := bob.mustDial(path)
	readUntilMatch(t, control, `.`, 5*time.Second)
	srv.waitSubscribers(topic, 1)
	base := serverGoroutines()

	silent := ana.rawDial(path, rawOptions{})
	connected := time.Now()
	srv.waitSubscribers(topic, 2)
	if !waitFor(pongWait+time.Second, func() bool { return srv.Hub.Subscribers(topic) == 1 }) {
		t.Fatalf("a silent peer is still subscribed %v after its handshake (pong wait %v)", time.Since(connected), pongWait)
	}
	t.Logf("silent peer dropped after %v", time.Since(connected).Round(time.Millisecond))
	if !waitFor(time.Second, func() bool { return serverGoroutines() <= base }) {
		t.Fatalf("goroutines in our code: %d, baseline %d:\n%s", serverGoroutines(), base, ourGoroutines())
	}
	// The server hung up the TCP connection too: past what it wrote before, the peer reads the end.
	if _, err := silent.waitClose(time.Second); err != nil {
		t.Fatalf("the silent peer's connection: %v", err)
	}
	// The control client has lived past one pong deadline on its pongs alone, and still works.
	if d := time.Since(connected); d < pongWait {
		t.Fatalf("the control client has only lived %v", d)
	}
	if srv.Hub.Subscribers(topic) != 1 {
		t.Fatal("the control client lost its subscription")
	}
	send(t, control, "still here", "")
	readUntil(t, control, "still here")
}

// pushedText matches a pushed text message of the slow-consumer test: its database id and its sequence number.
var pushedText = regexp.MustCompile(`<article id="msg-(\d+)" class="msg[^"]*"[^>]*>[\s\S]*?<p[^>]*>m(\d{5})\.`)

// A client that never reads while the room gets 10,000 messages is dropped: its queue fills, the hub closes its
// subscriber, and the server unsubscribes it and hangs up; nobody else waits for it. The heap stays bounded, and
// a client that reads gets every message, in id order, none missing.
func TestSlowConsumerIsDroppedOthersGetEverything(t *testing.T) {
	const (
		total = 10000
		text  = 512 // bytes per message: a pushed fragment is about 1 KiB, the whole backlog about 10 MiB
	)
	srv := newTestServer(t, func(d *handlers.Deps) { d.SendRate = rate.Inf })
	ana, bob, cat := srv.signup("ana"), srv.signup("bob"), srv.signup("cat")
	_, path, topic := srv.general("ana")
	sender, reader := ana.mustDial(path), bob.mustDial(path)
	// cat's socket is never read: once the kernel buffers on both ends are full (a few MiB on loopback), the
	// server's writes to it block.
	stalled := cat.rawDial(path, rawOptions{})
	srv.waitSubscribers(topic, 3)
	frames(reader, 300*time.Millisecond) // the join notices and people pushes of the three arrivals
	heapBefore := heapAlloc()

	// The sender writes as fast as the server reads, pausing after every sampleEvery messages until the test has
	// sampled the heap (with nothing in flight, the sample holds only what the server keeps); another goroutine
	// drains its socket, which gets every message too.
	const sampleEvery = 2000
	paused, resume := make(chan int), make(chan struct{})
	start := time.Now()
	pad := strings.Repeat("z", text-len("m00000. "))
	sendErr := make(chan error, 1)
	go func() {
		for i := range total {
			if i > 0 && i%sampleEvery == 0 {
				paused <- i
				<-resume
			}
			msg := fmt.Sprintf(`{"text":"m%05d. %s"}`, i, pad)
			if err := sender.Write(context.Background(), websocket.MessageText, []byte(msg)); err != nil {
				sendErr <- fmt.Errorf("send %d: %w", i, err)
				return
			}
		}
		sendErr <- nil
	}()
	senderDone := make(chan struct{})
	go func() {
		defer close(senderDone)
		last := fmt.Sprintf(">m%05d.", total-1)
		for {
			select {
			case f := <-sender.in:
				if strings.Contains(sender.take(f), last) {
					return
				}
			case <-sender.closed:
				return
			}
		}
	}()

	var ids []int64
	var seqs []int
	fragment := 0  // the size of one pushed message
	var peak int64 // the largest heap growth seen during the flood
	pausedAt := -1 // the sender is paused after this many messages
	timeout := time.After(90 * time.Second)
	for len(ids) < total {
		if len(ids) == pausedAt { // all sent so far has arrived: sample the heap while the stalled client is stuck
			peak = max(peak, int64(heapAlloc())-int64(heapBefore)-reader.inBytes.Load()-sender.inBytes.Load())
			pausedAt = -1
			resume <- struct{}{}
		}
		select {
		case pausedAt = <-paused:
		case f := <-reader.in:
			found := pushedText.FindAllStringSubmatch(reader.take(f), -1)
			for _, m := range found {
				id, _ := strconv.ParseInt(m[1], 10, 64)
				seq, _ := strconv.Atoi(m[2])
				ids = append(ids, id)
				seqs = append(seqs, seq)
			}
			if len(found) > 0 {
				fragment = len(f) / len(found) // a frame may carry several messages
			}
		case <-reader.closed:
			t.Fatalf("the reading client was closed after %d messages: %v", len(ids), reader.err)
		case <-timeout:
			t.Fatalf("the reading client got %d of %d messages", len(ids), total)
		}
	}
	t.Logf("%d messages of %d bytes through the room in %v", total, fragment, time.Since(start).Round(time.Millisecond))
	if err := <-sendErr; err != nil {
		t.Fatal(err)
	}
	for i := range ids {
		if seqs[i] != i {
			t.Fatalf("message %d received as number %d: out of order or missing", seqs[i], i)
		}
		if i > 0 && ids[i] != ids[i-1]+1 {
			t.Fatalf("ids jump from %d to %d at message %d", ids[i-1], ids[i], i)
		}
	}
	if extra := frames(reader, 200*time.Millisecond); count(extra, `class="msg`) != 0 {
		t.Fatalf("the reading client got messages twice: %d more", count(extra, `class="msg`))
	}
	<-senderDone

	// The stalled client's subscriber is closed when its queue overflows; the server unsubscribes it once its
	// blocked write gives up (the write deadline), without waiting for a reader that never comes.
	if !waitFor(15*time.Second, func() bool { return srv.Hub.Subscribers(topic) == 2 }) {
		t.Fatalf("the stalled client is still subscribed: %d subscribers, want 2", srv.Hub.Subscribers(topic))
	}
	t.Logf("stalled client unsubscribed %v after the first send", time.Since(start).Round(time.Millisecond))
	for name, conn := range map[string]*wsConn{"sender": sender, "reader": reader} {
		select {
		case <-conn.closed:
			t.Fatalf("the %s's socket was closed: %v", name, conn.err)
		default:
		}
	}
	// Bound: half the backlog, total × fragment (~10 MiB). A server that kept the stalled client's backlog (an
	// unbounded queue, or a goroutine per pending write) holds all of it past what the kernel buffers (a few
	// MiB) until the write deadline frees it, which is why the heap is sampled during the flood and not only
	// after. A correct one keeps at most 256 fragments queued per client (~0.25 MiB) and buffers that do not
	// grow with the backlog (measured: under 1 MiB at the peak, sampled in the sender's pauses so that nothing
	// in flight is counted); SQLite's page cache is C memory, outside the Go heap.
	bound := int64(total * fragment / 2)
	grown := int64(heapAlloc()) - int64(heapBefore)
	t.Logf("heap grew by %.2f MiB at most during the flood, %.2f MiB after (bound %.2f MiB)", float64(peak)/(1<<20), float64(grown)/(1<<20), float64(bound)/(1<<20))
	if max(peak, grown) > bound {
		t.Fatalf("the heap grew by %.2f MiB, bound %.2f MiB", float64(max(peak, grown))/(1<<20), float64(bound)/(1<<20))
	}
	// And it hung up: past what the kernel buffered, the stalled client reads the end of the connection.
	if _, err := stalled.waitClose(10 * time.Second); err != nil {
		t.Fatalf("the stalled client's connection: %v", err)
	}
}

// Connect/close churn, a third of it ending in a TCP reset, leaves no goroutine of ours, no hub topic and no
// subscriber behind, and does not use up anyone's connection allowance.
func TestConnectCloseChurnLeavesNothingBehind(t *testing.T) {
	cycles := 10000
	if raceEnabled {
		cycles = 2000
	}
	const workers = 4
	srv := newTestServer(t)
	users := make([]*client, workers)
	for i := range users {
		users[i] = srv.signup(fmt.Sprintf("churn%d", i))
	}
	_, path, topic := srv.general("churn0")
	for _, u := range users { // join the room once (join notices) before measuring
		u.get(strings.TrimSuffix(path, "/ws"))
	}
	baseTopics := srv.Hub.Topics()
	base := serverGoroutines()

	start := time.Now()
	var failed, refused atomic.Int64
	var firstErr sync.Once
	var errMsg atomic.Value
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < cycles; i += workers {
				ws, err := users[w].rawUpgrade(path, rawOptions{})
				if err != nil {
					failed.Add(1)
					firstErr.Do(func() { errMsg.Store(err.Error()) })
					continue
				}
				if i%2 == 0 { // half the time, wait until the server has set the socket up and written to it
					if m, err := ws.readMessage(5 * time.Second); err != nil {
						failed.Add(1)
						firstErr.Do(func() { errMsg.Store(err.Error()) })
					} else if m.Op == opClose {
						refused.Add(1)
					}
				}
				switch i % 3 {
				case 0:
					_ = ws.reset()
				case 1:
					_ = ws.write(closeFrame(1000, "bye"))
					_ = ws.Close()
				default:
					_ = ws.Close()
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("%d cycles in %v (%d refused over the connection cap)", cycles, time.Since(start).Round(time.Millisecond), refused.Load())
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d cycles failed, first: %v", n, cycles, errMsg.Load())
	}
	if !waitFor(10*time.Second, func() bool {
		return srv.Hub.Topics() == baseTopics && serverGoroutines() <= base
	}) {
		t.Fatalf("after churn: %d hub topics (baseline %d), %d goroutines in our code (baseline %d)",
			srv.Hub.Topics(), baseTopics, serverGoroutines(), base)
	}
	if n := srv.Hub.Subscribers(topic); n != 0 {
		t.Fatalf("%d subscribers left on %s", n, topic)
	}
	// No connection was left counted against anyone: the first user can still open the cap's worth of sockets
	// (16, as in TestConnectionCapPerUser) without a refusal, and the others can talk.
	for i := range 16 {
		ws := users[0].rawDial(path, rawOptions{})
		if m, err := ws.readMessage(5 * time.Second); err != nil || m.Op == opClose {
			t.Fatalf("socket %d after churn: refused (close %d) or failed: %v", i+1, m.Code, err)
		}
	}
	for i, u := range users[1:] {
		conn := u.mustDial(path)
		text := fmt.Sprintf("after churn %d", i)
		send(t, conn, text, "")
		readUntil(t, conn, text)
	}
}
