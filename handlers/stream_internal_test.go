package handlers

import (
	"bufio"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"switchboard/realtime"
)

// A client that stops reading gets, once it reads again, the newest price of each symbol, not the backlog.
func TestStreamConflatesForASlowClient(t *testing.T) {
	hub := realtime.NewHub(realtime.NewMemoryBroker(), nil)
	sub := hub.Subscribe(streamQueue, "a", "b")
	defer hub.Unsubscribe(sub)
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		writeStream(bufio.NewWriterSize(pw, 64), sub, nil, time.Hour)
		pw.Close()
	}()
	r := bufio.NewReader(pr)
	r.ReadString('\n') // "retry: …": the stream is up, and nobody reads for a while

	for id := int64(1); id <= 200; id++ {
		topic := "a"
		if id%2 == 0 {
			topic = "b"
		}
		data := "data: " + topic + strconv.FormatInt(id, 10) + "\n\n"
		hub.Publish(t.Context(), &realtime.Message{Topic: topic, ID: id, Data: []byte(data)})
	}
	// The client reads again: everything up to the newest tick arrives.
	var got strings.Builder
	for !strings.Contains(got.String(), "data: b200\n") {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended early: %v; got %q", err, got.String())
		}
		got.WriteString(line)
	}
	sub.Close(realtime.CloseServiceRestart)
	go io.Copy(io.Discard, r)
	<-done
	rest := got.String()
	events := strings.Count(rest, "data: ")
	if events > 10 {
		t.Fatalf("the slow client got a backlog of %d events", events)
	}
	if !strings.Contains(rest, "data: a199\n") {
		t.Fatalf("the newest of topic a is missing: %q", rest)
	}
	if strings.Index(rest, "a199") > strings.Index(rest, "b200") {
		t.Fatalf("events out of id order: %q", rest)
	}
}
