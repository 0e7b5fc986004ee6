// Package views renders Switchboard's pages and pushed fragments with templ. Views take view-model structs and do
// no I/O; the same component renders a page and the fragment pushed over a socket.
package views

import (
	"strconv"
	"time"
)

// Assets holds the cache-busted URLs of the embedded static files.
type Assets struct {
	CSS, HTMX, WS, SSE, App string
}

// Viewer is the signed-in user a page is rendered for.
type Viewer struct {
	ID      int64
	Name    string
	IsAdmin bool
}

// Layout is what every full page needs.
type Layout struct {
	Title  string
	Viewer *Viewer // nil when signed out
	CSRF   string  // the token every POST form carries
	Assets Assets
	Nav    string // the active navigation item: "rooms", "ticker"
}

// AuthPage is the login or sign-up form.
type AuthPage struct {
	Layout
	Signup   bool
	Username string
	Error    string
}

// RoomLink is a room in the sidebar or the rooms list.
type RoomLink struct {
	ID     int64
	Name   string // the peer's name for a direct room
	Kind   string // "open", "private", "direct"
	Unread int
	Member bool
	Active bool
}

// RoomsPage lists the rooms a user can see.
type RoomsPage struct {
	Layout
	Rooms   []RoomLink
	Error   string
	NewName string
}

// Message is one message or notice in a room.
type Message struct {
	ID       int64
	Author   string
	Kind     string // "text" or "join"
	Text     string
	At       time.Time
	ClientID string // the sender's id for this send: the sender's page matches it to its pending copy
	Grouped  bool   // same author and minute as the message before: shown without its header
}

// Person is a room member and whether they are online now.
type Person struct {
	Name   string
	Online bool
}

// RoomPage is a room: its newest messages, its people and the compose form.
type RoomPage struct {
	Layout
	Room     RoomLink
	Rooms    []RoomLink
	Messages []Message
	HasOlder bool
	People   []Person
	CanAdd   bool   // a private room whose members may add others
	Error    string // a form error shown above the compose box (no-JS posts)
}

// ErrorPage is a friendly page for 4xx and 5xx statuses.
type ErrorPage struct {
	Layout
	Status  int
	Message string
}

func roomURL(id int64) string    { return "/rooms/" + strconv.FormatInt(id, 10) }
func msgID(id int64) string      { return "msg-" + strconv.FormatInt(id, 10) }
func unreadID(room int64) string { return "unread-" + strconv.FormatInt(room, 10) }
func clock(t time.Time) string   { return t.UTC().Format("15:04") }
func isoTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }
func minute(t time.Time) string  { return t.UTC().Format("2006-01-02T15:04") }
func olderURL(room, before int64) string {
	return roomURL(room) + "/messages?before=" + strconv.FormatInt(before, 10)
}

// unreadMarks is how many marks an unread badge holds: CSS counts them, and shows "99+" past 99.
func unreadMarks(n int) []struct{} {
	return make([]struct{}, min(n, 100))
}

func roomPrefix(kind string) string {
	switch kind {
	case "direct":
		return "@"
	case "private":
		return "🔒 "
	default:
		return "#"
	}
}

// Quote is one symbol's row on the ticker.
type Quote struct {
	Symbol    string
	HasPrice  bool // false until the first tick
	Price     float64
	Change    float64
	ChangePct float64
	Open      float64
	High      float64
	Low       float64
	Up, Down  bool      // the last tick moved the price up or down: the row flashes
	History   []float64 // recent prices, oldest first, for the sparkline and chart
}

// TickerPage is the live table of every symbol.
type TickerPage struct {
	Layout
	Quotes []Quote
}

// QuotePage is one symbol's live chart and session figures.
type QuotePage struct {
	Layout
	Quote Quote
}

// Token is an API token as listed on the settings page (never the token itself).
type Token struct {
	ID       int64
	Name     string
	Hint     string
	Created  time.Time
	LastUsed *time.Time
}

// TokensPage lists the user's API tokens; New is the token just created, shown this once.
type TokensPage struct {
	Layout
	Tokens []Token
	New    string
	Error  string
}

// AdminStats are the live figures of the admin page.
type AdminStats struct {
	Connections map[string]int // live connections by kind
	Events      uint64         // events delivered to this instance
	Deliveries  uint64         // events queued for a subscriber
	Dropped     uint64         // subscribers dropped as too slow
	Users       int64
	Rooms       int64
	DBBytes     int64
	Goroutines  int
	RoomConns   []RoomConns // rooms with connections on this instance
}

// RoomConns is a room and how many connections it has on this instance.
type RoomConns struct {
	Name  string
	Kind  string
	Conns int
}

// AdminUser is an account as the admin page lists it.
type AdminUser struct {
	ID       int64
	Name     string
	IsAdmin  bool
	Disabled bool
	Created  time.Time
	Self     bool // the admin looking at the page (who cannot disable or demote themselves)
}

// AdminPage is the operator's page: live figures and the accounts.
type AdminPage struct {
	Layout
	Stats       AdminStats
	Users       []AdminUser
	NewPassword string // a reset password, shown once
	ResetFor    string
}

// AdminBot is a bot as the admin page lists it.
type AdminBot struct {
	ID         int64 // the bot's user id
	Name       string
	WebhookURL string
	Created    time.Time
}

// AdminBotsPage is the admin's list of bots with the form that creates one. Embedded: it is the bots section of
// the admin page (its forms then return there).
type AdminBotsPage struct {
	Layout
	Bots     []AdminBot
	Error    string
	NewName  string // the refused form's values, kept
	NewURL   string
	Embedded bool
}
