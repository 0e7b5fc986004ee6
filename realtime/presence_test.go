package realtime_test

import (
	"slices"
	"testing"
	"time"

	"switchboard/realtime"
)

// linger is short so the tests are quick, and long enough that "within linger" is not a race on a busy machine.
const linger = 100 * time.Millisecond

// newPresence returns a Presence whose onChange calls are sent, with the online set read inside the callback (as
// the real callback does), to the returned channel.
func newPresence(t *testing.T) (*realtime.Presence, <-chan []int64) {
	t.Helper()
	changes := make(chan []int64, 16)
	var p *realtime.Presence
	p = realtime.NewPresence(linger, func(room int64) {
		if room != 1 {
			t.Errorf("onChange(%d), want room 1", room)
		}
		changes <- p.Online(room) // calling back in must not deadlock
	})
	t.Cleanup(p.Close)
	return p, changes
}

func expectChange(t *testing.T, changes <-chan []int64, want []int64) {
	t.Helper()
	select {
	case got := <-changes:
		if !slices.Equal(got, want) {
			t.Fatalf("onChange saw online %v, want %v", got, want)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("no onChange, want one with online %v", want)
	}
}

func expectNoChange(t *testing.T, changes <-chan []int64, wait time.Duration) {
	t.Helper()
	select {
	case got := <-changes:
		t.Fatalf("unexpected onChange with online %v", got)
	case <-time.After(wait):
	}
}

func TestPresenceConnectGoesOnline(t *testing.T) {
	p, changes := newPresence(t)
	p.Connect(1, 42)
	expectChange(t, changes, []int64{42})
	p.Connect(1, 7)
	expectChange(t, changes, []int64{7, 42})

	p.Connect(1, 42) // a second tab is not a change
	expectNoChange(t, changes, 20*time.Millisecond)
	if got := p.Online(1); !slices.Equal(got, []int64{7, 42}) {
		t.Fatalf("Online(1) = %v, want [7 42]", got)
	}
	if got := p.Online(2); len(got) != 0 {
		t.Fatalf("Online(2) = %v, want none", got)
	}
}

func TestPresenceReconnectWithinLingerDoesNotFlap(t *testing.T) {
	p, changes := newPresence(t)
	p.Connect(1, 42)
	expectChange(t, changes, []int64{42})

	p.Disconnect(1, 42)
	if got := p.Online(1); !slices.Equal(got, []int64{42}) {
		t.Fatalf("Online(1) while lingering = %v, want [42]", got)
	}
	p.Connect(1, 42)
	expectNoChange(t, changes, 3*linger)
	if got := p.Online(1); !slices.Equal(got, []int64{42}) {
		t.Fatalf("Online(1) after reconnect = %v, want [42]", got)
	}
}

func TestPresenceDisconnectGoesOfflineAfterLinger(t *testing.T) {
	p, changes := newPresence(t)
	p.Connect(1, 42)
	p.Connect(1, 42) // two tabs
	p.Connect(1, 7)
	expectChange(t, changes, []int64{42})
	expectChange(t, changes, []int64{7, 42})

	p.Disconnect(1, 42) // one tab left: still fully online, no timer
	expectNoChange(t, changes, 2*linger)

	start := time.Now()
	p.Disconnect(1, 42)
	expectChange(t, changes, []int64{7})
	if waited := time.Since(start); waited < linger {
		t.Fatalf("went offline after %v, before linger %v", waited, linger)
	}

	p.Disconnect(1, 42) // unbalanced: ignored
	p.Disconnect(1, 7)
	expectChange(t, changes, []int64{})
}

func TestPresenceCloseStopsTimers(t *testing.T) {
	p, changes := newPresence(t)
	p.Connect(1, 42)
	expectChange(t, changes, []int64{42})
	p.Disconnect(1, 42)
	p.Close()
	expectNoChange(t, changes, 3*linger)
}
