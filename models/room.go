package models

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// RoomKind says who can see and join a room.
type RoomKind string

// The kinds of room.
const (
	RoomOpen    RoomKind = "open"    // listed to everyone; anyone can join
	RoomPrivate RoomKind = "private" // visible to its members only
	RoomDirect  RoomKind = "direct"  // the conversation of two users
)

// Room is a chat room.
type Room struct {
	ID          int64
	Name        string   `gorm:"not null"`
	Kind        RoomKind `gorm:"not null"`
	DirectKey   *string  `gorm:"uniqueIndex"` // "minID:maxID" for direct rooms, nil otherwise
	CreatedByID int64    `gorm:"not null"`    // 0 for rooms the system created
	CreatedAt   time.Time
}

// RoomListItem is a room as listed to one user.
type RoomListItem struct {
	Room
	Member bool   // the user is a member
	Unread int    // text messages of others after the user's last read one; 0 for non-members
	Peer   string // direct rooms: the other member's username
}

// EnsureRoom returns the non-direct room with that name (ignoring case), creating it with the given kind if
// there is none. It is idempotent; rooms it creates have CreatedByID 0.
func (s *Store) EnsureRoom(ctx context.Context, name string, kind RoomKind) (Room, error) {
	row, err := newRoomRow(name, kind, 0)
	if err != nil {
		return Room{}, wrap(err, "ensure room %q", name)
	}
	room := row.Room
	err = s.w.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&row)
		if res.Error != nil || res.RowsAffected == 1 {
			room = row.Room
			return res.Error
		}
		return tx.Where("name_key = ?", *row.NameKey).Take(&room).Error
	})
	if err != nil {
		return Room{}, wrap(err, "ensure room %q", name)
	}
	return room, nil
}

// CreateRoom creates an open or private room and makes the creator its member (without a join message).
// It returns ErrRoomNameTaken when a non-direct room has the same name, ignoring case.
func (s *Store) CreateRoom(ctx context.Context, name string, kind RoomKind, creatorID int64) (Room, error) {
	row, err := newRoomRow(name, kind, creatorID)
	if err != nil {
		return Room{}, wrap(err, "create room %q", name)
	}
	err = s.w.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&row)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return ErrRoomNameTaken
		}
		return tx.Create(&Membership{RoomID: row.ID, UserID: creatorID}).Error
	})
	if err != nil {
		return Room{}, wrap(err, "create room %q", name)
	}
	return row.Room, nil
}

// RoomByID returns the room with that id, or ErrNotFound.
func (s *Store) RoomByID(ctx context.Context, id int64) (Room, error) {
	var room Room
	if err := s.r.WithContext(ctx).Take(&room, id).Error; err != nil {
		return Room{}, wrap(err, "room %d", id)
	}
	return room, nil
}

// DirectRoom returns the direct room of users a and b, creating it, with both as members, on first use
// (created reports that). The order of a and b does not matter; a user has no direct room with themself.
func (s *Store) DirectRoom(ctx context.Context, a, b int64) (room Room, created bool, err error) {
	if a == b {
		return Room{}, false, fmt.Errorf("models: direct room of user %d: a user has no direct room with themself", a)
	}
	key := fmt.Sprintf("%d:%d", min(a, b), max(a, b))
	err = s.r.WithContext(ctx).Where("direct_key = ?", key).Take(&room).Error
	if !errors.Is(err, gorm.ErrRecordNotFound) {
		return room, false, wrap(err, "direct room %s", key)
	}
	err = s.w.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var users []User
		if err := tx.Where("id IN ?", []int64{a, b}).Find(&users).Error; err != nil {
			return err
		}
		if len(users) != 2 {
			return ErrNotFound
		}
		sortUsers(users)
		row := roomRow{Room: Room{
			Name:        users[0].Username + " & " + users[1].Username,
			Kind:        RoomDirect,
			DirectKey:   &key,
			CreatedByID: a,
		}}
		res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&row)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 { // created since the read above
			return tx.Where("direct_key = ?", key).Take(&room).Error
		}
		room, created = row.Room, true
		return tx.Create([]Membership{{RoomID: room.ID, UserID: a}, {RoomID: room.ID, UserID: b}}).Error
	})
	if err != nil {
		return Room{}, false, wrap(err, "direct room %s", key)
	}
	return room, created, nil
}

// roomsForUserSQL lists the rooms a user sees, with membership, unread count and (direct rooms) peer. $1 is the
// user, $2 MessageText, $3 RoomDirect, $4 RoomOpen (a $n used twice is one parameter on both engines).
const roomsForUserSQL = `
SELECT rooms.id, rooms.name, rooms.kind, rooms.direct_key, rooms.created_by_id, rooms.created_at,
	memberships.user_id IS NOT NULL AS member,
	CASE WHEN memberships.user_id IS NULL THEN 0 ELSE (
		SELECT COUNT(*) FROM messages
		WHERE messages.room_id = rooms.id AND messages.id > memberships.last_read_id
			AND messages.user_id <> $1 AND messages.kind = $2
	) END AS unread,
	CASE WHEN rooms.kind = $3 THEN COALESCE((
		SELECT users.username FROM memberships AS peers JOIN users ON users.id = peers.user_id
		WHERE peers.room_id = rooms.id AND peers.user_id <> $1
		ORDER BY users.username LIMIT 1
	), '') ELSE '' END AS peer
FROM rooms
LEFT JOIN memberships ON memberships.room_id = rooms.id AND memberships.user_id = $1
WHERE rooms.kind = $4 OR memberships.user_id IS NOT NULL`

// RoomsForUser lists every open room and every private or direct room the user is a member of, in one
// query: non-direct rooms by name (ignoring case), then direct rooms by peer name.
func (s *Store) RoomsForUser(ctx context.Context, userID int64) ([]RoomListItem, error) {
	// Every socket's first frame runs this; a prepared statement and a plain scan cost a fraction of gorm's
	// parse-and-reflect (it was 42 % of the server's CPU in a reconnect storm).
	defer s.observed("query", time.Now())
	rows, err := s.roomsForUserStmt.QueryContext(ctx, userID, string(MessageText), string(RoomDirect), string(RoomOpen))
	if err != nil {
		return nil, wrap(err, "rooms for user %d", userID)
	}
	defer rows.Close()
	var items []RoomListItem
	for rows.Next() {
		var it RoomListItem
		err := rows.Scan(&it.ID, &it.Name, &it.Kind, &it.DirectKey, &it.CreatedByID, &it.CreatedAt, &it.Member, &it.Unread, &it.Peer)
		if err != nil {
			return nil, wrap(err, "rooms for user %d", userID)
		}
		items = append(items, it)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap(err, "rooms for user %d", userID)
	}
	slices.SortFunc(items, func(x, y RoomListItem) int {
		xDirect, yDirect := x.Kind == RoomDirect, y.Kind == RoomDirect
		switch {
		case xDirect && !yDirect:
			return 1
		case !xDirect && yDirect:
			return -1
		case xDirect:
			return cmp.Or(cmp.Compare(x.Peer, y.Peer), cmp.Compare(x.ID, y.ID))
		default:
			return cmp.Or(cmp.Compare(strings.ToLower(x.Name), strings.ToLower(y.Name)), cmp.Compare(x.ID, y.ID))
		}
	})
	return items, nil
}

// newRoomRow validates a new open or private room.
func newRoomRow(name string, kind RoomKind, creatorID int64) (roomRow, error) {
	if kind != RoomOpen && kind != RoomPrivate {
		return roomRow{}, fmt.Errorf("invalid room kind %q", kind)
	}
	if strings.TrimSpace(name) == "" {
		return roomRow{}, errors.New("empty room name")
	}
	key := strings.ToLower(name)
	return roomRow{Room: Room{Name: name, Kind: kind, CreatedByID: creatorID}, NameKey: &key}, nil
}

// AllRooms lists every room (for the admin page), open and private ones by name, then direct ones.
func (s *Store) AllRooms(ctx context.Context) ([]Room, error) {
	var rs []Room
	if err := s.r.WithContext(ctx).Order("kind = 'direct', name, id").Find(&rs).Error; err != nil {
		return nil, wrap(err, "all rooms")
	}
	return rs, nil
}

// DirectMembers returns the two members of a direct room, read from its key ("minID:maxID"); ok is false for
// other rooms.
func (r Room) DirectMembers() (a, b int64, ok bool) {
	if r.Kind != RoomDirect || r.DirectKey == nil {
		return 0, 0, false
	}
	x, y, found := strings.Cut(*r.DirectKey, ":")
	a, errA := strconv.ParseInt(x, 10, 64)
	b, errB := strconv.ParseInt(y, 10, 64)
	return a, b, found && errA == nil && errB == nil
}
