package realtime_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"switchboard/realtime"
)

// waitTimeout bounds every wait in these tests, so a bug fails a test instead of hanging it.
const waitTimeout = 5 * time.Second

// newHub returns a hub over a MemoryBroker whose Run loop lives as long as the test; the cleanup checks that Run
// returns nil once its context is cancelled.
func newHub(t testing.TB) *realtime.Hub {
	t.Helper()
	h := realtime.NewHub(realtime.NewMemoryBroker(), slog.New(slog.NewTextHandler(t.Output(), nil)))
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- h.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("Run returned %v after cancel, want nil", err)
			}
		case <-time.After(waitTimeout):
			t.Error("Run did not return after cancel")
		}
	})
	return h
}

func publish(t testing.TB, h *realtime.Hub, m *realtime.Message) {
	t.Helper()
	if err := h.Publish(context.Background(), m); err != nil {
		t.Fatalf("Publish(%q): %v", m.Topic, err)
	}
}

// recv returns the next message of s, failing the test if s is closed first or nothing comes in time.
func recv(t testing.TB, s *realtime.Subscriber) *realtime.Message {
	t.Helper()
	select {
	case m := <-s.C():
		return m
	case <-s.Done():
		t.Fatalf("subscriber closed with %d while waiting for a message", s.CloseCode())
	case <-time.After(waitTimeout):
		t.Fatal("no message in time")
	}
	return nil
}

// waitClosed waits for s to close and returns its code.
func waitClosed(t testing.TB, s *realtime.Subscriber) int {
	t.Helper()
	select {
	case <-s.Done():
		return s.CloseCode()
	case <-time.After(waitTimeout):
		t.Fatal("subscriber not closed in time")
	}
	return 0
}

func assertOpen(t testing.TB, s *realtime.Subscriber) {
	t.Helper()
	select {
	case <-s.Done():
		t.Fatalf("subscriber closed with %d, want open", s.CloseCode())
	default:
	}
}

func TestFanOutToTopicOnly(t *testing.T) {
	h := newHub(t)
	const n, msgs = 50, 100
	var room1, room2 []*realtime.Subscriber
	for range n {
		room1 = append(room1, h.Subscribe(msgs, "room:1"))
	}
	for range 5 {
		room2 = append(room2, h.Subscribe(msgs, "room:2"))
	}
	if got := h.Subscribers("room:1"); got != n {
		t.Fatalf("Subscribers(room:1) = %d, want %d", got, n)
	}
	if got := h.Topics(); got != 2 {
		t.Fatalf("Topics() = %d, want 2", got)
	}

	sent := make([]*realtime.Message, msgs)
	for i := range sent {
		sent[i] = &realtime.Message{Topic: "room:1", ID: int64(i + 1), Data: fmt.Appendf(nil, "<p>%d</p>", i+1)}
		publish(t, h, sent[i])
	}

	for j, s := range room1 {
		for i, want := range sent {
			if got := recv(t, s); got != want {
				t.Fatalf("subscriber %d message %d: got ID %d, want the published message (ID %d)", j, i, got.ID, want.ID)
			}
		}
		if extra := len(s.C()); extra != 0 {
			t.Fatalf("subscriber %d has %d extra messages", j, extra)
		}
		assertOpen(t, s)
	}
	for j, s := range room2 {
		if got := len(s.C()); got != 0 {
			t.Fatalf("room:2 subscriber %d got %d room:1 messages", j, got)
		}
	}
}

func TestOrderPreservedPerSubscriber(t *testing.T) {
	h := newHub(t)
	const msgs = 10_000
	s := h.Subscribe(64, "room:1", "user:1")

	// The reader runs concurrently, as a connection's writer would.
	errc := make(chan error, 1)
	go func() {
		next := map[string]int64{"room:1": 1, "user:1": 1}
		for range 2 * msgs {
			select {
			case m := <-s.C():
				if m.ID != next[m.Topic] {
					errc <- fmt.Errorf("%s: got ID %d, want %d", m.Topic, m.ID, next[m.Topic])
					return
				}
				next[m.Topic]++
			case <-s.Done():
				errc <- fmt.Errorf("closed with %d", s.CloseCode())
				return
			}
		}
		errc <- nil
	}()

	for i := range int64(msgs) {
		// Pace the publisher so the queue never fills: this test is about order, not about dropping.
		for len(s.C()) > cap(s.C())/2 {
			runtime.Gosched()
		}
		publish(t, h, &realtime.Message{Topic: "room:1", ID: i + 1})
		publish(t, h, &realtime.Message{Topic: "user:1", ID: i + 1})
	}
	select {
	case err := <-errc:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("reader did not finish")
	}
}

func TestSlowSubscriberIsDroppedOthersGetEverything(t *testing.T) {
	h := newHub(t)
	const msgs, slowQueue, fastQueue = 10_000, 16, 256
	slow := h.Subscribe(slowQueue, "room:1") // never reads
	fast := h.Subscribe(fastQueue, "room:1")

	errc := make(chan error, 1)
	go func() {
		for want := int64(1); want <= msgs; want++ {
			select {
			case m := <-fast.C():
				if m.ID != want {
					errc <- fmt.Errorf("fast subscriber got ID %d, want %d", m.ID, want)
					return
				}
			case <-fast.Done():
				errc <- fmt.Errorf("fast subscriber closed with %d after %d messages", fast.CloseCode(), want-1)
				return
			}
		}
		errc <- nil
	}()

	for i := range int64(msgs) {
		for len(fast.C()) > fastQueue/2 { // the fast reader keeps up; only the slow one falls behind
			runtime.Gosched()
		}
		publish(t, h, &realtime.Message{Topic: "room:1", ID: i + 1})
		if i == slowQueue-1 {
			assertOpen(t, slow) // a full queue is fine ...
		}
		if i == slowQueue {
			if code := waitClosed(t, slow); code != realtime.CloseTryAgainLater { // ... one more is not
				t.Fatalf("slow subscriber closed with %d, want %d", code, realtime.CloseTryAgainLater)
			}
		}
	}
	select {
	case err := <-errc:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("fast reader did not finish")
	}

	// The slow subscriber keeps what was queued before it was dropped: the first slowQueue messages, in order.
	if got := len(slow.C()); got != slowQueue {
		t.Fatalf("slow subscriber has %d queued, want %d", got, slowQueue)
	}
	for want := int64(1); want <= slowQueue; want++ {
		if m := <-slow.C(); m.ID != want {
			t.Fatalf("slow subscriber queued ID %d, want %d", m.ID, want)
		}
	}
	if slow.Offer(&realtime.Message{Topic: "room:1"}) {
		t.Fatal("Offer on a dropped subscriber returned true")
	}
}

func TestControlMessageClosesTopicSubscribers(t *testing.T) {
	h := newHub(t)
	a := h.Subscribe(4, "user:1")
	b := h.Subscribe(4, "room:1", "user:1") // the same user's room socket
	other := h.Subscribe(4, "user:2", "room:1")

	publish(t, h, &realtime.Message{Topic: "user:1", Close: realtime.ClosePolicyViolation})

	for _, s := range []*realtime.Subscriber{a, b} {
		if code := waitClosed(t, s); code != realtime.ClosePolicyViolation {
			t.Fatalf("closed with %d, want %d", code, realtime.ClosePolicyViolation)
		}
		if got := len(s.C()); got != 0 {
			t.Fatalf("control message was queued (%d messages)", got)
		}
	}
	assertOpen(t, other)
	publish(t, h, &realtime.Message{Topic: "room:1", ID: 7})
	if m := recv(t, other); m.ID != 7 {
		t.Fatalf("other subscriber got ID %d, want 7", m.ID)
	}
}

func TestUnsubscribeRemovesFromEveryTopic(t *testing.T) {
	h := newHub(t)
	s := h.Subscribe(4, "room:1", "user:1")
	h.AddTopics(s, "room:2", "room:1") // room:1 again is a no-op
	keep := h.Subscribe(4, "room:1")
	if got := h.Subscribers("room:1"); got != 2 {
		t.Fatalf("Subscribers(room:1) = %d, want 2 (AddTopics must not register twice)", got)
	}
	publish(t, h, &realtime.Message{Topic: "room:1", ID: 1})
	if got := len(s.C()); got != 1 {
		t.Fatalf("subscriber got %d copies of one message, want 1", got)
	}

	h.Unsubscribe(s)
	h.Unsubscribe(s) // idempotent
	for topic, want := range map[string]int{"room:1": 1, "room:2": 0, "user:1": 0} {
		if got := h.Subscribers(topic); got != want {
			t.Errorf("Subscribers(%s) = %d, want %d", topic, got, want)
		}
	}
	if got := h.Topics(); got != 1 {
		t.Errorf("Topics() = %d, want 1", got)
	}
	assertOpen(t, s) // Unsubscribe does not close
	publish(t, h, &realtime.Message{Topic: "room:2", ID: 2})
	if got := len(s.C()); got != 1 {
		t.Fatalf("unsubscribed subscriber received a message (queue %d, want 1)", got)
	}

	h.Unsubscribe(keep)
	if got := h.Topics(); got != 0 {
		t.Fatalf("Topics() = %d after everyone left, want 0", got)
	}
}

func TestSubscribeUnsubscribeChurnDoesNotLeak(t *testing.T) {
	h := newHub(t)
	for i := range 10_000 {
		s := h.Subscribe(1, fmt.Sprintf("room:%d", i%100), fmt.Sprintf("user:%d", i))
		h.AddTopics(s, "ticker")
		if i%3 == 0 {
			s.Close(realtime.CloseNormalClosure) // closing first must not matter
		}
		h.Unsubscribe(s)
	}
	if got := h.Topics(); got != 0 {
		t.Fatalf("Topics() = %d after 10k subscribe/unsubscribe cycles, want 0", got)
	}
}

func TestCloseAll(t *testing.T) {
	h := newHub(t)
	subs := []*realtime.Subscriber{
		h.Subscribe(4, "room:1"),
		h.Subscribe(4, "room:1", "user:1"),
		h.Subscribe(4), // no topic yet
	}
	h.CloseAll(realtime.CloseServiceRestart)
	for i, s := range subs {
		if code := waitClosed(t, s); code != realtime.CloseServiceRestart {
			t.Fatalf("subscriber %d closed with %d, want %d", i, code, realtime.CloseServiceRestart)
		}
	}

	late := h.Subscribe(4, "room:1")
	if code := waitClosed(t, late); code != realtime.CloseServiceRestart {
		t.Fatalf("subscriber after CloseAll closed with %d, want %d", code, realtime.CloseServiceRestart)
	}
	if late.Offer(&realtime.Message{Topic: "room:1"}) {
		t.Fatal("Offer on a born-closed subscriber returned true")
	}
	h.AddTopics(late, "room:9")
	if got := h.Subscribers("room:9"); got != 0 {
		t.Fatalf("AddTopics after CloseAll registered a subscriber")
	}

	for _, s := range subs {
		h.Unsubscribe(s)
	}
	h.Unsubscribe(late)
	if got := h.Topics(); got != 0 {
		t.Fatalf("Topics() = %d, want 0", got)
	}
}

func TestPublishBeforeRunIsDelivered(t *testing.T) {
	h := realtime.NewHub(realtime.NewMemoryBroker(), nil) // Run never started
	s := h.Subscribe(1, "room:1")
	publish(t, h, &realtime.Message{Topic: "room:1", ID: 1})
	if m := recv(t, s); m.ID != 1 {
		t.Fatalf("got ID %d, want 1", m.ID)
	}
}

func TestPublishRejectsMessageWithoutTopic(t *testing.T) {
	h := newHub(t)
	if err := h.Publish(context.Background(), &realtime.Message{Data: []byte("x")}); err == nil {
		t.Fatal("Publish without a topic succeeded")
	}
	if err := h.Publish(context.Background(), nil); err == nil {
		t.Fatal("Publish(nil) succeeded")
	}
}

func TestSubscriberOfferAndClose(t *testing.T) {
	h := newHub(t)
	s := h.Subscribe(2)
	m := &realtime.Message{Topic: "x"}
	if !s.Offer(m) || !s.Offer(m) {
		t.Fatal("Offer into a queue with room returned false")
	}
	assertOpen(t, s)
	if s.Offer(m) {
		t.Fatal("Offer into a full queue returned true")
	}
	if code := waitClosed(t, s); code != realtime.CloseTryAgainLater {
		t.Fatalf("closed with %d, want %d", code, realtime.CloseTryAgainLater)
	}
	s.Close(realtime.ClosePolicyViolation) // the first code wins
	if code := s.CloseCode(); code != realtime.CloseTryAgainLater {
		t.Fatalf("second Close changed the code to %d", code)
	}

	z := h.Subscribe(0) // clamped to a queue of 1
	if !z.Offer(m) {
		t.Fatal("Offer into a queue of size 0 (clamped to 1) returned false")
	}
	z.Close(0)
	if code := z.CloseCode(); code != realtime.CloseNormalClosure {
		t.Fatalf("Close(0) recorded %d, want %d", code, realtime.CloseNormalClosure)
	}
}

func TestMemoryBrokerRunDelivers(t *testing.T) {
	b := realtime.NewMemoryBroker()
	got := make(chan *realtime.Message, 1)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- b.Run(ctx, func(m *realtime.Message) { got <- m }) }()

	m := &realtime.Message{Topic: "t"}
	deadline := time.After(waitTimeout)
	for delivered := false; !delivered; { // Run attaches asynchronously; publish until it has
		if err := b.Publish(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		select {
		case g := <-got:
			if g != m {
				t.Fatal("delivered a different message")
			}
			delivered = true
		case <-time.After(time.Millisecond):
		case <-deadline:
			t.Fatal("Run never delivered")
		}
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("Run returned %v, want nil", err)
	}
}

func TestConcurrentPublishSubscribeUnsubscribe(t *testing.T) {
	h := newHub(t)
	topics := []string{"room:1", "room:2", "room:3", "user:1"}
	stop := make(chan struct{})
	var wg sync.WaitGroup

	for p := range 4 {
		wg.Go(func() {
			for i := int64(0); ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				m := &realtime.Message{Topic: topics[int(i)%len(topics)], ID: i}
				if i%500 == 0 {
					m = &realtime.Message{Topic: topics[p], Close: realtime.ClosePolicyViolation}
				}
				if err := h.Publish(context.Background(), m); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for c := range 8 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(c), 1))
			for range 500 {
				s := h.Subscribe(8, topics[r.IntN(len(topics))])
				h.AddTopics(s, topics[r.IntN(len(topics))])
				_ = h.Subscribers(topics[0])
				_ = h.Topics()
				for range r.IntN(20) { // a writer draining, sometimes too slowly
					select {
					case <-s.C():
					case <-s.Done():
					case <-time.After(waitTimeout): // publishers stop only after CloseAll, which must close s
						t.Error("subscriber neither received nor was closed")
						return
					}
				}
				if r.IntN(2) == 0 {
					s.Close(realtime.CloseNormalClosure)
				}
				h.Unsubscribe(s)
			}
		})
	}
	time.Sleep(50 * time.Millisecond)
	h.CloseAll(realtime.CloseServiceRestart)
	close(stop)
	wg.Wait()
	if got := h.Topics(); got != 0 {
		t.Fatalf("Topics() = %d after every subscriber left, want 0", got)
	}
}

func TestDeliveryDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	h := newHub(t)
	subs := make([]*realtime.Subscriber, 100)
	for i := range subs {
		subs[i] = h.Subscribe(1, "room:1")
	}
	m := &realtime.Message{Topic: "room:1", ID: 1, Data: []byte("<p>hi</p>")}
	ctx := context.Background()
	allocs := testing.AllocsPerRun(100, func() {
		_ = h.Publish(ctx, m)
		for _, s := range subs {
			<-s.C()
		}
	})
	if allocs != 0 {
		t.Fatalf("a publish to 100 subscribers allocated %.1f times, want 0", allocs)
	}
}

// BenchmarkHubFanout publishes to one topic with 1, 100 and 1000 subscribers and reports the cost per delivery
// (one message into one subscriber's queue). Queues are drained in batches with the timer stopped, so the figure
// is the hub's own cost, free of scheduler noise, and no subscriber is ever dropped.
func BenchmarkHubFanout(b *testing.B) {
	const queueSize = 256
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			h := realtime.NewHub(realtime.NewMemoryBroker(), nil)
			subs := make([]*realtime.Subscriber, n)
			for i := range subs {
				subs[i] = h.Subscribe(queueSize, "room:1")
			}
			m := &realtime.Message{Topic: "room:1", ID: 1, Data: make([]byte, 300)}
			ctx := context.Background()

			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			published := 0
			for b.Loop() {
				if err := h.Publish(ctx, m); err != nil {
					b.Fatal(err)
				}
				if published++; published%queueSize == 0 {
					b.StopTimer()
					for _, s := range subs {
						for len(s.C()) > 0 {
							<-s.C()
						}
					}
					b.StartTimer()
				}
			}
			runtime.ReadMemStats(&after)

			for _, s := range subs {
				select {
				case <-s.Done():
					b.Fatalf("a subscriber was dropped (code %d): results are invalid", s.CloseCode())
				default:
				}
			}
			deliveries := float64(b.N) * float64(n)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/deliveries, "ns/delivery")
			b.ReportMetric(float64(after.Mallocs-before.Mallocs)/deliveries, "allocs/delivery")
		})
	}
}
