package models

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// checkpointEvery is how often a SQLite store copies its write-ahead log into the database file (a checkpoint).
// The writer does not checkpoint itself (wal_autocheckpoint=0): a checkpoint writes and syncs both files, and
// inside a commit it would stall every send queued behind that commit (measured: ack p99 161 → 78 ms at 10k
// messages/s). A PASSIVE checkpoint on a connection of its own runs beside the writer and the readers without
// blocking either. Should the writer's connection ever be replaced, the new one checkpoints by itself again
// (SQLite's default), which is only slower.
const checkpointEvery = 100 * time.Millisecond

// checkpointer runs checkpoints on its own connection until closed.
type checkpointer struct {
	db   *sql.DB
	stop context.CancelFunc
	done chan struct{}
}

// startCheckpoints turns off the writer's own checkpoints and starts a checkpointer on the database that
// driverName and dsn open.
func startCheckpoints(ctx context.Context, w *gorm.DB, driverName, dsn string) (*checkpointer, error) {
	db, err := sql.Open(driverName, dsn)
	if err != nil {
		return nil, fmt.Errorf("models: open the checkpoint connection: %w", err)
	}
	db.SetMaxOpenConns(1)
	if err := w.WithContext(ctx).Exec("PRAGMA wal_autocheckpoint=0").Error; err != nil {
		db.Close()
		return nil, fmt.Errorf("models: turn off the writer's checkpoints: %w", err)
	}
	run, stop := context.WithCancel(context.Background())
	c := &checkpointer{db: db, stop: stop, done: make(chan struct{})}
	go c.run(run)
	return c, nil
}

func (c *checkpointer) run(ctx context.Context) {
	defer close(c.done)
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			// When it is busy or fails, the log grows a little and the next one catches up.
			_, _ = c.db.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)")
		}
	}
}

// close stops the checkpoints and closes their connection.
func (c *checkpointer) close() error {
	c.stop()
	<-c.done
	return c.db.Close()
}
