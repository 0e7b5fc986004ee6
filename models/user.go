package models

import (
	"context"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// User is an account.
type User struct {
	ID           int64
	Username     string `gorm:"not null;uniqueIndex"` // callers pass it lower-cased and validated
	PasswordHash []byte `gorm:"not null"`
	IsAdmin      bool   `gorm:"not null"`
	Disabled     bool   `gorm:"not null;default:false"` // a disabled account cannot sign in
	CreatedAt    time.Time
}

// CreateUser adds an account; the first account ever is the admin. It returns ErrUsernameTaken when the
// username is in use.
func (s *Store) CreateUser(ctx context.Context, username string, passwordHash []byte) (User, error) {
	u := User{Username: username, PasswordHash: passwordHash}
	err := s.w.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		// Counting and inserting in one serialized transaction makes "first" exact. On SQLite writers are
		// serialized by the one writer connection; on Postgres (READ COMMITTED, many connections, maybe many
		// instances) by an advisory lock held until commit: the count, taken after the lock, sees every
		// account created before.
		if s.onPostgres() {
			if err := advisoryLock(tx, lockSignup, 0); err != nil {
				return err
			}
		}
		var users int64
		if err := tx.Model(&User{}).Count(&users).Error; err != nil {
			return err
		}
		u.IsAdmin = users == 0
		res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&u)
		if res.Error == nil && res.RowsAffected == 0 {
			return ErrUsernameTaken
		}
		return res.Error
	})
	if err != nil {
		return User{}, wrap(err, "create user %q", username)
	}
	return u, nil
}

// UserByName returns the user with that username, or ErrNotFound.
func (s *Store) UserByName(ctx context.Context, username string) (User, error) {
	var u User
	if err := s.r.WithContext(ctx).Where("username = ?", username).Take(&u).Error; err != nil {
		return User{}, wrap(err, "user %q", username)
	}
	return u, nil
}

// UserByID returns the user with that id, or ErrNotFound.
func (s *Store) UserByID(ctx context.Context, id int64) (User, error) {
	var u User
	if err := s.r.WithContext(ctx).Take(&u, id).Error; err != nil {
		return User{}, wrap(err, "user %d", id)
	}
	return u, nil
}

// Users lists every account by username.
func (s *Store) Users(ctx context.Context) ([]User, error) {
	var us []User
	if err := s.r.WithContext(ctx).Order("username").Find(&us).Error; err != nil {
		return nil, wrap(err, "users")
	}
	return us, nil
}

// UpdateUser changes an account's admin and disabled flags and, when hash is not nil, its password hash;
// ErrNotFound when there is no such user.
func (s *Store) UpdateUser(ctx context.Context, id int64, isAdmin, disabled bool, hash []byte) error {
	fields := map[string]any{"is_admin": isAdmin, "disabled": disabled}
	if hash != nil {
		fields["password_hash"] = hash
	}
	res := s.w.WithContext(ctx).Model(&User{}).Where("id = ?", id).Updates(fields)
	if res.Error == nil && res.RowsAffected == 0 {
		return wrap(ErrNotFound, "update user %d", id)
	}
	return wrap(res.Error, "update user %d", id)
}
