package models

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
)

func benchStore(b *testing.B) (*Store, int64, int64) {
	s, err := Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	u, err := s.CreateUser(context.Background(), "ana", []byte("h"))
	if err != nil {
		b.Fatal(err)
	}
	r, err := s.EnsureRoom(context.Background(), "general", RoomOpen)
	if err != nil {
		b.Fatal(err)
	}
	return s, u.ID, r.ID
}

// BenchmarkCreateMessage is the send path's insert: one statement per message, with a client id.
func BenchmarkCreateMessage(b *testing.B) {
	s, user, room := benchStore(b)
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		nm := NewMessage{RoomID: room, UserID: user, Text: "hello there", ClientID: fmt.Sprintf("c-%d", i), Author: "ana"}
		if _, _, err := s.CreateMessage(ctx, nm); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCreateMessagesGrouped stores messages 64 to a transaction, as the send path's group commit does
// under load, for comparison with BenchmarkCreateMessage.
func BenchmarkCreateMessagesGrouped(b *testing.B) {
	s, user, room := benchStore(b)
	ctx := context.Background()
	const group = 64
	batch := make([]NewMessage, group)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		for j := range batch {
			n++
			batch[j] = NewMessage{RoomID: room, UserID: user, Text: "hello there", ClientID: fmt.Sprintf("g-%d", n), Author: "ana"}
		}
		if _, err := s.CreateMessages(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/message")
}
