package models_test

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"switchboard/models"
	"switchboard/models/modelstest"
)

// A backup taken under write load opens cleanly and holds every message stored before it started.
func TestBackupUnderWriteLoad(t *testing.T) {
	s := modelstest.NewStore(t)
	ctx := context.Background()
	u, _ := s.CreateUser(ctx, "ana", []byte("h"))
	r, _ := s.EnsureRoom(ctx, "general", models.RoomOpen)
	var last atomic.Int64 // the newest id acknowledged (stored) so far
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			m, _, err := s.CreateMessage(ctx, models.NewMessage{RoomID: r.ID, UserID: u.ID, Text: fmt.Sprint(i), Author: "ana"})
			if err != nil {
				t.Error(err)
				return
			}
			last.Store(m.ID)
		}
	}()
	for last.Load() < 200 {
		runtime.Gosched()
	}
	before := last.Load() // every message up to here was acknowledged before the backup started
	path := filepath.Join(t.TempDir(), "backup.db")
	if err := s.Backup(ctx, path); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	copy, err := models.Open(ctx, path)
	if err != nil {
		t.Fatalf("the backup does not open: %v", err)
	}
	defer copy.Close()
	msgs, err := copy.MessagesAfter(ctx, r.ID, 0, 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	have := map[int64]bool{}
	for _, m := range msgs {
		have[m.ID] = true
	}
	for id := int64(1); id <= before; id++ {
		if !have[id] {
			t.Fatalf("message %d, stored before the backup started, is missing from it (%d messages in the copy)", id, len(msgs))
		}
	}
}
