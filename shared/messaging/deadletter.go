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
// publishes a copy to DeadLetterExchange with the source queue as routing key (so it lands
// in "<queue>.dlq") and the reason in headers, and only then acks the original. If the
// dead-letter publish itself fails the original is nacked and requeued: nothing is lost,
// and the queue's delivery limit stops a message from going round forever.
//
// It must sit outside Retry, so that it sees only what retrying could not fix.
func DeadLetter(queue string, publisher message.Publisher, metrics *Metrics, logger *slog.Logger) message.HandlerMiddleware {
	topic := Topic(DeadLetterExchange, queue)
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			attempts := new(int)
			msg.SetContext(context.WithValue(msg.Context(), attemptsKey{}, attempts))
			out, err := h(msg)
			if err == nil {
				return out, nil
			}
			dead := deadLetterCopy(msg, queue, err, *attempts)
			if pubErr := publisher.Publish(topic, dead); pubErr != nil {
				logger.ErrorContext(msg.Context(), "dead-letter publish failed; message requeued",
					"queue", queue, "message_id", msg.UUID, "handler_error", err, "error", pubErr)
				return nil, fmt.Errorf("dead-letter %s: %w", msg.UUID, errors.Join(err, pubErr))
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

// countAttempts counts handler attempts for DeadLetter's report. It sits inside Retry.
func countAttempts(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		if n, ok := msg.Context().Value(attemptsKey{}).(*int); ok {
			*n++
		}
		return h(msg)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
