package deadletters

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenhq/warren/shared/messaging"
)

// Headers warrenctl sets on a replayed message. The consumer's marshaler turns them into
// metadata like any other header, and a replayed message that fails again keeps them in
// its new dead letter, so the count goes on from there.
const (
	HeaderReplayedAt  = "x-warren-replayed-at"
	HeaderReplayCount = "x-warren-replay-count"
)

// By says who put a message where it is.
type By string

// Who dead-letters messages.
const (
	// ByConsumer: the consumer's DeadLetter middleware gave up, and said why in the
	// x-warren-dead-letter-* headers.
	ByConsumer By = "consumer"
	// ByBroker: RabbitMQ dead-lettered it (a reject without requeue, the delivery limit,
	// an expiry) and recorded that in x-death.
	ByBroker By = "broker"
	// ByNobody: it was never delivered; no binding matched where it was published, and the
	// alternate exchange kept it in warren.unroutable-messages.
	ByNobody By = "unroutable"
	// ByUnknown: it is in a dead-letter queue with neither Warren's headers nor x-death
	// (a client published it to the queue's "<queue>.dlx" itself).
	ByUnknown By = "unknown"
)

// Destination is an exchange and routing key to publish to; the default exchange ("")
// routes to the queue named by the key.
type Destination struct {
	Exchange   string `json:"exchange"`
	RoutingKey string `json:"routing_key"`
}

func (d Destination) String() string {
	if d.Exchange == "" {
		return fmt.Sprintf("queue %s (through the default exchange)", d.RoutingKey)
	}
	return fmt.Sprintf("exchange %s, routing key %q", d.Exchange, d.RoutingKey)
}

// Death is one entry of RabbitMQ's x-death header: the broker dead-lettered the message
// Count times from Queue for Reason; Exchange and RoutingKeys are where it had been
// published to.
type Death struct {
	Queue       string    `json:"queue"`
	Reason      string    `json:"reason"`
	Count       int64     `json:"count"`
	Exchange    string    `json:"exchange"`
	RoutingKeys []string  `json:"routing_keys"`
	Time        time.Time `json:"time,omitzero"`
}

// Message is what an operator needs to know about a dead letter, read from its properties
// and headers by Describe.
type Message struct {
	MessageID     string `json:"message_id"`
	Type          string `json:"type"`
	CorrelationID string `json:"correlation_id"`
	// DeadLetteredBy is who put the message where it is.
	DeadLetteredBy By `json:"dead_lettered_by"`
	// Reason is the consumer's x-warren-dead-letter-reason, else a summary of the broker's
	// first x-death entry, else why a message is unroutable.
	Reason string `json:"reason"`
	// Queue is the work queue the message failed in; empty when nothing says (an
	// unroutable message never reached one).
	Queue string `json:"queue"`
	// Attempts is how many times the consumer's handler ran (consumer dead letters only).
	Attempts int `json:"attempts,omitempty"`
	// DeadLetteredAt is when it was dead-lettered (the consumer's header or the first
	// x-death entry's time); zero when unknown.
	DeadLetteredAt time.Time `json:"dead_lettered_at,omitzero"`
	// Original is where the message was published to before it failed; nil when nothing
	// says. Replay --to original sends it there again.
	Original *Destination `json:"original"`
	// Traceparent is the W3C trace context the message carries, TraceID its trace.
	Traceparent string `json:"traceparent,omitempty"`
	TraceID     string `json:"trace_id,omitempty"`
	// ReplayCount is how many times warrenctl replayed it before.
	ReplayCount int `json:"replay_count"`
	// Deaths is the x-death header, most recent first.
	Deaths []Death `json:"x_death,omitempty"`
	// Body is the whole payload.
	Body []byte `json:"-"`
}

// Describe reads a dead letter's delivery.
func Describe(d amqp.Delivery) Message {
	h := d.Headers
	m := Message{
		MessageID:     d.MessageId,
		Type:          d.Type,
		CorrelationID: d.CorrelationId,
		Traceparent:   text(h["traceparent"]),
		Deaths:        deaths(h["x-death"]),
		Body:          d.Body,
	}
	m.TraceID = traceID(m.Traceparent)
	m.ReplayCount, _ = strconv.Atoi(text(h[HeaderReplayCount]))
	first, hasDeath := firstDeath(h, m.Deaths)

	switch reason := text(h[messaging.HeaderDeadLetterReason]); {
	case reason != "":
		m.DeadLetteredBy, m.Reason = ByConsumer, reason
		m.Attempts, _ = strconv.Atoi(text(h[messaging.HeaderDeadLetterTries]))
		m.DeadLetteredAt, _ = time.Parse(time.RFC3339Nano, text(h[messaging.HeaderDeadLetterAt]))
	case hasDeath:
		m.DeadLetteredBy = ByBroker
		m.Reason = fmt.Sprintf("%s in %s (x-death count %d)", first.Reason, first.Queue, first.Count)
		m.DeadLetteredAt = first.Time
	case isInfrastructure(d.Exchange):
		m.DeadLetteredBy, m.Reason = ByUnknown, "no reason recorded"
	default:
		m.DeadLetteredBy = ByNobody
		m.Reason = fmt.Sprintf("unroutable: no binding matched %s", Destination{d.Exchange, d.RoutingKey})
	}

	m.Queue = sourceQueue(d, first, hasDeath)
	m.Original = original(d, first, hasDeath)
	return m
}

// sourceQueue is the work queue a dead letter failed in: the consumer's header, else the
// queue of the broker's first x-death entry, else the routing key it reached its
// "<queue>.dlx" (or, expired from a .dlq, the archive) with, which is always the source
// queue. These are what the message says; Origins.Verify checks them against where it is.
func sourceQueue(d amqp.Delivery, first Death, hasDeath bool) string {
	candidates := []string{text(d.Headers[messaging.HeaderDeadLetterQueue])}
	if hasDeath {
		candidates = append(candidates, first.Queue)
	}
	if isDeadLetterExchange(d.Exchange) || d.Exchange == messaging.ArchiveExchange {
		candidates = append(candidates, d.RoutingKey)
	}
	for _, q := range candidates {
		if q != "" && !isSink(q) {
			return q
		}
	}
	return ""
}

// original is where the message was published before it failed: the consumer's record of
// its delivery (x-warren-exchange, x-warren-routing-key), else the exchange and first
// routing key of the broker's first x-death entry, else (an unroutable message) where it
// was published. Warren's own dead-letter and archive exchanges are never an origin.
func original(d amqp.Delivery, first Death, hasDeath bool) *Destination {
	if exchange, ok := d.Headers[messaging.HeaderExchange]; ok {
		dest := Destination{Exchange: text(exchange), RoutingKey: text(d.Headers[messaging.HeaderRoutingKey])}
		if !isInfrastructure(dest.Exchange) {
			return &dest
		}
	}
	if hasDeath && !isInfrastructure(first.Exchange) {
		dest := Destination{Exchange: first.Exchange}
		if len(first.RoutingKeys) > 0 {
			dest.RoutingKey = first.RoutingKeys[0]
		}
		return &dest
	}
	if d.Exchange != "" && !isInfrastructure(d.Exchange) {
		return &Destination{Exchange: d.Exchange, RoutingKey: d.RoutingKey}
	}
	return nil
}

func isInfrastructure(exchange string) bool {
	return isDeadLetterExchange(exchange) || exchange == messaging.ArchiveExchange ||
		exchange == messaging.UnroutableExchange
}

// isDeadLetterExchange reports whether exchange is a work queue's "<queue>.dlx".
func isDeadLetterExchange(exchange string) bool { return strings.HasSuffix(exchange, ".dlx") }

// isSink reports whether queue only ever holds dead letters.
func isSink(queue string) bool {
	return strings.HasSuffix(queue, ".dlq") || queue == messaging.UnroutableQueue || queue == messaging.ArchiveQueue
}

// deaths decodes the x-death header (an array of tables, most recent first).
func deaths(v any) []Death {
	list, _ := v.([]any)
	out := make([]Death, 0, len(list))
	for _, e := range list {
		t, ok := e.(amqp.Table)
		if !ok {
			continue
		}
		d := Death{
			Queue:    text(t["queue"]),
			Reason:   text(t["reason"]),
			Exchange: text(t["exchange"]),
		}
		d.Count, _ = strconv.ParseInt(text(t["count"]), 10, 64)
		d.Time, _ = t["time"].(time.Time)
		if keys, ok := t["routing-keys"].([]any); ok {
			for _, k := range keys {
				d.RoutingKeys = append(d.RoutingKeys, text(k))
			}
		}
		out = append(out, d)
	}
	return out
}

// firstDeath is the entry for the first time the broker dead-lettered the message, named
// by x-first-death-queue and x-first-death-reason; the last entry when they are missing.
func firstDeath(h amqp.Table, all []Death) (Death, bool) {
	if len(all) == 0 {
		return Death{}, false
	}
	queue, reason := text(h["x-first-death-queue"]), text(h["x-first-death-reason"])
	for _, d := range all {
		if d.Queue == queue && d.Reason == reason {
			return d, true
		}
	}
	return all[len(all)-1], true
}

// traceID is the trace id of a W3C traceparent ("00-<trace id>-<span id>-<flags>"), or ""
// when it is not one.
func traceID(traceparent string) string {
	parts := strings.Split(traceparent, "-")
	if len(parts) < 4 || len(parts[0]) != 2 || len(parts[1]) != 32 || strings.Trim(parts[1], "0") == "" {
		return ""
	}
	for _, c := range parts[1] {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return ""
		}
	}
	return parts[1]
}

// text renders an AMQP field value: Warren's headers are strings, RabbitMQ's are not.
func text(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case []byte:
		return string(v)
	case time.Time:
		return v.UTC().Format(time.RFC3339Nano)
	default:
		return fmt.Sprint(v)
	}
}
