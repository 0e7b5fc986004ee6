// Package models is Switchboard's data layer: users, rooms, memberships, messages and web sessions,
// stored through gorm in SQLite (the default) or Postgres (to run several instances on one database).
package models

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// ErrNotFound is returned when the requested row does not exist.
var ErrNotFound = errors.New("models: not found")

// ErrUsernameTaken is returned by CreateUser when the username is already in use.
var ErrUsernameTaken = errors.New("models: username taken")

// ErrRoomNameTaken is returned by CreateRoom when another non-direct room has the same name, ignoring case.
var ErrRoomNameTaken = errors.New("models: room name taken")

// Store is the data layer. It is safe for concurrent use.
//
// Concurrency invariant: every write goes through w and every read through r. On SQLite, w holds exactly one
// connection (SQLite has one writer at a time, and a single connection means writers queue in Go instead of
// failing with "database is locked") and r is a small read-only pool. On Postgres, w and r are the same pool,
// and transactions that must be serialized across connections (and instances) take advisory locks: see
// CreateUser and CreateMessage. On both, code inside a transaction uses only its tx, never s.w (on SQLite that
// would deadlock on the one writer connection) nor s.r (it would not see the transaction's own writes).
type Store struct {
	driver   string
	w        *gorm.DB // writer: one connection on SQLite; the one pool on Postgres
	r        *gorm.DB // readers: a small pool on SQLite; the same pool as w on Postgres
	sessions *SessionStorage

	insertMessageStmt *sql.Stmt     // prepared on w: the send path's one statement (CreateMessages)
	roomsForUserStmt  *sql.Stmt     // prepared on r: every socket's first frame (RoomsForUser)
	checkpoints       *checkpointer // SQLite only: copies the write-ahead log into the database file

	observe func(op string, d time.Duration) // set by ObserveQueries; nil: nobody is told
}

// prepare prepares the hot statements: the message insert on the writer pool, the rooms list on the readers.
func (s *Store) prepare(ctx context.Context) error {
	sqlDB, err := s.w.DB()
	if err != nil {
		return err
	}
	s.insertMessageStmt, err = sqlDB.PrepareContext(ctx, insertMessageSQL)
	if err != nil {
		return fmt.Errorf("models: prepare: %w", err)
	}
	if sqlDB, err = s.r.DB(); err != nil {
		return err
	}
	s.roomsForUserStmt, err = sqlDB.PrepareContext(ctx, roomsForUserSQL)
	if err != nil {
		return fmt.Errorf("models: prepare: %w", err)
	}
	return nil
}

// Close closes the connection pools.
func (s *Store) Close() error {
	var errs []error
	for _, stmt := range []*sql.Stmt{s.insertMessageStmt, s.roomsForUserStmt} {
		if stmt != nil {
			errs = append(errs, stmt.Close())
		}
	}
	if s.checkpoints != nil {
		errs = append(errs, s.checkpoints.close())
	}
	if s.r == s.w {
		return errors.Join(append(errs, closeDB(s.w))...)
	}
	// The writer closes last so that the last connection to go checkpoints the WAL.
	return errors.Join(append(errs, closeDB(s.r), closeDB(s.w))...)
}

// Ping checks that the database answers on both the writer and a reader connection.
func (s *Store) Ping(ctx context.Context) error {
	dbs := []*gorm.DB{s.w, s.r}
	if s.r == s.w {
		dbs = dbs[:1]
	}
	for _, db := range dbs {
		sqlDB, err := db.DB()
		if err != nil {
			return fmt.Errorf("models: ping: %w", err)
		}
		if err := sqlDB.PingContext(ctx); err != nil {
			return fmt.Errorf("models: ping: %w", err)
		}
	}
	return nil
}

// Driver names the database in use: "sqlite" or "postgres".
func (s *Store) Driver() string { return s.driver }

// onPostgres reports whether the store is on Postgres.
func (s *Store) onPostgres() bool { return s.driver == driverPostgres }

// Sessions returns the web-session storage kept in the same database.
func (s *Store) Sessions() *SessionStorage { return s.sessions }

// now is the time stored in every timestamp: UTC, at the microsecond precision that Postgres keeps.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// wrap names the failed operation, once, at the store boundary; gorm.ErrRecordNotFound becomes ErrNotFound.
func wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, gorm.ErrRecordNotFound) {
		err = ErrNotFound
	}
	return fmt.Errorf("models: "+format+": %w", append(args, err)...)
}

func closeDB(db *gorm.DB) error {
	if db == nil {
		return nil
	}
	sqlDB, err := db.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
}

// Backup writes a consistent copy of a SQLite database to path while it is in use (VACUUM INTO: a snapshot of
// everything committed before it started). path must not exist. Postgres has its own tools (pg_dump).
func (s *Store) Backup(ctx context.Context, path string) error {
	if s.onPostgres() {
		return errors.New("models: backup: use pg_dump for a Postgres database")
	}
	return wrap(s.w.WithContext(ctx).Exec("VACUUM INTO ?", path).Error, "backup to %s", path)
}

// Size is the database's size in bytes (for the admin page).
func (s *Store) Size(ctx context.Context) (int64, error) {
	var n int64
	q := "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()"
	if s.onPostgres() {
		q = "SELECT pg_database_size(current_database())"
	}
	err := s.r.WithContext(ctx).Raw(q).Scan(&n).Error
	return n, wrap(err, "database size")
}

// Counts is how many users and rooms there are (for the admin page).
func (s *Store) Counts(ctx context.Context) (users, rooms int64, err error) {
	if err = s.r.WithContext(ctx).Model(&User{}).Count(&users).Error; err == nil {
		err = s.r.WithContext(ctx).Table("rooms").Count(&rooms).Error
	}
	return users, rooms, wrap(err, "counts")
}
