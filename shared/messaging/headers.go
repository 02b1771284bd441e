package messaging

import (
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Metadata keys Warren sets on every message. The marshaler maps the ones that have an AMQP
// property of their own (message id, type, correlation id, reply-to) onto that property and
// back, so other AMQP clients see them where they expect them; the rest travel as headers.
const (
	// HeaderType is the event's contract name, e.g. "order.placed.v1" (AMQP type property).
	HeaderType = "type"
	// HeaderCorrelationID ties every message caused by one order together (AMQP
	// correlation-id property). For request/reply it matches a reply to its request.
	HeaderCorrelationID = "correlation_id"
	// HeaderReplyTo is the queue a request's reply goes to (AMQP reply-to property).
	HeaderReplyTo = "reply_to"
	// HeaderOccurredAt is when the event happened, RFC 3339 with nanoseconds.
	HeaderOccurredAt = "occurred_at"

	// HeaderExchange and HeaderRoutingKey record where a delivery was published to. They are
	// set on consumption only, from the delivery, and kept when a message is dead-lettered
	// so that it can be replayed to the same place.
	HeaderExchange   = "x-warren-exchange"
	HeaderRoutingKey = "x-warren-routing-key"
	// HeaderRedelivered is "true" when the broker says the delivery may have been seen
	// before. Idempotent consumers do not need it; it is there for logs and metrics.
	HeaderRedelivered = "x-warren-redelivered"

	// Dead-letter headers, set by DeadLetter when a consumer gives a message up.
	HeaderDeadLetterReason = "x-warren-dead-letter-reason"
	HeaderDeadLetterQueue  = "x-warren-dead-letter-queue"
	HeaderDeadLetterAt     = "x-warren-dead-letter-at"
	HeaderDeadLetterTries  = "x-warren-dead-letter-attempts"
)

// OccurredAt returns when msg's event happened (HeaderOccurredAt, set by NewEvent), or the
// zero time when the header is missing or not RFC 3339: a producer that does not stamp its
// messages.
func OccurredAt(msg *message.Message) time.Time {
	t, err := time.Parse(time.RFC3339Nano, msg.Metadata.Get(HeaderOccurredAt))
	if err != nil {
		return time.Time{}
	}
	return t
}
