package models

import "database/sql"

// SQLDBs exposes the writer and reader pools to the tests.
func (s *Store) SQLDBs() (writer, reader *sql.DB) {
	w, err := s.w.DB()
	if err != nil {
		panic(err)
	}
	r, err := s.r.DB()
	if err != nil {
		panic(err)
	}
	return w, r
}
