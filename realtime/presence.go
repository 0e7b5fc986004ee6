package realtime

import (
	"slices"
	"sync"
	"time"
)

// Presence counts live connections per (room, user). A user goes online on the first connection and offline only
// when the last one has been gone for linger, so a reconnect within linger does not flap.
type Presence struct {
	linger   time.Duration
	onChange func(room int64)

	// mu guards rooms and closed. onChange is always called after mu is released, because it reads Online and
	// publishes.
	mu     sync.Mutex
	rooms  map[int64]map[int64]*presenceEntry // room → user → entry; empty maps are deleted
	closed bool
}

// presenceEntry is one user in one room: online while conns > 0, lingering while conns == 0 and timer is set.
type presenceEntry struct {
	conns int
	timer *time.Timer
	gen   uint64 // bumped on every Disconnect that starts a timer, so a stale timer that already fired is ignored
}

// NewPresence returns a Presence that calls onChange(room) (if not nil) whenever a room's online set changes.
func NewPresence(linger time.Duration, onChange func(room int64)) *Presence {
	if onChange == nil {
		onChange = func(int64) {}
	}
	return &Presence{linger: linger, onChange: onChange, rooms: make(map[int64]map[int64]*presenceEntry)}
}

// Connect records a new connection of user in room; it calls onChange(room) when the user becomes online (not
// when they were lingering).
func (p *Presence) Connect(room, user int64) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	users := p.rooms[room]
	if users == nil {
		users = make(map[int64]*presenceEntry)
		p.rooms[room] = users
	}
	e := users[user]
	changed := e == nil
	if changed {
		e = &presenceEntry{}
		users[user] = e
	}
	e.conns++
	if e.timer != nil {
		e.timer.Stop()
		e.timer = nil
	}
	p.mu.Unlock()
	if changed {
		p.onChange(room)
	}
}

// Disconnect records that a connection of user in room has gone. When it was the last one and no new connection
// arrives within linger, the user is removed and onChange(room) is called.
func (p *Presence) Disconnect(room, user int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := p.rooms[room][user]
	if p.closed || e == nil || e.conns == 0 {
		return
	}
	e.conns--
	if e.conns > 0 {
		return
	}
	e.gen++
	gen := e.gen
	e.timer = time.AfterFunc(p.linger, func() { p.expire(room, user, gen) })
}

// expire removes a user whose linger timer (generation gen) fired, unless they came back in the meantime.
func (p *Presence) expire(room, user int64, gen uint64) {
	p.mu.Lock()
	e := p.rooms[room][user]
	if p.closed || e == nil || e.conns > 0 || e.gen != gen {
		p.mu.Unlock()
		return
	}
	delete(p.rooms[room], user)
	if len(p.rooms[room]) == 0 {
		delete(p.rooms, room)
	}
	p.mu.Unlock()
	p.onChange(room)
}

// Online returns the ids of the users online in room, lingering ones included, sorted.
func (p *Presence) Online(room int64) []int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	users := make([]int64, 0, len(p.rooms[room]))
	for u := range p.rooms[room] {
		users = append(users, u)
	}
	slices.Sort(users)
	return users
}

// Close stops pending timers, so no user expires afterwards; later calls to Connect and Disconnect do nothing.
func (p *Presence) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, users := range p.rooms {
		for _, e := range users {
			if e.timer != nil {
				e.timer.Stop()
				e.timer = nil
			}
		}
	}
}
