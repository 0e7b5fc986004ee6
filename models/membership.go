package models

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Membership says that a user is a member of a room, and how far they have read it.
type Membership struct {
	RoomID     int64     `gorm:"primaryKey;autoIncrement:false"`
	UserID     int64     `gorm:"primaryKey;autoIncrement:false;index"`
	LastReadID int64     `gorm:"not null"` // the newest message the user has seen
	JoinedAt   time.Time `gorm:"not null;autoCreateTime"`
}

// Join makes the user a member of the room and, in the same transaction, adds a join message, which it
// returns with Author filled; the new member has read up to that message. It returns nil when the user is
// already a member. Nobody joins a direct room: its two members are set when it is created.
func (s *Store) Join(ctx context.Context, roomID, userID int64) (*Message, error) {
	var joined *Message
	err := s.w.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var room Room
		if err := tx.Take(&room, roomID).Error; err != nil {
			return err
		}
		res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&Membership{RoomID: roomID, UserID: userID})
		if res.Error != nil || res.RowsAffected == 0 {
			return res.Error // already a member
		}
		if room.Kind == RoomDirect {
			return errors.New("cannot join a direct room")
		}
		if err := s.lockRoomMessages(tx, roomID); err != nil {
			return err
		}
		insert, err := s.insertMessageIn(tx)
		if err != nil {
			return err
		}
		st := Stored{Message: Message{RoomID: roomID, UserID: userID, Kind: MessageJoin}}
		if err := s.insertMessage(tx, insert, &st); err != nil { // no Author: it reads the message back with it
			return err
		}
		err = tx.Model(&Membership{}).Where("room_id = ? AND user_id = ?", roomID, userID).
			Update("last_read_id", st.ID).Error
		if err != nil {
			return err
		}
		joined = &st.Message
		return nil
	})
	if err != nil {
		return nil, wrap(err, "join room %d as user %d", roomID, userID)
	}
	return joined, nil
}

// Membership returns the user's membership of the room, or ErrNotFound.
func (s *Store) Membership(ctx context.Context, roomID, userID int64) (Membership, error) {
	var m Membership
	err := s.r.WithContext(ctx).Where("room_id = ? AND user_id = ?", roomID, userID).Take(&m).Error
	if err != nil {
		return Membership{}, wrap(err, "membership of user %d in room %d", userID, roomID)
	}
	return m, nil
}

// Members returns the members of the room, ordered by username (byte order).
func (s *Store) Members(ctx context.Context, roomID int64) ([]User, error) {
	var users []User
	err := s.r.WithContext(ctx).
		Joins("JOIN memberships ON memberships.user_id = users.id").
		Where("memberships.room_id = ?", roomID).
		Find(&users).Error
	if err != nil {
		return nil, wrap(err, "members of room %d", roomID)
	}
	sortUsers(users)
	return users, nil
}

// sortUsers orders users by username in byte order. It sorts in Go, not with ORDER BY, because a Postgres
// database's collation (en_US, say) may order "a_b" and "ab" differently from SQLite.
func sortUsers(users []User) {
	slices.SortFunc(users, func(x, y User) int { return strings.Compare(x.Username, y.Username) })
}

// MarkRead records that the user has read the room up to messageID; the mark never moves back. It does
// nothing for non-members.
func (s *Store) MarkRead(ctx context.Context, roomID, userID, messageID int64) error {
	err := s.w.WithContext(ctx).Model(&Membership{}).
		Where("room_id = ? AND user_id = ? AND last_read_id < ?", roomID, userID, messageID).
		Update("last_read_id", messageID).Error
	return wrap(err, "mark room %d read by user %d", roomID, userID)
}

// ReadMark says a user has read a room up to a message.
type ReadMark struct {
	RoomID, UserID, MessageID int64
}

// MarkReadMany applies many read marks in one transaction (each keeps the maximum, as MarkRead does).
func (s *Store) MarkReadMany(ctx context.Context, marks []ReadMark) error {
	if len(marks) == 0 {
		return nil
	}
	err := s.w.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		for _, m := range marks {
			err := tx.Model(&Membership{}).
				Where("room_id = ? AND user_id = ? AND last_read_id < ?", m.RoomID, m.UserID, m.MessageID).
				Update("last_read_id", m.MessageID).Error
			if err != nil {
				return err
			}
		}
		return nil
	})
	return wrap(err, "mark %d rooms read", len(marks))
}

// Leave removes a user's membership of a room (nothing when there is none). A private room's former member can
// no longer read or post there.
func (s *Store) Leave(ctx context.Context, roomID, userID int64) error {
	err := s.w.WithContext(ctx).Where("room_id = ? AND user_id = ?", roomID, userID).Delete(&Membership{}).Error
	return wrap(err, "remove user %d from room %d", userID, roomID)
}
