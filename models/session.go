package models

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Session is a stored web session.
type Session struct {
	Key       string    `gorm:"primaryKey"`
	Data      []byte    `gorm:"not null"`
	ExpiresAt time.Time `gorm:"not null;index"` // the zero time means never
}

// SessionStorage keeps web sessions in the database. It has the method set of fiber.Storage.
type SessionStorage struct {
	w, r *gorm.DB // the Store's writer and readers
}

// Get returns the value stored under key, or nil, nil when there is none or it has expired.
func (s *SessionStorage) Get(key string) ([]byte, error) {
	if key == "" {
		return nil, nil
	}
	var sess Session
	err := s.r.Where("key = ?", key).Take(&sess).Error
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		return nil, nil
	case err != nil:
		return nil, wrap(err, "get session")
	case !sess.ExpiresAt.IsZero() && !now().Before(sess.ExpiresAt):
		return nil, nil
	}
	return sess.Data, nil
}

// Set stores val under key, replacing any value there; it expires after exp, or never when exp is 0.
// An empty key or value is ignored.
func (s *SessionStorage) Set(key string, val []byte, exp time.Duration) error {
	if key == "" || len(val) == 0 {
		return nil
	}
	sess := Session{Key: key, Data: val}
	if exp > 0 {
		sess.ExpiresAt = now().Add(exp)
	}
	err := s.w.Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "key"}},
		DoUpdates: clause.AssignmentColumns([]string{"data", "expires_at"}),
	}).Create(&sess).Error
	return wrap(err, "set session")
}

// Delete removes the value stored under key, if any.
func (s *SessionStorage) Delete(key string) error {
	return wrap(s.w.Where("key = ?", key).Delete(&Session{}).Error, "delete session")
}

// Reset removes every session.
func (s *SessionStorage) Reset() error {
	return wrap(s.w.Exec("DELETE FROM sessions").Error, "reset sessions")
}

// Close does nothing: the Store owns the database.
func (s *SessionStorage) Close() error { return nil }

// DeleteExpiredSessions removes the sessions that have expired and returns how many there were.
func (s *Store) DeleteExpiredSessions(ctx context.Context) (int64, error) {
	res := s.w.WithContext(ctx).Where("expires_at > ? AND expires_at <= ?", time.Time{}, now()).Delete(&Session{})
	if res.Error != nil {
		return 0, wrap(res.Error, "delete expired sessions")
	}
	return res.RowsAffected, nil
}

// LiveSessions reports which of the given session keys still name a session that has not expired.
func (s *Store) LiveSessions(ctx context.Context, keys []string) (map[string]bool, error) {
	live := make(map[string]bool, len(keys))
	const chunk = 500 // bound the number of bound parameters per query
	for start := 0; start < len(keys); start += chunk {
		var found []string
		err := s.r.WithContext(ctx).Model(&Session{}).
			Where("key IN ? AND (expires_at = ? OR expires_at > ?)", keys[start:min(start+chunk, len(keys))], time.Time{}, now()).
			Pluck("key", &found).Error
		if err != nil {
			return nil, wrap(err, "live sessions")
		}
		for _, k := range found {
			live[k] = true
		}
	}
	return live, nil
}
