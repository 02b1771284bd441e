package messaging

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"
	amqp "github.com/rabbitmq/amqp091-go"
)

// ErrNotConfirmed is returned by Publish when the broker refused (nacked) a message, for
// example because a dead-letter queue it routes to is full (x-overflow: reject-publish).
var ErrNotConfirmed = errors.New("broker did not confirm the message")

// publisher is Warren's message.Publisher: persistent messages, publisher confirms, and a
// pool of confirm-mode channels.
//
// It replaces watermill-amqp's publisher, which waits for each message's confirm before
// publishing the next on its channel: one message in flight per channel, about 0.16x of
// what the broker takes. Here a Publish call sends all its messages first and then waits
// for their confirms (pipelining), and concurrent calls use different channels. Publish
// still returns only when every message is confirmed, so callers keep the guarantee.
type publisher struct {
	// user is the broker user the connection logs in as, set as every message's user-id
	// property: RabbitMQ refuses a publish whose user-id is not the connection's user, so
	// the property tells every later reader (warrenctl dlq replay, above all) who published
	// the message, with the broker's word for it. It survives the broker's own
	// dead-lettering.
	user     string
	conn     *connection
	flow     *flowControl
	topology Topology
	// idle holds open channels not in use; slots bounds how many exist at once.
	idle  chan *amqp.Channel
	slots chan struct{}

	mu       sync.RWMutex
	declared map[string]bool // exchanges declared by this publisher
	closed   bool
}

func newPublisher(user string, conn *connection, flow *flowControl, topology Topology, channels int) *publisher {
	return &publisher{
		user:     user,
		conn:     conn,
		flow:     flow,
		topology: topology,
		idle:     make(chan *amqp.Channel, channels),
		slots:    make(chan struct{}, channels),
		declared: map[string]bool{},
	}
}

// Publish publishes msgs to topic ("exchange:routing-key") and returns once the broker has
// confirmed all of them. It fails at once while the connection is down, and with ErrBlocked
// while the broker blocks it: nothing is buffered, so the caller (the outbox relay, a
// dead-letter) keeps the message and retries. The messages' contexts bound the wait for
// confirms, also for a call in flight when a block begins (see confirmed); one whose
// frames fill the socket buffers just as the broker stops reading can still wait for the
// broker, since amqp091 has no deadline for writes.
func (p *publisher) Publish(topic string, msgs ...*message.Message) (err error) {
	if len(msgs) == 0 {
		return nil
	}
	exchange, key := SplitTopic(topic)
	if err := p.flow.err(); err != nil {
		return fmt.Errorf("publish to %s: %w", displayExchange(exchange), err)
	}
	ch, err := p.acquire()
	if err != nil {
		return fmt.Errorf("publish to %s: %w", displayExchange(exchange), err)
	}
	defer func() { p.release(ch, err != nil) }()
	if err := p.declare(ch, exchange); err != nil {
		return fmt.Errorf("publish to %s: %w", displayExchange(exchange), err)
	}
	confirms := make([]*amqp.DeferredConfirmation, len(msgs))
	for i, msg := range msgs {
		if err := p.flow.err(); err != nil {
			return fmt.Errorf("publish %s to %s: %w", msg.UUID, displayExchange(exchange), err)
		}
		publishing, _ := Marshaler{}.Marshal(msg)
		publishing.UserId = p.user
		confirms[i], err = ch.PublishWithDeferredConfirmWithContext(msg.Context(), exchange, key, false, false, publishing)
		if err != nil {
			return fmt.Errorf("publish %s to %s: %w", msg.UUID, displayExchange(exchange), err)
		}
	}
	for i, confirm := range confirms {
		ok, err := p.confirmed(msgs[i].Context(), confirm)
		if err != nil {
			return fmt.Errorf("publish %s to %s: waiting for confirm: %w", msgs[i].UUID, displayExchange(exchange), err)
		}
		if !ok {
			return fmt.Errorf("publish %s to %s: %w", msgs[i].UUID, displayExchange(exchange), ErrNotConfirmed)
		}
	}
	return nil
}

// confirmed waits for confirm until ctx is done. A block that begins meanwhile does not end
// the wait: the broker blocks a connection when it publishes during an alarm, after
// reading that publish, so the messages of the call that triggered the block may well be
// taken (they are once the alarm clears), and giving up early would have the caller
// publish them twice. The error then says the broker is blocking.
func (p *publisher) confirmed(ctx context.Context, confirm *amqp.DeferredConfirmation) (bool, error) {
	ok, err := confirm.WaitContext(ctx)
	if err != nil {
		if blocked := p.flow.err(); blocked != nil {
			return false, fmt.Errorf("%w: %w", blocked, err)
		}
		return false, err
	}
	return ok, nil
}

// acquire returns an idle channel, or opens one while fewer than the pool's size exist,
// or waits for one to be released.
func (p *publisher) acquire() (*amqp.Channel, error) {
	for {
		select {
		case ch := <-p.idle:
			if !ch.IsClosed() {
				return ch, nil
			}
			<-p.slots // closed by the broker or a reconnect: forget it
			continue
		default:
		}
		select {
		case ch := <-p.idle:
			if !ch.IsClosed() {
				return ch, nil
			}
			<-p.slots
		case p.slots <- struct{}{}:
			ch, err := p.open()
			if err != nil {
				<-p.slots
				return nil, err
			}
			return ch, nil
		}
	}
}

func (p *publisher) open() (*amqp.Channel, error) {
	p.mu.RLock()
	closed := p.closed
	p.mu.RUnlock()
	conn := p.conn.Connection()
	if closed || !p.conn.IsConnected() || conn == nil || conn.IsClosed() {
		return nil, ErrNotConnected
	}
	ch, err := conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("open channel: %w", err)
	}
	if err := ch.Confirm(false); err != nil {
		_ = ch.Close()
		return nil, fmt.Errorf("confirm mode: %w", err)
	}
	return ch, nil
}

// release returns ch to the pool, or closes it after a failure: a channel that saw an
// error may have been closed by the broker, and a fresh one is cheap. The close waits for
// the broker's answer, which a blocked broker does not send until the alarm clears, so it
// happens in the background.
func (p *publisher) release(ch *amqp.Channel, failed bool) {
	if failed || ch.IsClosed() {
		go ch.Close() //nolint:errcheck // the channel is forgotten either way
		<-p.slots
		return
	}
	p.idle <- ch
}

// declare declares exchange, as the topology describes it, before its first publish: a
// publish to an exchange that does not exist closes the channel with NOT_FOUND.
func (p *publisher) declare(ch *amqp.Channel, exchange string) error {
	if exchange == "" {
		return nil // the default exchange always exists
	}
	p.mu.RLock()
	done := p.declared[exchange]
	p.mu.RUnlock()
	if done {
		return nil
	}
	if err := p.topology.DeclareExchange(ch, exchange); err != nil {
		return err
	}
	p.mu.Lock()
	p.declared[exchange] = true
	p.mu.Unlock()
	return nil
}

// Close closes the idle channels; the connection is the Broker's to close.
func (p *publisher) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	for {
		select {
		case ch := <-p.idle:
			_ = p.flow.closeChannel(ch)
		default:
			return nil
		}
	}
}

var _ message.Publisher = (*publisher)(nil)
