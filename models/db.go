package models

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Pool sizes. SQLite has one writer at a time, so the writer pool holds exactly one connection. Postgres has
// one pool for reads and writes; its size bounds this instance's share of the server's max_connections
// (100 by default), so N instances need N × postgresConns of them.
const (
	writerConns   = 1
	readerConns   = 4
	postgresConns = 20
	// postgresIdleTime closes pooled Postgres connections left idle this long, so that a burst's connections
	// do not hold server processes forever.
	postgresIdleTime = 5 * time.Minute
)

// The drivers Open selects, as Driver reports them.
const (
	driverSQLite   = "sqlite"
	driverPostgres = "postgres"
)

// Open opens the database named by dsn and migrates it. A path ("switchboard.db"), "file:x.db" or
// "sqlite://path" opens SQLite, creating the file if missing. A "postgres://" or "postgresql://" URL opens
// Postgres through pgx (libpq-style parameters such as sslmode, and run-time parameters such as
// search_path, go in the query string); tables go into the connection's current schema.
func Open(ctx context.Context, dsn string) (*Store, error) {
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return openPostgres(ctx, dsn)
	default:
		return openSQLite(ctx, dsn)
	}
}

// openPostgres opens one pool of postgresConns connections, used as both writer and readers, and migrates.
func openPostgres(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("models: postgres url %s: %w", redact(dsn), err)
	}
	db, err := openPool(ctx, postgres.New(postgres.Config{
		Conn: stdlib.OpenDB(*cfg, stdlib.OptionAfterConnect(scanTimesInUTC)),
	}), postgresConns)
	if err != nil {
		return nil, fmt.Errorf("models: open %s: %w", redact(dsn), err)
	}
	if sqlDB, err := db.DB(); err == nil {
		sqlDB.SetConnMaxIdleTime(postgresIdleTime)
	}
	if err := migrate(ctx, db, driverPostgres); err != nil {
		return nil, errors.Join(err, closeDB(db))
	}
	// w and r are the same pool: Postgres runs concurrent writers itself, so the writer needs no pool of its
	// own, and a read after a write on the same Store sees it.
	s := &Store{driver: driverPostgres, w: db, r: db}
	s.sessions = &SessionStorage{w: db, r: db}
	if err := s.prepare(ctx); err != nil {
		return nil, errors.Join(err, s.Close())
	}
	return s, nil
}

// scanTimesInUTC makes a new connection return timestamptz values in UTC (pgx's default is time.Local),
// as SQLite does: every time in and out of the store is UTC.
func scanTimesInUTC(_ context.Context, conn *pgx.Conn) error {
	conn.TypeMap().RegisterType(&pgtype.Type{
		Name:  "timestamptz",
		OID:   pgtype.TimestamptzOID,
		Codec: &pgtype.TimestamptzCodec{ScanLocation: time.UTC},
	})
	return nil
}

// redact returns a database URL without its password, for error messages.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparsable url)"
	}
	return u.Redacted()
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
	if err := migrate(ctx, w, driverSQLite); err != nil {
		return nil, errors.Join(err, closeDB(w))
	}
	ck, err := startCheckpoints(ctx, w, driverName, dsn)
	if err != nil {
		return nil, errors.Join(err, closeDB(w))
	}
	driverName, dsn = sqliteDSN(path, false)
	r, err := openPool(ctx, sqlite.New(sqlite.Config{DriverName: driverName, DSN: dsn}), readerConns)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("models: open %s for reading: %w", path, err), ck.close(), closeDB(w))
	}
	s := &Store{driver: driverSQLite, w: w, r: r, checkpoints: ck}
	s.sessions = &SessionStorage{w: w, r: r}
	if err := s.prepare(ctx); err != nil {
		return nil, errors.Join(err, s.Close())
	}
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

// migrate creates or updates the tables and indexes. On Postgres it runs in one transaction (DDL is
// transactional there) under an advisory lock of the schema, so N instances starting at once migrate one
// after another instead of racing on CREATE TABLE. On SQLite the one writer connection serializes it.
func migrate(ctx context.Context, db *gorm.DB, driver string) error {
	tables := []any{&User{}, &roomRow{}, &membershipRow{}, &messageRow{}, &Session{}, &tokenRow{}, &botRow{}}
	var err error
	if driver == driverPostgres {
		err = db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			if err := advisoryLock(tx, lockMigrate, 0); err != nil {
				return err
			}
			return tx.AutoMigrate(tables...)
		})
	} else {
		err = db.WithContext(ctx).AutoMigrate(tables...)
	}
	if err != nil {
		return fmt.Errorf("models: migrate: %w", err)
	}
	return nil
}

// Advisory lock classes: the first key of Postgres's two-int form of pg_advisory_xact_lock is a hash of the
// class name and the current schema (so Switchboards in different schemas of one database, such as parallel
// test runs, do not contend), the second the object, such as a room id.
const (
	lockMigrate  = "switchboard.migrate"
	lockSignup   = "switchboard.signup"
	lockMessages = "switchboard.room-messages"
)

// advisoryLock takes a transaction-level advisory lock on Postgres: it waits until no other transaction
// holds (class, id), and holds it until tx commits or rolls back, after its writes are visible to others.
// An id beyond int32 wraps, which can only make two objects share a lock. Call it only on Postgres.
func advisoryLock(tx *gorm.DB, class string, id int64) error {
	return tx.Exec(advisoryLockSQL, class, int32(id)).Error
}

const advisoryLockSQL = `SELECT pg_advisory_xact_lock(hashtext(?::text || '/' || coalesce(current_schema(), '')), ?::int4)`

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
