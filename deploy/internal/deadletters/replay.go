package deadletters

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenhq/warren/shared/messaging"
)

// ErrNotReplayable is returned (wrapped) by Origins.Verify for a message that says nothing
// of where it would go back to.
var ErrNotReplayable = errors.New("not replayable")

// ErrNotDelivered is returned (wrapped) by Replay when the broker did not take a copy: it
// nacked the publish (a full queue) or returned it (no queue of that name). The dead letter
// stays where it was.
var ErrNotDelivered = errors.New("broker did not take the replayed message")

// Mode says where Replay sends a message.
type Mode string

// Replay modes.
const (
	// ToQueue publishes to the queue the message failed in, through the default exchange:
	// only the consumer that failed sees it again. The default.
	ToQueue Mode = "queue"
	// ToOriginal publishes to the exchange and routing key the message was first published
	// with: every queue bound there gets it again, as if it were new.
	ToOriginal Mode = "original"
)

// ParseMode parses "queue" or "original".
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case ToQueue, ToOriginal:
		return m, nil
	}
	return "", fmt.Errorf("replay target %q: want %q or %q", s, ToQueue, ToOriginal)
}

// ReplayOptions selects what Replay sends back, and where.
type ReplayOptions struct {
	// Origins verifies each message before it is sent anywhere (required).
	Origins Origins
	// To is where to (ToQueue when empty).
	To Mode
	// Limit is how many messages to replay at most; 0 means all.
	Limit int
	// MessageID, when set, replays only messages with that message id.
	MessageID string
}

// Replayed is one message Replay sent back.
type Replayed struct {
	MessageID string      `json:"message_id"`
	To        Destination `json:"to"`
}

// Skipped is one message Replay left in its queue, and why.
type Skipped struct {
	MessageID string `json:"message_id"`
	Reason    string `json:"reason"`
}

// ReplayResult is what Replay did.
type ReplayResult struct {
	Replayed []Replayed `json:"replayed"`
	Skipped  []Skipped  `json:"skipped"`
}

// Replay sends dead letters from queue back (see ReplayOptions), one at a time: it takes a
// message with basic.get, publishes the copy (republish) with the mandatory flag on a
// confirm-mode channel, waits for the broker's confirm, and only then acks the original.
// A message is therefore never lost: if warrenctl stops between the confirm and the ack,
// the original goes back to the queue and a later replay sends it again, a duplicate with
// the same message id that Warren's idempotent consumers ignore.
//
// Each message's destination is the one Origins.Verify allows, never what its headers say:
// one it refuses (forged, or not vouched for) is skipped, with the reason.
//
// Messages it skips (another message id, not replayable) are held until the end and then
// returned to the queue with basic.nack, so that each is seen once. A message this run
// replayed that fails again at once and comes back (its x-warren-replayed-at is one this
// run wrote) is held too, and reported: replaying stops when the queue has nothing left
// but what Replay holds.
//
// On an error the message in hand is returned to the queue, and the result says what was
// done before it.
func (c *Client) Replay(ctx context.Context, queue string, opts ReplayOptions) (ReplayResult, error) {
	var res ReplayResult
	if opts.To == "" {
		opts.To = ToQueue
	}
	if opts.Origins.access == nil {
		return res, fmt.Errorf("replay %s: no origins to verify dead letters with", queue)
	}
	ch, err := c.conn.Channel()
	if err != nil {
		return res, fmt.Errorf("replay %s: %w", queue, err)
	}
	defer ch.Close()
	if err := ch.Confirm(false); err != nil {
		return res, fmt.Errorf("replay %s: confirm mode: %w", queue, err)
	}
	// One publish is in flight at a time, and the broker sends a return before the
	// confirm of the same message: after the confirm, a return is already here or never.
	returns := ch.NotifyReturn(make(chan amqp.Return, 1))
	if _, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil); err != nil {
		return res, fmt.Errorf("replay %s: %w", queue, notFound(err))
	}

	var held struct {
		last uint64 // highest delivery tag held back: every unacked tag is a held one
		n    int
	}
	hold := func(d amqp.Delivery) { held.last, held.n = d.DeliveryTag, held.n+1 }
	defer func() {
		if held.n > 0 {
			returnHeld(ch, queue, held.last, held.n)
		}
	}()
	stamps := map[string]bool{} // x-warren-replayed-at of the messages this run replayed
	for opts.Limit == 0 || len(res.Replayed) < opts.Limit {
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("replay %s: %w", queue, err)
		}
		d, ok, err := ch.Get(queue, false)
		if err != nil {
			return res, fmt.Errorf("replay %s: %w", queue, err)
		}
		if !ok {
			break
		}
		if stamps[text(d.Headers[HeaderReplayedAt])] {
			res.Skipped = append(res.Skipped, Skipped{MessageID: d.MessageId, Reason: "dead-lettered again after this replay"})
			hold(d)
			continue
		}
		if opts.MessageID != "" && d.MessageId != opts.MessageID {
			hold(d)
			continue
		}
		to, err := opts.Origins.Verify(queue, d, opts.To)
		if err != nil {
			res.Skipped = append(res.Skipped, Skipped{MessageID: d.MessageId, Reason: err.Error()})
			hold(d)
			continue
		}
		p := republish(d, time.Now())
		stamps[text(p.Headers[HeaderReplayedAt])] = true
		if err := publish(ctx, ch, returns, to, p); err != nil {
			hold(d)
			return res, fmt.Errorf("replay %s: message %q: %w", queue, d.MessageId, err)
		}
		if err := d.Ack(false); err != nil {
			// The copy is out; the original returns to the queue when the channel
			// closes, and replaying it again would make a duplicate (harmless).
			return res, fmt.Errorf("replay %s: message %q was replayed but not removed: %w", queue, d.MessageId, err)
		}
		res.Replayed = append(res.Replayed, Replayed{MessageID: d.MessageId, To: to})
	}
	return res, nil
}

// publish publishes p to dest and waits until the broker has confirmed it and not returned it.
func publish(ctx context.Context, ch *amqp.Channel, returns <-chan amqp.Return, dest Destination, p amqp.Publishing) error {
	confirm, err := ch.PublishWithDeferredConfirmWithContext(ctx, dest.Exchange, dest.RoutingKey, true, false, p)
	if err != nil {
		return fmt.Errorf("publish to %s: %w", dest, err)
	}
	acked, err := confirm.WaitContext(ctx)
	if err != nil {
		return fmt.Errorf("publish to %s: waiting for the confirm: %w", dest, err)
	}
	if !acked {
		return fmt.Errorf("publish to %s: %w: nacked (is the queue full?)", dest, ErrNotDelivered)
	}
	select {
	case r := <-returns:
		return fmt.Errorf("publish to %s: %w: returned %d %s", dest, ErrNotDelivered, r.ReplyCode, r.ReplyText)
	default:
		return nil
	}
}

// replayStripped are the headers a replay removes: the consumer's and the broker's record
// of the failure (which the next failure writes afresh), and the consumer's record of the
// delivery, which it sets again from the next one.
var replayStripped = []string{
	messaging.HeaderDeadLetterReason, messaging.HeaderDeadLetterQueue,
	messaging.HeaderDeadLetterAt, messaging.HeaderDeadLetterTries,
	messaging.HeaderExchange, messaging.HeaderRoutingKey, messaging.HeaderRedelivered,
	"x-death", "x-delivery-count",
	"x-first-death-exchange", "x-first-death-queue", "x-first-death-reason",
	"x-last-death-exchange", "x-last-death-queue", "x-last-death-reason",
}

// republish is the message Replay publishes for d: the same body and properties (message id
// included, so idempotency holds), the same headers (traceparent and tracestate included,
// so its processing joins the original trace) but those in replayStripped, and
// HeaderReplayedAt and HeaderReplayCount.
//
// The user-id property is dropped: RabbitMQ refuses a publish whose user-id is not the
// publishing user, and warrenctl is not the service that first published it.
func republish(d amqp.Delivery, now time.Time) amqp.Publishing {
	headers := maps.Clone(d.Headers)
	if headers == nil {
		headers = amqp.Table{}
	}
	for _, h := range replayStripped {
		delete(headers, h)
	}
	count, _ := strconv.Atoi(text(d.Headers[HeaderReplayCount]))
	headers[HeaderReplayedAt] = now.UTC().Format(time.RFC3339Nano)
	headers[HeaderReplayCount] = strconv.Itoa(count + 1)
	return amqp.Publishing{
		Headers:         headers,
		ContentType:     d.ContentType,
		ContentEncoding: d.ContentEncoding,
		DeliveryMode:    d.DeliveryMode,
		Priority:        d.Priority,
		CorrelationId:   d.CorrelationId,
		ReplyTo:         d.ReplyTo,
		Expiration:      d.Expiration,
		MessageId:       d.MessageId,
		Timestamp:       d.Timestamp,
		Type:            d.Type,
		AppId:           d.AppId,
		Body:            d.Body,
	}
}
