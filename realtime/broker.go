package realtime

import (
	"context"
	"sync"
)

// Message is one event on a topic. It is shared by every subscriber that receives it, so it is never modified
// after Publish.
type Message struct {
	Topic string
	ID    int64  // the chat message id for room messages (lets a connection skip what it already replayed); 0 otherwise
	Data  []byte // bytes to write to the client as is (an HTML fragment)
	Close int    // when non-zero this is a control message: every subscriber of Topic is closed with this code (e.g. 1008 on logout) instead of receiving Data

	frameOnce sync.Once // builds frame on first use (TextFrame)
	frame     []byte
}

// Broker carries messages between processes; the memory broker loops them back in-process (Redis comes later).
type Broker interface {
	// Publish hands m to every process's Run loop, this one included.
	Publish(ctx context.Context, m *Message) error
	// Run delivers every published message until ctx is done; it returns nil on ctx done.
	Run(ctx context.Context, deliver func(*Message)) error
}
