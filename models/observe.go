package models

import (
	"time"

	"gorm.io/gorm"
)

// ObserveQueries makes fn see how long every query took, named by its kind ("create", "query", "update",
// "delete", "row", "raw"). Call it once, before traffic (metrics use it).
func (s *Store) ObserveQueries(fn func(op string, d time.Duration)) error {
	s.observe = fn // for the prepared statements, which bypass gorm's callbacks (see observed)
	dbs := []*gorm.DB{s.w}
	if s.r != s.w {
		dbs = append(dbs, s.r)
	}
	for _, db := range dbs {
		cb := db.Callback()
		steps := []struct {
			op     string
			before func(string, func(*gorm.DB)) error
			after  func(string, func(*gorm.DB)) error
		}{
			{"create", cb.Create().Before("gorm:create").Register, cb.Create().After("gorm:create").Register},
			{"query", cb.Query().Before("gorm:query").Register, cb.Query().After("gorm:query").Register},
			{"update", cb.Update().Before("gorm:update").Register, cb.Update().After("gorm:update").Register},
			{"delete", cb.Delete().Before("gorm:delete").Register, cb.Delete().After("gorm:delete").Register},
			{"row", cb.Row().Before("gorm:row").Register, cb.Row().After("gorm:row").Register},
			{"raw", cb.Raw().Before("gorm:raw").Register, cb.Raw().After("gorm:raw").Register},
		}
		for _, st := range steps {
			op := st.op
			if err := st.before("switchboard:start_"+op, func(db *gorm.DB) { db.InstanceSet("switchboard:start", time.Now()) }); err != nil {
				return wrap(err, "observe %s queries", op)
			}
			err := st.after("switchboard:observe_"+op, func(db *gorm.DB) {
				if start, ok := db.InstanceGet("switchboard:start"); ok {
					fn(op, time.Since(start.(time.Time)))
				}
			})
			if err != nil {
				return wrap(err, "observe %s queries", op)
			}
		}
	}
	return nil
}

// observed reports a prepared statement, run outside gorm, that started at start to the ObserveQueries function.
func (s *Store) observed(op string, start time.Time) {
	if s.observe != nil {
		s.observe(op, time.Since(start))
	}
}
