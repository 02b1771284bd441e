package messaging

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	amqp "github.com/rabbitmq/amqp091-go"
)

// subscriber is Warren's message.Subscriber: it consumes one queue and hands its messages
// to the router's handler several at a time.
//
// It replaces watermill-amqp's subscriber, which hands out the next delivery only after the
// previous one was acked: one message in flight per subscription, whatever the prefetch,
// so every handler's latency (a database commit, an SMTP session) went straight into the
// queue's throughput. Here up to concurrency messages are handled at once, with two rules
// that keep what the services rely on:
//
//   - messages with the same correlation id (one order's events) are handled one after
//     another, in the order the queue delivered them; only different orders overlap;
//   - a message is acked only after its handler succeeded (the router acks it then), and
//     nacked with requeue when it was not handled (shutdown); acks of messages finished
//     together share one frame (see acker);
//   - while the consumer is paused (a handler holds a message because a dependency is
//     down, see pause) no further message is handed out: they wait, unacked, in the
//     prefetch window instead of failing one after another.
//
// Concurrency 1 handles the queue strictly in order, as watermill-amqp did.
//
// Every consumer starts careful: after a start or a reconnect it takes one message at a
// time (prefetch 1) until it has handled one that was never delivered before, and only
// then its full prefetch (handover keeps the queue's order across the switch). A consumer
// that crashed on a message gets that message back first (a quorum queue returns what a
// consumer held to the head of the queue), and each crash counts one delivery against
// every message the consumer held (x-delivery-limit). Taken alone, the poison reaches the
// limit and is dead-lettered by the broker alone, instead of with every healthy message
// prefetched beside it.
type subscriber struct {
	conn        *connection
	topology    Topology
	prefetch    int
	concurrency int
	paused      *pause
	logger      *slog.Logger

	closing   chan struct{}
	closeOnce sync.Once
	running   sync.WaitGroup // one per Subscribe, until its output is closed
}

func newSubscriber(conn *connection, topology Topology, prefetch, concurrency int, paused *pause, logger *slog.Logger) *subscriber {
	return &subscriber{
		conn:        conn,
		topology:    topology,
		prefetch:    max(prefetch, concurrency),
		concurrency: concurrency,
		paused:      paused,
		logger:      logger,
		closing:     make(chan struct{}),
	}
}

// Subscribe declares queue (from the topology) and consumes it until ctx ends or Close is
// called, consuming again after every reconnect. The returned channel is closed once every
// message it handed out was acked or nacked.
func (s *subscriber) Subscribe(ctx context.Context, queue string) (<-chan *message.Message, error) {
	select {
	case <-s.closing:
		return nil, errors.New("subscribe: subscriber closed")
	default:
	}
	// The first consumer starts here, so that what no retry mends (a queue missing from the
	// topology, a user not allowed to read it) fails Subscribe instead of being logged
	// forever in the background.
	ch, deliveries, err := s.open(queue)
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", queue, err)
	}
	out := make(chan *message.Message)
	s.running.Add(1)
	go func() {
		defer s.running.Done()
		var handlers sync.WaitGroup // messages handed out and not yet acked or nacked
		defer func() {
			handlers.Wait()
			close(out)
		}()
		for wait := 100 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
			if ch != nil {
				if s.consume(ctx, queue, ch, deliveries, out, &handlers) {
					wait = 100 * time.Millisecond
				}
			}
			select {
			case <-s.closing:
				return
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			select {
			case <-s.conn.Connected():
			case <-s.closing:
				return
			case <-ctx.Done():
				return
			}
			if ch, deliveries, err = s.open(queue); err != nil {
				s.logger.WarnContext(ctx, "cannot consume; trying again", "queue", queue, "error", err, "retry_in", wait.String())
			}
		}
	}()
	return out, nil
}

// open starts a consumer of queue on a fresh channel. The queue is declared every time: a
// broker restarted without its definitions, or a node that lost the queue, gets it back
// before the consumer starts.
func (s *subscriber) open(queue string) (*amqp.Channel, <-chan amqp.Delivery, error) {
	conn := s.conn.Connection()
	if conn == nil || !s.conn.IsConnected() {
		return nil, nil, ErrNotConnected
	}
	ch, err := conn.Channel()
	if err != nil {
		return nil, nil, fmt.Errorf("open channel: %w", err)
	}
	deliveries, err := s.start(ch, queue)
	if err != nil {
		_ = ch.Close()
		return nil, nil, err
	}
	return ch, deliveries, nil
}

func (s *subscriber) start(ch *amqp.Channel, queue string) (<-chan amqp.Delivery, error) {
	if err := s.topology.DeclareQueue(ch, queue); err != nil {
		return nil, err
	}
	return consumeWithPrefetch(ch, queue, carefulTag(queue), 1)
}

// consumeWithPrefetch starts a consumer of queue on ch that the broker sends at most
// prefetch unacked deliveries. A prefetch applies to the consumers started after it is
// set (basic.qos with global false), so changing it means a new consumer.
func consumeWithPrefetch(ch *amqp.Channel, queue, tag string, prefetch int) (<-chan amqp.Delivery, error) {
	if err := ch.Qos(prefetch, 0, false); err != nil {
		return nil, fmt.Errorf("set prefetch: %w", err)
	}
	deliveries, err := ch.Consume(queue, tag, false, false, false, false, nil)
	if err != nil {
		return nil, fmt.Errorf("consume: %w", err)
	}
	return deliveries, nil
}

// handover replaces ch's careful consumer of queue by one with the full prefetch. Call it
// while the careful consumer holds its one message unacked: cancelled with no prefetch
// left, it has no delivery on its way. Cancelled after that ack instead, it may already be
// sent the next message, which the broker then returns to the queue (a quorum queue's
// client returns deliveries for a consumer tag it has cancelled) while the full consumer
// takes everything behind it: that message would come last. The held message can still
// be acked on ch after the cancel.
func handover(ch *amqp.Channel, queue string, prefetch int) (<-chan amqp.Delivery, error) {
	if err := ch.Cancel(carefulTag(queue), false); err != nil {
		return nil, fmt.Errorf("cancel the careful consumer: %w", err)
	}
	return consumeWithPrefetch(ch, queue, "", prefetch)
}

// carefulTag names a channel's careful consumer (see subscriber), so that it can be
// cancelled before the full one starts; a consumer tag must be unique on its channel only.
func carefulTag(queue string) string { return queue + ".careful" }

// consume hands ch's deliveries out until the channel closes (the connection dropped, the
// broker closed it) or the subscription ends. It returns once it stops reading deliveries;
// messages still being handled finish in the background (handlers counts them) and their
// acks go to the channel they came from: after a reconnect that channel is gone and the
// broker has already requeued them. It reports whether deliveries flowed.
func (s *subscriber) consume(ctx context.Context, queue string, ch *amqp.Channel, deliveries <-chan amqp.Delivery,
	out chan<- *message.Message, handlers *sync.WaitGroup) (consumed bool) {
	c := &consumption{
		sub: s,
		acker: newAcker(ch, s.prefetch, func(err error) {
			s.logger.DebugContext(ctx, "ack or nack not sent; the broker redelivers what it did not get",
				"queue", queue, "error", err)
		}),
		ctx:     ctx,
		out:     out,
		slots:   make(chan struct{}, s.concurrency),
		stopped: make(chan struct{}),
		waiting: map[string][]amqp.Delivery{},
		fresh:   make(chan uint64, 1), // careful is cleared by the one message sent
	}
	c.careful.Store(true)
	var cancelled <-chan amqp.Delivery // the careful consumer's last deliveries, once it is cancelled
	go c.acker.run()
	var mine sync.WaitGroup // this channel's handlers, so that it is closed after their acks
	defer func() {
		close(c.stopped)
		handlers.Add(1) // Subscribe's output closes only after the channel did
		go func() {
			defer handlers.Done()
			mine.Wait()
			select {
			case tag := <-c.fresh: // handled while consume stopped: ack it all the same
				c.acker.settle(tag, true)
			default:
			}
			c.acker.close()
			_ = ch.Close() // returns every delivery not acked to the queue
		}()
	}()
	for {
		// What the careful consumer was sent before it was cancelled comes first: it was
		// ahead of the full consumer's deliveries in the queue.
		next := deliveries
		if cancelled != nil {
			next = cancelled
		}
		var d amqp.Delivery
		select {
		case tag := <-c.fresh:
			// A message never delivered before was handled: nothing returned by a crash is
			// ahead of it any more. The full consumer replaces the careful one.
			full, err := handover(ch, queue, s.prefetch)
			c.acker.settle(tag, true) // only now: see handover
			if err != nil {
				s.logger.WarnContext(ctx, "cannot take the full prefetch; consuming again", "queue", queue, "error", err)
				return consumed
			}
			cancelled, deliveries = deliveries, full
			continue
		case nd, ok := <-next:
			switch {
			case ok:
				d = nd
			case cancelled != nil: // the careful consumer's last delivery is out
				cancelled = nil
				continue
			default:
				s.logger.WarnContext(ctx, "channel closed; consuming again", "queue", queue)
				return consumed
			}
		case <-s.closing:
			return consumed
		case <-ctx.Done():
			return consumed
		}
		consumed = true
		if !c.acquire() {
			c.acker.settle(d.DeliveryTag, false)
			return consumed
		}
		if !c.admit(d) {
			c.release() // queued behind its order's running message, which takes it on
			continue
		}
		mine.Add(1)
		handlers.Add(1)
		go func() {
			defer handlers.Done()
			defer mine.Done()
			c.run(d)
		}()
	}
}

// consumption is one consumer on one channel: its handler slots and the messages waiting
// for an earlier message of their order to finish.
type consumption struct {
	sub     *subscriber
	ctx     context.Context
	acker   *acker
	out     chan<- *message.Message
	slots   chan struct{}
	stopped chan struct{} // closed when this consumer stops reading: hand out nothing more

	mu      sync.Mutex
	waiting map[string][]amqp.Delivery // by correlation id: present while one is running

	// careful is true while this consumer takes one message at a time (see subscriber).
	// fresh hands consume the delivery tag of the first message never delivered before
	// that was handled: consume switches to the full consumer and then acks it.
	careful atomic.Bool
	fresh   chan uint64
}

// acquire waits for a free handler slot; false when the consumer stops first.
func (c *consumption) acquire() bool {
	select {
	case c.slots <- struct{}{}:
		return true
	case <-c.sub.closing:
		return false
	case <-c.ctx.Done():
		return false
	}
}

func (c *consumption) release() { <-c.slots }

// admit reports whether d may be handled now, or queues it behind the running message of
// its order. Messages without a correlation id are never held back.
func (c *consumption) admit(d amqp.Delivery) bool {
	key := d.CorrelationId
	if key == "" {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if queued, running := c.waiting[key]; running {
		c.waiting[key] = append(queued, d)
		return false
	}
	c.waiting[key] = nil
	return true
}

// next returns the message queued behind d's order, if any, and otherwise marks the order
// as not running.
func (c *consumption) next(d amqp.Delivery) (amqp.Delivery, bool) {
	key := d.CorrelationId
	if key == "" {
		return amqp.Delivery{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	queued := c.waiting[key]
	if len(queued) == 0 {
		delete(c.waiting, key)
		return amqp.Delivery{}, false
	}
	c.waiting[key] = queued[1:]
	return queued[0], true
}

// run handles d and then, in the same slot, every message of its order queued meanwhile.
func (c *consumption) run(d amqp.Delivery) {
	defer c.release()
	for {
		c.handle(d)
		var more bool
		if d, more = c.next(d); !more {
			return
		}
	}
}

// handle hands d to the router and acks or nacks it as the handler ends, or requeues it
// without handling when the consumer has stopped.
func (c *consumption) handle(d amqp.Delivery) {
	msg, _ := Marshaler{}.Unmarshal(d) // never fails: see Marshaler
	ctx, cancel := context.WithCancel(c.ctx)
	defer cancel()
	msg.SetContext(ctx)
	select {
	case <-c.stopped:
		c.acker.settle(d.DeliveryTag, false)
		return
	default:
	}
	if !c.sub.paused.wait(c.stopped) {
		c.acker.settle(d.DeliveryTag, false)
		return
	}
	select {
	case c.out <- msg:
	case <-c.stopped:
		c.acker.settle(d.DeliveryTag, false)
		return
	}
	select {
	case <-msg.Acked():
		if !d.Redelivered && c.careful.CompareAndSwap(true, false) {
			c.fresh <- d.DeliveryTag // consume acks it after the handover; never blocks (one send)
			return
		}
		c.acker.settle(d.DeliveryTag, true)
	case <-msg.Nacked():
		c.acker.settle(d.DeliveryTag, false)
	}
}

// Close stops consuming and returns once every message handed out was acked or nacked.
func (s *subscriber) Close() error {
	s.closeOnce.Do(func() { close(s.closing) })
	s.running.Wait()
	return nil
}

var _ message.Subscriber = (*subscriber)(nil)
