package messaging

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// DeadLetter returns the middleware that gives up on a message its handler failed on: it
// publishes a copy to the queue's own dead-letter exchange ("<queue>.dlx", which only this
// service may write to) with the source queue as routing key (so it lands in
// "<queue>.dlq") and the reason in headers, and only then acks the original. The publisher
// stamps the copy with the service's user id, which the broker checks: that is how
// warrenctl dlq replay knows the dead letter's writer.
//
// A failure that isDown says is a dependency's outage is never dead-lettered: it is
// returned for the outage middleware around this one to hold. So is a failed dead-letter
// publish (the broker is the dependency then): the message is held, not lost, and not
// requeued, which would count toward the queue's delivery limit.
//
// It must sit outside Retry, so that it sees only what retrying could not fix.
func DeadLetter(queue string, publisher message.Publisher, isDown func(error) (string, bool), metrics *Metrics, logger *slog.Logger) message.HandlerMiddleware {
	topic := Topic(DeadLetterExchangeName(queue), queue)
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			attempts := new(int)
			ctx := context.WithValue(msg.Context(), attemptsKey{}, attempts)
			msg.SetContext(ctx)
			out, err := h(msg)
			msg.SetContext(ctx) // inner middleware (timeouts) may have replaced it
			if err == nil {
				return out, nil
			}
			if ctx.Err() != nil && !IsPermanent(err) {
				// Shutting down: the failure may be nothing but that. Return the message to
				// the queue (the subscriber nacks with requeue) for the next consumer.
				return nil, err
			}
			if _, down := isDown(err); down {
				return nil, err
			}
			dead := deadLetterCopy(msg, queue, err, *attempts)
			if pubErr := publisher.Publish(topic, dead); pubErr != nil {
				logger.ErrorContext(msg.Context(), "dead-letter publish failed; message held until the broker takes it",
					"queue", queue, "message_id", msg.UUID, "handler_error", err, "error", pubErr)
				return nil, Unavailable("rabbitmq", fmt.Errorf("dead-letter %s: %w", msg.UUID, errors.Join(err, pubErr)))
			}
			metrics.deadLettered(queue, msg.Metadata.Get(HeaderType))
			logger.WarnContext(msg.Context(), "message dead-lettered",
				"queue", queue, "dlq", DeadLetterQueueName(queue), "message_id", msg.UUID,
				"type", msg.Metadata.Get(HeaderType), "reason", err.Error())
			return nil, nil
		}
	}
}

// brokerHeaders are set by RabbitMQ itself and must not be copied into a new publish.
var brokerHeaders = []string{"x-death", "x-delivery-count", "x-first-death-exchange",
	"x-first-death-queue", "x-first-death-reason", "x-last-death-exchange",
	"x-last-death-queue", "x-last-death-reason"}

func deadLetterCopy(msg *message.Message, queue string, cause error, attempts int) *message.Message {
	dead := msg.Copy()
	dead.SetContext(msg.Context())
	for _, h := range brokerHeaders {
		delete(dead.Metadata, h)
	}
	reason := cause.Error()
	if IsPermanent(cause) {
		reason = "permanent: " + reason
	}
	dead.Metadata.Set(HeaderDeadLetterReason, truncate(reason, 1024))
	dead.Metadata.Set(HeaderDeadLetterQueue, queue)
	dead.Metadata.Set(HeaderDeadLetterAt, time.Now().UTC().Format(time.RFC3339Nano))
	dead.Metadata.Set(HeaderDeadLetterTries, strconv.Itoa(attempts))
	return dead
}

type attemptsKey struct{}

// logAttempts counts handler attempts for DeadLetter's report and logs each failed one, so
// that retries that end well still leave a trace. It sits inside Retry.
func logAttempts(queue string, logger *slog.Logger) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			n, _ := msg.Context().Value(attemptsKey{}).(*int)
			if n != nil {
				*n++
			}
			out, err := h(msg)
			if err != nil && n != nil {
				logger.WarnContext(msg.Context(), "handler attempt failed", "queue", queue,
					"message_id", msg.UUID, "type", msg.Metadata.Get(HeaderType), "attempt", *n, "error", err)
			}
			return out, err
		}
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
