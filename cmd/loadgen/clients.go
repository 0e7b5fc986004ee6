package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	firstFrameWait = 30 * time.Second // from upgrade to the room list, the first frame of every room socket
	progressEvery  = 2 * time.Second
	fdReserve      = 64 // files the process needs beside its sockets
)

// bench is a run's accounts and rooms: room r is created by users[r % len(users)], and client i sits in room
// i % rooms as that room's user. With one user per room (the default) every user is a member of exactly one room,
// so no socket also receives unread marks for other rooms, which the peer has no equivalent of.
type bench struct {
	cfg   config
	users []*webUser
	rooms []int64 // database ids, by room index
}

func setupBench(ctx context.Context, cfg config) (*bench, error) {
	n := cfg.users
	if n == 0 {
		n = min(cfg.rooms, cfg.conns)
	}
	start := time.Now()
	cfg.logf("run %s: signing up %d users", cfg.run, n)
	users, err := signupUsers(ctx, cfg.url, cfg.run, n)
	if err != nil {
		return nil, fmt.Errorf("setup: %w", err)
	}
	b := &bench{cfg: cfg, users: users}
	cfg.logf("creating %d rooms", cfg.rooms)
	b.rooms, err = createRooms(ctx, cfg.run, cfg.rooms, b.roomUser)
	if err != nil {
		return nil, fmt.Errorf("setup: %w", err)
	}
	cfg.logf("setup took %s", time.Since(start).Round(time.Millisecond))
	return b, nil
}

func (b *bench) roomUser(room int) *webUser { return b.users[room%len(b.users)] }

// roomSize is the number of clients in room r.
func (b *bench) roomSize(r int) int {
	n := b.cfg.conns / b.cfg.rooms
	if r < b.cfg.conns%b.cfg.rooms {
		n++
	}
	return n
}

// socketURL is room r's WebSocket URL; after ≥ 0 asks for a replay of what came after that message id.
func (b *bench) socketURL(client, room int, after int64) string {
	u := *b.cfg.url
	if n := len(b.cfg.alsoURLs); n > 0 && client%(n+1) > 0 {
		u = *b.cfg.alsoURLs[client%(n+1)-1]
	}
	u.Path = "/rooms/" + strconv.FormatInt(b.rooms[room], 10) + "/ws"
	if after >= 0 {
		u.RawQuery = url.Values{"after": {strconv.FormatInt(after, 10)}}.Encode()
	}
	return u.String()
}

// checkFDs fails early when the process may not open enough files for n sockets.
func checkFDs(n int) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return nil
	}
	if lim.Cur < lim.Max { // Go raises the soft limit at start; make sure
		lim.Cur = lim.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	if uint64(n+fdReserve) > lim.Cur {
		return fmt.Errorf("%d sockets need about %d open files, and this process may open %d (ulimit -n); use fewer connections", n, n+fdReserve, lim.Cur)
	}
	return nil
}

// explain adds what to do about a refused or failed socket.
func explain(err error) error {
	var he *httpError
	var ce *CloseError
	switch {
	case errors.As(err, &he) && he.Status == 401:
		return fmt.Errorf("%w (the session was not accepted)", err)
	case errors.As(err, &he) && he.Status == 403:
		return fmt.Errorf("%w (Origin or room access refused)", err)
	case errors.As(err, &ce) && ce.Code == 1008:
		return fmt.Errorf("%w (a per-user connection cap? start the server with -max-user-conns 100000)", err)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return fmt.Errorf("%w (out of local ports: add --source-ips 127.0.0.1,127.0.0.2,…)", err)
	case errors.Is(err, syscall.EMFILE):
		return fmt.Errorf("%w (out of file descriptors: ulimit -n)", err)
	}
	return err
}

// progress prints "what n/total" every few seconds until stop is called.
func progress(cfg config, what string, total int, done *atomic.Int64) (stop func()) {
	quit := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(progressEvery)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				cfg.logf("%s %d/%d", what, done.Load(), total)
			}
		}
	}()
	return func() { close(quit); <-finished }
}
