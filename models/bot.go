package models

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"regexp"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// ErrInvalidUsername is returned by CreateBot when the name is not 3–32 of a–z, 0–9, _ and -.
var ErrInvalidUsername = errors.New("models: invalid username: 3–32 of a-z 0-9 _ -")

// botNamePattern is the rule for usernames (the signup form checks the same for people).
var botNamePattern = regexp.MustCompile(`^[a-z0-9_-]{3,32}$`)

// botPasswordPrefix starts a bot's password hash. It is not a bcrypt hash ("$2a$…"), so no password ever matches
// it and nobody can sign in as a bot.
const botPasswordPrefix = "bot:no-password:"

// Bot is a user that a program speaks for: messages that mention it, or that are sent in its direct rooms, are
// posted to its webhook, and the webhook's replies become its messages. The bot's account is an ordinary user
// (it has a username, can be a member of rooms, and its messages are normal messages); this is the row that
// makes that user a bot.
type Bot struct {
	UserID     int64     `gorm:"primaryKey;autoIncrement:false"`
	Username   string    `gorm:"->;-:migration"` // users.username, filled by every query that returns bots
	WebhookURL string    `gorm:"not null"`
	CreatedBy  int64     `gorm:"not null"` // the admin who created it
	CreatedAt  time.Time `gorm:"not null"`
}

// botRow adds the foreign key of bots for migration.
type botRow struct {
	Bot
	User User `gorm:"foreignKey:UserID"`
}

func (botRow) TableName() string { return "bots" }

// TableName keeps Bot in the same table as botRow.
func (Bot) TableName() string { return "bots" }

// CreateBot adds a bot: a user named name (never an admin, with a password hash that no password matches) and
// its bots row, in one transaction. It returns ErrInvalidUsername for a bad name and ErrUsernameTaken when a
// user (person or bot) has it already. The webhook URL is stored as given: callers check it.
func (s *Store) CreateBot(ctx context.Context, name, webhookURL string, createdBy int64) (User, Bot, error) {
	if !botNamePattern.MatchString(name) {
		return User{}, Bot{}, wrap(ErrInvalidUsername, "create bot %q", name)
	}
	random := make([]byte, 32)
	if _, err := rand.Read(random); err != nil {
		return User{}, Bot{}, wrap(err, "create bot %q", name)
	}
	u := User{Username: name, PasswordHash: []byte(botPasswordPrefix + hex.EncodeToString(random))}
	b := Bot{WebhookURL: webhookURL, CreatedBy: createdBy, CreatedAt: now()}
	err := s.w.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&u)
		if res.Error == nil && res.RowsAffected == 0 {
			return ErrUsernameTaken
		}
		if res.Error != nil {
			return res.Error
		}
		b.UserID = u.ID
		return tx.Create(&b).Error
	})
	if err != nil {
		return User{}, Bot{}, wrap(err, "create bot %q", name)
	}
	b.Username = u.Username
	return u, b, nil
}

// bots selects bots with their usernames.
func bots(db *gorm.DB) *gorm.DB {
	return db.Model(&Bot{}).
		Select("bots.*, users.username AS username").
		Joins("JOIN users ON users.id = bots.user_id")
}

// Bots lists every bot by username.
func (s *Store) Bots(ctx context.Context) ([]Bot, error) {
	var bs []Bot
	if err := bots(s.r.WithContext(ctx)).Order("users.username").Find(&bs).Error; err != nil {
		return nil, wrap(err, "bots")
	}
	return bs, nil
}

// BotByUserID returns the bot whose user has that id, or ErrNotFound (for people too).
func (s *Store) BotByUserID(ctx context.Context, userID int64) (Bot, error) {
	var b Bot
	if err := bots(s.r.WithContext(ctx)).Where("bots.user_id = ?", userID).Take(&b).Error; err != nil {
		return Bot{}, wrap(err, "bot %d", userID)
	}
	return b, nil
}

// DeleteBot removes a bot's row and disables its user, in one transaction; ErrNotFound when the user is not a
// bot. The user itself stays (disabled), so the bot's old messages keep their author and its name stays taken.
func (s *Store) DeleteBot(ctx context.Context, userID int64) error {
	err := s.w.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Where("user_id = ?", userID).Delete(&Bot{})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return ErrNotFound
		}
		return tx.Model(&User{}).Where("id = ?", userID).Update("disabled", true).Error
	})
	return wrap(err, "delete bot %d", userID)
}
