package models

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// MessageKind tells a message typed by a user from an event shown in the room.
type MessageKind string

// The kinds of message.
const (
	MessageText MessageKind = "text" // typed by a user
	MessageJoin MessageKind = "join" // a user joined the room
)

// Message is a message in a room. Its ID is its order in the room.
type Message struct {
	ID        int64       `gorm:"index:idx_messages_room_id_id,priority:2"`
	RoomID    int64       `gorm:"not null;index:idx_messages_room_id_id,priority:1;uniqueIndex:idx_messages_room_id_client_id,priority:1"`
	UserID    int64       `gorm:"not null"`
	Author    string      `gorm:"->;-:migration"` // users.username, filled by every query that returns messages
	Kind      MessageKind `gorm:"not null"`
	Text      string      `gorm:"not null"`
	ClientID  *string     `gorm:"uniqueIndex:idx_messages_room_id_client_id,priority:2"` // makes a resend idempotent
	CreatedAt time.Time
}

// NewMessage is what CreateMessage stores.
type NewMessage struct {
	RoomID, UserID int64
	Kind           MessageKind // "" means MessageText
	Text           string
	ClientID       string // "" means none
	Author         string // the sender's username, when the caller has it (saves reading it back)
}

// CreateMessage stores a message and returns it with Author filled (created is true). When ClientID is set
// and the room already has a message with that client id, it stores nothing and returns that message with
// created false.
//
// Ordering invariant: within a room, ids are assigned in commit order, so a reader that has seen message n
// never later finds a new message below n (the realtime replay, MessagesAfter(lastSeen), relies on it). On
// SQLite the one writer connection gives that. On Postgres a sequence value is taken at insert, before commit,
// so two concurrent inserts could commit out of id order; every insert of a message therefore first takes the
// room's advisory transaction lock (see lockRoomMessages), which is released only after the commit is visible.
// Across rooms ids are unordered in commit time, which nothing relies on.
//
// What the handlers add on top: they store and publish under one process-wide mutex, so subscribers of one
// instance receive a room's messages in id order; across instances (issue 7) each instance fills gaps from
// the database with MessagesAfter, which this invariant makes safe.
func (s *Store) CreateMessage(ctx context.Context, nm NewMessage) (m Message, created bool, err error) {
	m = Message{RoomID: nm.RoomID, UserID: nm.UserID, Kind: cmp.Or(nm.Kind, MessageText), Text: nm.Text}
	if m.Kind != MessageText && m.Kind != MessageJoin {
		return Message{}, false, fmt.Errorf("models: create message in room %d: invalid kind %q", nm.RoomID, nm.Kind)
	}
	if nm.ClientID != "" {
		m.ClientID = &nm.ClientID
	}
	insert := func(tx *gorm.DB) error {
		if err := s.lockRoomMessages(tx, nm.RoomID); err != nil {
			return err
		}
		res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&m)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 { // a resend: (room, client id) exists
			return messages(tx).Where("messages.room_id = ? AND messages.client_id = ?", nm.RoomID, nm.ClientID).
				Take(&m).Error
		}
		created = true
		if nm.Author != "" {
			m.Author = nm.Author // the caller knows it: no second query on the hot path
			return nil
		}
		m, err = messageByID(tx, m.ID)
		return err
	}
	if s.onPostgres() {
		err = s.w.WithContext(ctx).Transaction(insert) // the room lock lasts until commit
	} else {
		err = insert(s.w.WithContext(ctx)) // one statement: atomic on its own
	}
	if err != nil {
		return Message{}, false, wrap(err, "create message in room %d", nm.RoomID)
	}
	return m, created, nil
}

// RecentMessages returns the newest limit messages of the room, oldest first.
func (s *Store) RecentMessages(ctx context.Context, roomID int64, limit int) ([]Message, error) {
	var ms []Message
	err := messages(s.r.WithContext(ctx)).Where("messages.room_id = ?", roomID).
		Order("messages.id DESC").Limit(max(limit, 0)).Find(&ms).Error
	if err != nil {
		return nil, wrap(err, "recent messages in room %d", roomID)
	}
	slices.Reverse(ms)
	return ms, nil
}

// MessagesBefore returns the newest limit messages of the room with an id below beforeID, oldest first.
func (s *Store) MessagesBefore(ctx context.Context, roomID, beforeID int64, limit int) ([]Message, error) {
	var ms []Message
	err := messages(s.r.WithContext(ctx)).Where("messages.room_id = ? AND messages.id < ?", roomID, beforeID).
		Order("messages.id DESC").Limit(max(limit, 0)).Find(&ms).Error
	if err != nil {
		return nil, wrap(err, "messages in room %d before %d", roomID, beforeID)
	}
	slices.Reverse(ms)
	return ms, nil
}

// MessagesAfter returns the first limit messages of the room with an id above afterID, oldest first.
func (s *Store) MessagesAfter(ctx context.Context, roomID, afterID int64, limit int) ([]Message, error) {
	var ms []Message
	err := messages(s.r.WithContext(ctx)).Where("messages.room_id = ? AND messages.id > ?", roomID, afterID).
		Order("messages.id").Limit(max(limit, 0)).Find(&ms).Error
	if err != nil {
		return nil, wrap(err, "messages in room %d after %d", roomID, afterID)
	}
	return ms, nil
}

// LatestMessageID returns the id of the newest message of the room, or 0 when it has none.
func (s *Store) LatestMessageID(ctx context.Context, roomID int64) (int64, error) {
	var id int64
	err := s.r.WithContext(ctx).Model(&Message{}).Where("room_id = ?", roomID).
		Select("COALESCE(MAX(id), 0)").Scan(&id).Error
	if err != nil {
		return 0, wrap(err, "latest message in room %d", roomID)
	}
	return id, nil
}

// lockRoomMessages serializes the transactions that insert messages into the room, up to their commit, so
// that ids in a room are committed in id order (see CreateMessage). Take it before inserting a message. It is
// a no-op on SQLite, whose writes are serialized already.
func (s *Store) lockRoomMessages(tx *gorm.DB, roomID int64) error {
	if !s.onPostgres() {
		return nil
	}
	return advisoryLock(tx, lockMessages, roomID)
}

// messages starts a query of messages that fills Author.
func messages(db *gorm.DB) *gorm.DB {
	return db.Model(&Message{}).
		Select("messages.*, users.username AS author").
		Joins("JOIN users ON users.id = messages.user_id")
}

// messageByID reads one message, with Author.
func messageByID(db *gorm.DB, id int64) (Message, error) {
	var m Message
	err := messages(db).Where("messages.id = ?", id).Take(&m).Error
	return m, err
}
