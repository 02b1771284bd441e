package messaging_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/messaging"
	"github.com/warrenhq/warren/shared/testkit"
)

// handling records how a queue's messages were handled: each order's sequence numbers in
// the order handled, how many handlers ran at once, and any overlap within one order.
type handling struct {
	mu        sync.Mutex
	running   int
	most      int
	busy      map[string]bool // orders with a message being handled
	overlaps  []string
	sequences map[string][]int
	handled   int
	hold      time.Duration
}

func newHandling(hold time.Duration) *handling {
	return &handling{busy: map[string]bool{}, sequences: map[string][]int{}, hold: hold}
}

func (h *handling) handler(msg *message.Message) error {
	order := msg.Metadata.Get(messaging.HeaderCorrelationID)
	h.mu.Lock()
	h.running++
	h.most = max(h.most, h.running)
	if order != "" && h.busy[order] {
		h.overlaps = append(h.overlaps, order)
	}
	h.busy[order] = true
	h.mu.Unlock()

	time.Sleep(h.hold) // a database commit, an SMTP session

	seq, err := strconv.Atoi(string(msg.Payload))
	if err != nil {
		return messaging.Permanent(err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.running--
	h.busy[order] = false
	h.sequences[order] = append(h.sequences[order], seq)
	h.handled++
	return nil
}

func (h *handling) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.handled
}

// sequenced builds orders × perOrder messages, interleaved the way a busy system sends
// them (every order's first event, then every order's second, ...), each carrying its
// sequence number within its order as payload.
func sequenced(orders, perOrder int) []*message.Message {
	var msgs []*message.Message
	for seq := range perOrder {
		for o := range orders {
			msg := message.NewMessage(fmt.Sprintf("m-%d-%d", o, seq), []byte(strconv.Itoa(seq)))
			msg.Metadata.Set(messaging.HeaderType, events.TypeOrderPlaced)
			msg.Metadata.Set(messaging.HeaderCorrelationID, fmt.Sprintf("o-%d", o))
			msgs = append(msgs, msg)
		}
	}
	return msgs
}

func TestConcurrentHandlingKeepsEachOrdersSequence(t *testing.T) {
	const orders, perOrder, concurrency = 12, 5, 6
	e := newEnv(t)
	h := newHandling(15 * time.Millisecond)
	e.run(messaging.RetryConfig{}, messaging.Consumer{Queue: events.QueueAnalytics, Handler: h.handler, Concurrency: concurrency})

	if err := e.broker.Publisher().Publish(messaging.Topic(events.ExchangeOrderEvents, ""), sequenced(orders, perOrder)...); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 30*time.Second, func() string {
		if n := h.count(); n < orders*perOrder {
			return fmt.Sprintf("%d of %d handled", n, orders*perOrder)
		}
		return ""
	})

	h.mu.Lock()
	defer h.mu.Unlock()
	if h.most < 2 || h.most > concurrency {
		t.Errorf("at most %d messages were handled at once, want between 2 and %d", h.most, concurrency)
	}
	if len(h.overlaps) > 0 {
		t.Errorf("two messages of one order were handled at once: %v", h.overlaps)
	}
	for o := range orders {
		order := fmt.Sprintf("o-%d", o)
		want := []int{0, 1, 2, 3, 4}
		if got := h.sequences[order]; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("order %s handled as %v, want %v", order, got, want)
		}
	}
	if h.handled != orders*perOrder {
		t.Errorf("%d messages handled, want %d (each once)", h.handled, orders*perOrder)
	}
	if n := e.depth(messaging.DeadLetterQueueName(events.QueueAnalytics)); n != 0 {
		t.Errorf("%d dead letters, want none", n)
	}
}

// Concurrency 1 handles the queue in its order, also across the switch from the careful
// start (prefetch 1) to the full prefetch, and acks every message: after the consumer
// stops, nothing comes back to the queue.
func TestConcurrencyOneHandlesTheQueueInOrder(t *testing.T) {
	e := newEnv(t)
	h := newHandling(0)
	router, err := e.broker.NewRouter(messaging.RouterConfig{Logger: e.logger},
		messaging.Consumer{Queue: events.QueueAnalytics, Handler: h.handler, Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = router.Run(context.Background()) }()
	t.Cleanup(func() { _ = router.Close(); <-done })
	<-router.Running()

	// One order per message: no correlation id holds any of them back, only Concurrency.
	msgs := sequenced(30, 1)
	for i, msg := range msgs {
		msg.Payload = []byte(strconv.Itoa(i))
		msg.Metadata.Set(messaging.HeaderCorrelationID, "")
	}
	if err := e.broker.Publisher().Publish(messaging.Topic(events.ExchangeOrderEvents, ""), msgs...); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 30*time.Second, func() string {
		if n := h.count(); n < len(msgs) {
			return fmt.Sprintf("%d of %d handled", n, len(msgs))
		}
		return ""
	})
	if err := router.Close(); err != nil {
		t.Fatal(err)
	}
	<-done
	// The closed channel returns whatever it did not ack, a moment later.
	time.Sleep(time.Second)
	if n := e.depth(events.QueueAnalytics); n != 0 {
		t.Errorf("%d messages back in the queue after the consumer stopped: handled but not acked", n)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.most != 1 {
		t.Errorf("%d messages handled at once, want 1", h.most)
	}
	if h.handled != len(msgs) {
		t.Errorf("%d messages handled, want %d (each once)", h.handled, len(msgs))
	}
	for i, seq := range h.sequences[""] {
		if seq != i {
			t.Fatalf("handled in the order %v, want the queue's order", h.sequences[""])
		}
	}
}

// Stopping a service while messages are being handled loses none: what was handed to a
// handler is finished and acked, everything else goes back to the queue.
func TestCloseFinishesHandlersAndRequeuesTheRest(t *testing.T) {
	const total = 40
	e := newEnv(t)
	h := newHandling(100 * time.Millisecond)
	router, err := e.broker.NewRouter(messaging.RouterConfig{Logger: e.logger},
		messaging.Consumer{Queue: events.QueueAnalytics, Handler: h.handler, Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = router.Run(context.Background()) }()
	<-router.Running()

	msgs := sequenced(total, 1)
	if err := e.broker.Publisher().Publish(messaging.Topic(events.ExchangeOrderEvents, ""), msgs...); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 20*time.Second, func() string {
		if h.count() == 0 {
			return "nothing handled yet"
		}
		return ""
	})
	if err := router.Close(); err != nil {
		t.Fatal(err)
	}
	<-done

	handled := h.count()
	if handled == total {
		t.Fatalf("all %d handled before the close: the test proves nothing", total)
	}
	testkit.Eventually(t, 10*time.Second, func() string {
		if n := e.depth(events.QueueAnalytics); handled+n != total {
			return fmt.Sprintf("%d handled + %d back in the queue, want %d", handled, n, total)
		}
		return ""
	})
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.running != 0 {
		t.Errorf("%d handlers still running after Close", h.running)
	}
}
