package messaging

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	amqp "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// Request/reply over the broker uses RabbitMQ's direct reply-to: the requester consumes the
// pseudo-queue amq.rabbitmq.reply-to on one channel and publishes its requests on that same
// channel; the broker routes each reply straight back to it. No reply queue is declared per
// requester or per request, and a requester that went away simply gets no reply.
const directReplyTo = "amq.rabbitmq.reply-to"

// ErrRequestTimeout is returned by Request when no reply came in time.
var ErrRequestTimeout = errors.New("request timed out")

// ErrNotConnected is returned by Request and Reply while the broker connection is down.
var ErrNotConnected = errors.New("not connected to the broker")

// Requester sends requests and waits for their replies. It is safe for concurrent use.
type Requester struct {
	broker *Broker

	mu      sync.Mutex
	ch      *amqp.Channel
	pending map[string]chan *message.Message
}

// NewRequester returns a Requester that publishes on the broker's publishing connection.
func (b *Broker) NewRequester() *Requester {
	return &Requester{broker: b, pending: map[string]chan *message.Message{}}
}

// Request publishes request to exchange with routingKey and waits for the reply until ctx
// is done. While the broker blocks the publishing connection it fails at once with
// ErrBlocked, and so does a wait for a reply when the block begins. The request expires in the queue when ctx has a deadline, so a responder never
// works on a question nobody waits for any more (it is dead-lettered as expired instead).
func (r *Requester) Request(ctx context.Context, exchange, routingKey string, request *message.Message) (*message.Message, error) {
	corrID := watermill.NewUUID()
	replies := make(chan *message.Message, 1)

	ctx, span := r.broker.tracing.tracer.Start(ctx, "publish "+displayExchange(exchange),
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(semconv.MessagingSystemRabbitMQ, semconv.MessagingOperationTypeSend,
			semconv.MessagingDestinationName(exchange), semconv.MessagingRabbitMQDestinationRoutingKey(routingKey)))
	defer span.End()
	r.broker.tracing.propagator.Inject(ctx, propagation.MapCarrier(request.Metadata))

	publishing, _ := Marshaler{}.Marshal(request)
	publishing.CorrelationId = corrID
	publishing.ReplyTo = directReplyTo
	publishing.DeliveryMode = amqp.Transient // a question is worth nothing after a restart
	if deadline, ok := ctx.Deadline(); ok {
		ms := max(time.Until(deadline).Milliseconds(), 1)
		publishing.Expiration = strconv.FormatInt(ms, 10)
	}

	if err := r.publish(ctx, exchange, routingKey, corrID, replies, publishing); err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "request failed")
		return nil, err
	}
	defer r.forget(corrID)

	select {
	case reply := <-replies:
		return reply, nil
	case <-ctx.Done():
		span.SetStatus(codes.Error, "no reply")
		return nil, fmt.Errorf("request %s %s: %w", exchange, routingKey, ErrRequestTimeout)
	case <-r.broker.pubFlow.onBlock():
		// The broker reads nothing from a blocked connection: the request may never
		// have reached it.
		span.SetStatus(codes.Error, "broker blocked")
		return nil, fmt.Errorf("request %s %s: %w", exchange, routingKey, ErrBlocked)
	}
}

func (r *Requester) publish(ctx context.Context, exchange, key, corrID string, replies chan *message.Message, p amqp.Publishing) error {
	if err := r.broker.pubFlow.err(); err != nil {
		return fmt.Errorf("request: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ch == nil || r.ch.IsClosed() {
		if err := r.openLocked(); err != nil {
			return fmt.Errorf("request: %w", err)
		}
	}
	r.pending[corrID] = replies
	if err := r.ch.PublishWithContext(ctx, exchange, key, false, false, p); err != nil {
		delete(r.pending, corrID)
		return fmt.Errorf("request: publish: %w", err)
	}
	return nil
}

// openLocked opens the channel that publishes requests and receives replies.
func (r *Requester) openLocked() error {
	conn := r.broker.pubConn.Connection()
	if conn == nil || conn.IsClosed() {
		return ErrNotConnected
	}
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("open channel: %w", err)
	}
	deliveries, err := ch.Consume(directReplyTo, "", true, false, false, false, nil)
	if err != nil {
		_ = ch.Close()
		return fmt.Errorf("consume %s: %w", directReplyTo, err)
	}
	r.ch = ch
	go r.receive(deliveries)
	return nil
}

func (r *Requester) receive(deliveries <-chan amqp.Delivery) {
	for d := range deliveries {
		msg, _ := Marshaler{}.Unmarshal(d)
		r.mu.Lock()
		replies, ok := r.pending[d.CorrelationId]
		delete(r.pending, d.CorrelationId)
		r.mu.Unlock()
		if ok {
			replies <- msg // buffered: never blocks
		}
	}
}

func (r *Requester) forget(corrID string) {
	r.mu.Lock()
	delete(r.pending, corrID)
	r.mu.Unlock()
}

// Close closes the requester's channel.
func (r *Requester) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ch == nil {
		return nil
	}
	return r.broker.pubFlow.closeChannel(r.ch)
}

// Replier answers requests from inside a consumer handler. It is safe for concurrent use.
type Replier struct {
	broker *Broker
	mu     sync.Mutex
	ch     *amqp.Channel
}

// NewReplier returns a Replier that publishes on the broker's publishing connection.
func (b *Broker) NewReplier() *Replier { return &Replier{broker: b} }

// Reply sends reply to the requester of request. Replies go straight to the requester's
// reply-to address through the default exchange; a requester that is gone gets nothing,
// which is fine since it no longer waits. While the broker blocks the publishing
// connection it fails at once with ErrBlocked.
func (p *Replier) Reply(ctx context.Context, request, reply *message.Message) error {
	replyTo := request.Metadata.Get(HeaderReplyTo)
	if replyTo == "" {
		return Permanent(errors.New("reply: request has no reply-to"))
	}
	reply.Metadata.Set(HeaderCorrelationID, request.Metadata.Get(HeaderCorrelationID))
	p.broker.tracing.propagator.Inject(ctx, propagation.MapCarrier(reply.Metadata))
	publishing, _ := Marshaler{}.Marshal(reply)
	publishing.DeliveryMode = amqp.Transient

	if err := p.broker.pubFlow.err(); err != nil {
		return fmt.Errorf("reply: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ch == nil || p.ch.IsClosed() {
		conn := p.broker.pubConn.Connection()
		if conn == nil || conn.IsClosed() {
			return fmt.Errorf("reply: %w", ErrNotConnected)
		}
		ch, err := conn.Channel()
		if err != nil {
			return fmt.Errorf("reply: open channel: %w", err)
		}
		p.ch = ch
	}
	if err := p.ch.PublishWithContext(ctx, "", replyTo, false, false, publishing); err != nil {
		return fmt.Errorf("reply: publish: %w", err)
	}
	return nil
}
