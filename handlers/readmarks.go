package handlers

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"switchboard/models"
)

const readMarkFlush = 2 * time.Second // how often the read marks of open rooms are written, all in one transaction

// readMarks collects how far each reader has read the rooms they have open, so that thousands of open sockets
// cost one write transaction every readMarkFlush instead of one each.
type readMarks struct {
	mu      sync.Mutex
	pending map[[2]int64]int64 // (room, user) → the newest message id read
}

// note records that user has read room up to id; it is written at the next flush.
func (r *readMarks) note(room, user, id int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	key := [2]int64{room, user}
	r.pending[key] = max(r.pending[key], id)
}

// flush writes every pending mark in one transaction.
func (r *readMarks) flush(ctx context.Context, store *models.Store, log *slog.Logger) {
	r.mu.Lock()
	marks := make([]models.ReadMark, 0, len(r.pending))
	for key, id := range r.pending {
		marks = append(marks, models.ReadMark{RoomID: key[0], UserID: key[1], MessageID: id})
	}
	clear(r.pending)
	r.mu.Unlock()
	if err := store.MarkReadMany(ctx, marks); err != nil {
		log.Warn("read marks not saved", slog.Int("count", len(marks)), slog.Any("error", err))
	}
}

// runReadMarks flushes the read marks every readMarkFlush until ctx is done.
func (h *Handlers) runReadMarks(ctx context.Context) {
	t := time.NewTicker(readMarkFlush)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			h.marks.flush(ctx, h.store, h.log)
		}
	}
}
