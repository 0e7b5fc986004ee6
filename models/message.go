package models

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"gorm.io/gorm"
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
	stored, err := s.CreateMessages(ctx, []NewMessage{nm})
	if err != nil {
		return Message{}, false, err
	}
	return stored[0].Message, stored[0].Created, nil
}

// Stored is one result of CreateMessages: the message as stored, and whether this call created it (false
// for a resend of a client id the room has already).
type Stored struct {
	Message
	Created bool
}

// CreateMessages stores a group of messages in one transaction, in order, and returns what CreateMessage
// would return for each. Committing many messages at once costs little more than committing one (a group
// commit), which is how a busy server keeps up. It stores all or none: when one fails, the error names it
// and nothing is stored.
func (s *Store) CreateMessages(ctx context.Context, nms []NewMessage) ([]Stored, error) {
	stored := make([]Stored, len(nms))
	for i, nm := range nms {
		m := Message{RoomID: nm.RoomID, UserID: nm.UserID, Kind: cmp.Or(nm.Kind, MessageText), Text: nm.Text, Author: nm.Author}
		if m.Kind != MessageText && m.Kind != MessageJoin {
			return nil, fmt.Errorf("models: create message in room %d: invalid kind %q", nm.RoomID, nm.Kind)
		}
		if nm.ClientID != "" {
			m.ClientID = &nm.ClientID
		}
		stored[i].Message = m
	}
	err := s.w.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := s.lockRoomsMessages(tx, nms); err != nil {
			return err
		}
		insert, err := s.insertMessageIn(tx)
		if err != nil {
			return err
		}
		for i := range stored {
			if err := s.insertMessage(tx, insert, &stored[i]); err != nil {
				return fmt.Errorf("message %d of %d, in room %d: %w", i+1, len(stored), stored[i].RoomID, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, wrap(err, "create messages")
	}
	return stored, nil
}

// insertMessageSQL inserts one message and returns its id, or no row when the room has its client id already.
// $n placeholders suit both engines (SQLite numbers "$1", "$2"… in order of appearance).
const insertMessageSQL = `INSERT INTO messages (room_id, user_id, kind, text, client_id, created_at)
VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING id`

// insertMessageIn returns the insert statement, prepared once per connection, for use in tx.
func (s *Store) insertMessageIn(tx *gorm.DB) (*sql.Stmt, error) {
	sqlTx, ok := tx.Statement.ConnPool.(*sql.Tx)
	if !ok {
		return nil, fmt.Errorf("transaction of type %T has no *sql.Tx", tx.Statement.ConnPool)
	}
	return sqlTx.StmtContext(tx.Statement.Context, s.insertMessageStmt), nil
}

// insertMessage inserts st, or on a resend reads the stored message with the same client id into it.
func (s *Store) insertMessage(tx *gorm.DB, insert *sql.Stmt, st *Stored) error {
	st.CreatedAt = now()
	start := time.Now()
	err := insert.QueryRowContext(tx.Statement.Context,
		st.RoomID, st.UserID, string(st.Kind), st.Text, st.ClientID, st.CreatedAt).Scan(&st.ID)
	s.observed("create", start)
	switch {
	case errors.Is(err, sql.ErrNoRows): // a resend: (room, client id) exists
		return messages(tx).Where("messages.room_id = ? AND messages.client_id = ?", st.RoomID, *st.ClientID).
			Take(&st.Message).Error
	case err != nil:
		return err
	}
	st.Created = true
	if st.Author != "" {
		return nil // the caller knows it: no second query on the hot path
	}
	st.Message, err = messageByID(tx, st.ID)
	return err
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

// lockRoomsMessages takes lockRoomMessages for every room of a group of messages, in ascending order of room
// id so that two groups never wait on each other.
func (s *Store) lockRoomsMessages(tx *gorm.DB, nms []NewMessage) error {
	rooms := make([]int64, 0, len(nms))
	for _, nm := range nms {
		rooms = append(rooms, nm.RoomID)
	}
	slices.Sort(rooms)
	for _, room := range slices.Compact(rooms) {
		if err := s.lockRoomMessages(tx, room); err != nil {
			return err
		}
	}
	return nil
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
