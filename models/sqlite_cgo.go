//go:build cgo

package models

import _ "github.com/mattn/go-sqlite3" // registers "sqlite3"

// sqliteDSN returns the database/sql driver and DSN for the SQLite file at path: mattn/go-sqlite3 when cgo is
// available. The pragmas are DSN parameters so that every pooled connection gets them. The writer begins its
// transactions with BEGIN IMMEDIATE; readers are query-only.
func sqliteDSN(path string, writer bool) (driverName, dsn string) {
	dsn = path + "?_journal_mode=WAL&_synchronous=NORMAL&_busy_timeout=5000&_foreign_keys=1"
	if writer {
		return "sqlite3", dsn + "&_txlock=immediate"
	}
	return "sqlite3", dsn + "&_query_only=1"
}
