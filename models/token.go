package models

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"time"
)

// tokenPrefix starts every API token, so a leaked one is easy to recognise (and to grep for).
const tokenPrefix = "sb_"

// Token is an API token of a user. Only its hash is stored; the token itself is shown once, at creation.
type Token struct {
	ID         int64
	UserID     int64  `gorm:"not null;index"`
	Name       string `gorm:"not null"`
	Hint       string `gorm:"not null"` // the first characters, to tell tokens apart
	Hash       string `gorm:"not null;uniqueIndex"`
	CreatedAt  time.Time
	LastUsedAt *time.Time
}

// tokenRow adds the foreign key of tokens for migration.
type tokenRow struct {
	Token
	User User `gorm:"foreignKey:UserID"`
}

func (tokenRow) TableName() string { return "tokens" }

// CreateToken makes a new API token for a user and returns it in full: this is the only time it is readable.
func (s *Store) CreateToken(ctx context.Context, userID int64, name string) (string, Token, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", Token{}, wrap(err, "create token for user %d", userID)
	}
	plain := tokenPrefix + base64.RawURLEncoding.EncodeToString(raw)
	t := Token{UserID: userID, Name: name, Hint: plain[:len(tokenPrefix)+6], Hash: hashToken(plain)}
	if err := s.w.WithContext(ctx).Create(&t).Error; err != nil {
		return "", Token{}, wrap(err, "create token for user %d", userID)
	}
	return plain, t, nil
}

// Tokens lists a user's API tokens, newest first.
func (s *Store) Tokens(ctx context.Context, userID int64) ([]Token, error) {
	var ts []Token
	if err := s.r.WithContext(ctx).Where("user_id = ?", userID).Order("id DESC").Find(&ts).Error; err != nil {
		return nil, wrap(err, "tokens of user %d", userID)
	}
	return ts, nil
}

// RevokeToken deletes one of the user's tokens; ErrNotFound when the user has no such token.
func (s *Store) RevokeToken(ctx context.Context, userID, tokenID int64) error {
	res := s.w.WithContext(ctx).Where("id = ? AND user_id = ?", tokenID, userID).Delete(&Token{})
	if res.Error == nil && res.RowsAffected == 0 {
		return wrap(ErrNotFound, "revoke token %d of user %d", tokenID, userID)
	}
	return wrap(res.Error, "revoke token %d of user %d", tokenID, userID)
}

// UserByToken returns the owner of an API token, or ErrNotFound, and notes when the token was last used.
func (s *Store) UserByToken(ctx context.Context, plain string) (User, error) {
	if !strings.HasPrefix(plain, tokenPrefix) {
		return User{}, wrap(ErrNotFound, "user by token")
	}
	var t Token
	if err := s.r.WithContext(ctx).Where("hash = ?", hashToken(plain)).Take(&t).Error; err != nil {
		return User{}, wrap(err, "user by token")
	}
	used := now()
	if err := s.w.WithContext(ctx).Model(&Token{}).Where("id = ?", t.ID).Update("last_used_at", used).Error; err != nil {
		return User{}, wrap(err, "note use of token %d", t.ID)
	}
	return s.UserByID(ctx, t.UserID)
}

// hashToken is how a token is stored: its SHA-256 (a token is random, so no salt or slow hash is needed).
func hashToken(plain string) string {
	sum := sha256.Sum256([]byte(plain))
	return hex.EncodeToString(sum[:])
}
