package models_test

import (
	"testing"

	"switchboard/models"
)

func createUser(t *testing.T, s *models.Store, name string) models.User {
	t.Helper()
	u, err := s.CreateUser(t.Context(), name, []byte("hash-of-"+name))
	if err != nil {
		t.Fatalf("CreateUser(%q): %v", name, err)
	}
	return u
}

func createRoom(t *testing.T, s *models.Store, name string, kind models.RoomKind, creator int64) models.Room {
	t.Helper()
	r, err := s.CreateRoom(t.Context(), name, kind, creator)
	if err != nil {
		t.Fatalf("CreateRoom(%q): %v", name, err)
	}
	return r
}

func say(t *testing.T, s *models.Store, roomID, userID int64, text string) models.Message {
	t.Helper()
	m, _, err := s.CreateMessage(t.Context(), models.NewMessage{RoomID: roomID, UserID: userID, Text: text})
	if err != nil {
		t.Fatalf("CreateMessage(%q): %v", text, err)
	}
	return m
}

func ids(ms []models.Message) []int64 {
	out := make([]int64, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}
