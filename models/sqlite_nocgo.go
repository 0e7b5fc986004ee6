//go:build !cgo

package models

import _ "modernc.org/sqlite" // registers "sqlite"

// sqliteDSN returns the database/sql driver and DSN for the SQLite file at path: pure-Go modernc.org/sqlite
// when cgo is not available. The pragmas are DSN parameters so that every pooled connection gets them, and
// times are written in the same format as mattn/go-sqlite3. The writer begins its transactions with
// BEGIN IMMEDIATE; readers are query-only.
func sqliteDSN(path string, writer bool) (driverName, dsn string) {
	dsn = path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=busy_timeout(5000)" +
		"&_pragma=foreign_keys(1)&_time_format=sqlite"
	if writer {
		return "sqlite", dsn + "&_txlock=immediate"
	}
	return "sqlite", dsn + "&_pragma=query_only(1)"
}
