package models

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Pool sizes. SQLite has one writer at a time, so the writer pool holds exactly one connection.
const (
	writerConns = 1
	readerConns = 4
)

// Open opens the database named by url and migrates it. A path ("switchboard.db"), "file:x.db" or
// "sqlite://path" opens SQLite, creating the file if missing; postgres:// URLs are not supported yet.
func Open(ctx context.Context, url string) (*Store, error) {
	switch {
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		return nil, errors.New("models: postgres is not supported yet")
	default:
		return openSQLite(ctx, url)
	}
}

func openSQLite(ctx context.Context, url string) (*Store, error) {
	path, err := sqlitePath(url)
	if err != nil {
		return nil, err
	}
	// The writer opens and migrates first: it switches the file to WAL before the read-only readers connect.
	driverName, dsn := sqliteDSN(path, true)
	w, err := openPool(ctx, sqlite.New(sqlite.Config{DriverName: driverName, DSN: dsn}), writerConns)
	if err != nil {
		return nil, fmt.Errorf("models: open %s: %w", path, err)
	}
	if err := migrate(ctx, w); err != nil {
		return nil, errors.Join(err, closeDB(w))
	}
	driverName, dsn = sqliteDSN(path, false)
	r, err := openPool(ctx, sqlite.New(sqlite.Config{DriverName: driverName, DSN: dsn}), readerConns)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("models: open %s for reading: %w", path, err), closeDB(w))
	}
	s := &Store{driver: "sqlite", w: w, r: r}
	s.sessions = &SessionStorage{w: w, r: r}
	return s, nil
}

// sqlitePath turns "x.db", "file:x.db" or "sqlite://x.db" into the file path "x.db".
func sqlitePath(url string) (string, error) {
	path := url
	for _, prefix := range []string{"sqlite://", "file:"} {
		if p, ok := strings.CutPrefix(url, prefix); ok {
			path = p
			break
		}
	}
	switch {
	case path == "" || path == ":memory:":
		// Two pools on an in-memory database would be two separate databases.
		return "", fmt.Errorf("models: sqlite url %q: a file path is required", url)
	case strings.ContainsAny(path, "?#"):
		return "", fmt.Errorf("models: sqlite url %q: query parameters are not supported", url)
	}
	return path, nil
}

// openPool opens a gorm handle on dialector with a pool of size conns and checks that it answers.
func openPool(ctx context.Context, dialector gorm.Dialector, conns int) (*gorm.DB, error) {
	db, err := gorm.Open(dialector, &gorm.Config{
		Logger:                 logger.Discard,
		SkipDefaultTransaction: true, // multi-statement writes use explicit transactions
		TranslateError:         false,
		NowFunc:                now,
	})
	if err != nil {
		return nil, err
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, err
	}
	sqlDB.SetMaxOpenConns(conns)
	sqlDB.SetMaxIdleConns(conns)
	if err := sqlDB.PingContext(ctx); err != nil {
		return nil, errors.Join(err, sqlDB.Close())
	}
	return db, nil
}

// migrate creates or updates the tables and indexes.
func migrate(ctx context.Context, db *gorm.DB) error {
	err := db.WithContext(ctx).AutoMigrate(&User{}, &roomRow{}, &membershipRow{}, &messageRow{}, &Session{}, &tokenRow{})
	if err != nil {
		return fmt.Errorf("models: migrate: %w", err)
	}
	return nil
}

// roomRow is a room as stored: with name_key, which makes names unique ignoring case among non-direct rooms
// (it is NULL for direct rooms, and NULLs never collide).
type roomRow struct {
	Room
	NameKey *string `gorm:"uniqueIndex"`
}

func (roomRow) TableName() string { return "rooms" }

// membershipRow adds the foreign keys of memberships for migration.
type membershipRow struct {
	Membership
	Room Room `gorm:"foreignKey:RoomID"`
	User User `gorm:"foreignKey:UserID"`
}

func (membershipRow) TableName() string { return "memberships" }

// messageRow adds the foreign keys of messages for migration.
type messageRow struct {
	Message
	Room Room `gorm:"foreignKey:RoomID"`
	User User `gorm:"foreignKey:UserID"`
}

func (messageRow) TableName() string { return "messages" }
