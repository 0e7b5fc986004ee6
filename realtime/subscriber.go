package realtime

import "sync/atomic"

// WebSocket close codes (RFC 6455 §7.4.1 and the IANA registry) that the realtime package and its users send.
const (
	CloseNormalClosure   = 1000 // a plain close; also what Close(0) records
	ClosePolicyViolation = 1008 // e.g. the session logged out
	CloseMessageTooBig   = 1009 // the client sent an oversize message
	CloseServiceRestart  = 1012 // the server is shutting down; htmx reconnects
	CloseTryAgainLater   = 1013 // the client was too slow to keep up; htmx reconnects
)

// Subscriber is one connection's bounded queue of messages plus its closed state. Exactly one goroutine (the
// connection's writer) reads C; any goroutine may Offer and Close.
type Subscriber struct {
	queue chan *Message
	done  chan struct{}
	code  atomic.Int64 // the close code; 0 while open. Set once, before done is closed.

	onClose atomic.Pointer[func(code int)] // called once, before done is closed (OnClose)

	topics []string // the topics it is registered under; guarded by the owning Hub's mu
}

func newSubscriber(queueSize int) *Subscriber {
	return &Subscriber{
		queue: make(chan *Message, max(queueSize, 1)),
		done:  make(chan struct{}),
	}
}

// C returns the bounded queue. It is never closed: select on Done too.
func (s *Subscriber) C() <-chan *Message { return s.queue }

// Done returns a channel that is closed once the subscriber is closed.
func (s *Subscriber) Done() <-chan struct{} { return s.done }

// CloseCode returns the code the subscriber was closed with; it is valid after Done is closed (0 before).
func (s *Subscriber) CloseCode() int { return int(s.code.Load()) }

// Offer enqueues m without blocking and reports whether it was queued. If the queue is full the subscriber is
// closed with CloseTryAgainLater; after close it returns false.
func (s *Subscriber) Offer(m *Message) bool {
	queued, _ := s.offer(m)
	return queued
}

// offer is Offer that also reports whether this call closed the subscriber for being full. It never blocks, which
// is what lets the Hub call it while holding its read lock.
func (s *Subscriber) offer(m *Message) (queued, dropped bool) {
	select {
	case <-s.done:
		return false, false
	default:
	}
	select {
	case s.queue <- m:
		return true, false
	default:
		return false, s.close(CloseTryAgainLater)
	}
}

// Close closes the subscriber with code (0 is recorded as CloseNormalClosure). It is idempotent: the first code
// wins. It does not unsubscribe it from the Hub.
func (s *Subscriber) Close(code int) { s.close(code) }

// close reports whether this call closed s. The compare-and-swap makes the first code win and ensures done is
// closed exactly once, after the code is visible.
func (s *Subscriber) close(code int) bool {
	if code == 0 {
		code = CloseNormalClosure
	}
	if !s.code.CompareAndSwap(0, int64(code)) {
		return false
	}
	if fn := s.onClose.Load(); fn != nil {
		(*fn)(code)
	}
	close(s.done)
	return true
}

// OnClose makes fn run when s is closed, before Done is closed. It runs on the closing goroutine, possibly under
// the Hub's lock, so it must not block: a connection uses it to cut short a write stuck on a peer that stopped
// reading.
func (s *Subscriber) OnClose(fn func(code int)) { s.onClose.Store(&fn) }
