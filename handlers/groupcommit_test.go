package handlers_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"

	"switchboard/handlers"
)

// Forty sockets send 25 messages each, each as soon as its previous one came back. Every message reaches a watcher once, in id order
// and in each sender's order, and the sends that queued while a transaction committed were stored together:
// fewer transactions than messages (switchboard_store_group_messages).
func TestConcurrentSendsAreStoredInGroups(t *testing.T) {
	const senders, each = 40, 25
	srv := newTestServer(t, func(d *handlers.Deps) { d.SendRate = rate.Inf })
	watcher := srv.signup("watcher")
	_, path, topic := srv.general("watcher")
	conns := make([]*wsConn, senders)
	for i := range conns {
		conns[i] = srv.signup(fmt.Sprintf("sender%02d", i)).mustDial(path)
	}
	reader := watcher.mustDial(path)
	srv.waitSubscribers(topic, senders+1)
	frames(reader, 300*time.Millisecond) // join notices and people lists
	stored := metricValue(t, srv, "switchboard_messages_stored_total", "", "")
	groups := metricValue(t, srv, "switchboard_store_group_messages", "", "")

	// Each sender, like a page, sends its next message once its last one came back; the forty of them overlap.
	errs := make(chan error, senders)
	for i, c := range conns {
		go func() {
			for k := range each {
				text := fmt.Sprintf("m%02d%03d.", i, k)
				if err := c.Write(context.Background(), websocket.MessageText, []byte(`{"text":"`+text+` hello"}`)); err != nil {
					errs <- fmt.Errorf("sender %d, message %d: %w", i, k, err)
					return
				}
				if err := awaitEcho(c, ">"+text, 20*time.Second); err != nil {
					errs <- fmt.Errorf("sender %d, message %d: %w", i, k, err)
					return
				}
			}
			errs <- nil
		}()
	}
	for range senders {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}

	next := make([]int, senders) // each sender's next expected message
	var lastID int64
	timeout := time.After(30 * time.Second)
	for got := 0; got < senders*each; {
		select {
		case f := <-reader.in:
			for _, m := range pushedText.FindAllStringSubmatch(f, -1) {
				id, _ := strconv.ParseInt(m[1], 10, 64)
				sender, _ := strconv.Atoi(m[2][:2])
				k, _ := strconv.Atoi(m[2][2:])
				if id <= lastID {
					t.Fatalf("message %d pushed after message %d", id, lastID)
				}
				if k != next[sender] {
					t.Fatalf("sender %d's message %d arrived when %d was due", sender, k, next[sender])
				}
				lastID, next[sender] = id, k+1
				got++
			}
		case <-reader.closed:
			t.Fatalf("the watcher's socket closed: %v", reader.err)
		case <-timeout:
			t.Fatalf("the watcher got %v of %d messages per sender", next, each)
		}
	}
	if extra := frames(reader, 200*time.Millisecond); count(extra, `class="msg`) != 0 {
		t.Fatalf("the watcher got %d messages twice", count(extra, `class="msg`))
	}
	nStored := metricValue(t, srv, "switchboard_messages_stored_total", "", "") - stored
	nGroups := metricValue(t, srv, "switchboard_store_group_messages", "", "") - groups
	t.Logf("%v messages stored in %v transactions", nStored, nGroups)
	if nStored != senders*each {
		t.Fatalf("stored %v messages, want %d", nStored, senders*each)
	}
	if nGroups >= nStored {
		t.Fatalf("%v messages took %v transactions: no send waited for another's commit", nStored, nGroups)
	}
}

// awaitEcho reads c's frames until one contains want.
func awaitEcho(c *wsConn, want string, d time.Duration) error {
	timeout := time.After(d)
	for {
		select {
		case f := <-c.in:
			if strings.Contains(f, want) {
				return nil
			}
		case <-c.closed:
			return fmt.Errorf("socket closed: %w", c.err)
		case <-timeout:
			return fmt.Errorf("%q did not come back within %v", want, d)
		}
	}
}
