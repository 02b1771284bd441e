package messaging

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/cenkalti/backoff/v5"
)

// Consumer is one queue a service consumes and the function that handles its messages.
//
// Handler must be idempotent: the broker delivers at least once. It returns nil when the
// message's work is committed (the message is then acked), an error wrapped by Permanent
// when retrying cannot help (dead-lettered at once), or any other error (retried with
// backoff, then dead-lettered).
type Consumer struct {
	Queue   string
	Handler message.NoPublishHandlerFunc
	// Concurrency is how many messages of this queue are handled at once. Default 1.
	Concurrency int
}

// RetryConfig bounds the in-process retries of a failing handler.
type RetryConfig struct {
	// MaxRetries after the first attempt. Default 3.
	MaxRetries int
	// InitialInterval doubles after each retry up to MaxInterval. Defaults 100 ms and 2 s.
	InitialInterval time.Duration
	MaxInterval     time.Duration
}

func (c *RetryConfig) setDefaults() {
	if c.MaxRetries == 0 {
		c.MaxRetries = 3
	}
	if c.InitialInterval == 0 {
		c.InitialInterval = 100 * time.Millisecond
	}
	if c.MaxInterval == 0 {
		c.MaxInterval = 2 * time.Second
	}
}

// RouterConfig configures NewRouter.
type RouterConfig struct {
	Retry RetryConfig
	// Metrics may be nil.
	Metrics *Metrics
	Logger  *slog.Logger
	// CloseTimeout is how long Close waits for in-flight handlers. Default 30 s.
	CloseTimeout time.Duration
}

// NewRouter returns a Watermill router that consumes every queue in consumers with the
// same middleware stack, outermost first:
//
//	tracing     "process <queue>" consumer span, child of the producer span
//	dead-letter failures that survive retrying go to "<queue>.dlq" with the reason
//	retry       transient errors retried with exponential backoff; Permanent ones not
//	            (stopRetryingPermanent tells Retry so)
//	metrics     every attempt counted and timed
//	recoverer   a panic becomes an error instead of killing the service
//
// Run the router with Run(ctx); Close waits for in-flight messages to be handled and acked.
func (b *Broker) NewRouter(config RouterConfig, consumers ...Consumer) (*message.Router, error) {
	config.Retry.setDefaults()
	if config.Logger == nil {
		return nil, errors.New("new router: nil logger")
	}
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: config.CloseTimeout}, b.logger)
	if err != nil {
		return nil, fmt.Errorf("new router: %w", err)
	}
	for _, c := range consumers {
		if c.Handler == nil || c.Queue == "" {
			return nil, fmt.Errorf("new router: consumer %q needs a queue and a handler", c.Queue)
		}
		if _, ok := b.topology.Queue(c.Queue); !ok {
			return nil, fmt.Errorf("new router: queue %q is not in the topology", c.Queue)
		}
		retry := middleware.Retry{
			MaxRetries:      config.Retry.MaxRetries,
			InitialInterval: config.Retry.InitialInterval,
			MaxInterval:     config.Retry.MaxInterval,
			Multiplier:      2,
		}
		stack := []message.HandlerMiddleware{
			b.tracing.middleware(c.Queue),
			DeadLetter(c.Queue, b.publisher, config.Metrics, config.Logger),
			retry.Middleware,
			stopRetryingPermanent,
			countAttempts,
			config.Metrics.middleware(c.Queue),
			middleware.Recoverer,
		}
		for i := range max(c.Concurrency, 1) {
			h := router.AddConsumerHandler(fmt.Sprintf("%s#%d", c.Queue, i), c.Queue, b.subscriber, c.Handler)
			h.AddMiddleware(stack...)
		}
	}
	return router, nil
}

// stopRetryingPermanent ends Retry's attempts at a Permanent error. It is a middleware
// rather than Retry.ShouldRetry because, in Watermill 1.5, computing ShouldRetry's Delay
// argument advances the backoff: every wait would double and every other step be skipped.
func stopRetryingPermanent(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		out, err := h(msg)
		if IsPermanent(err) {
			return out, backoff.Permanent(err) // Retry unwraps it again
		}
		return out, err
	}
}

// NewEvent builds a message of type typ whose payload is v as JSON.
func NewEvent(typ, correlationID string, v any) (*message.Message, error) {
	payload, err := jsonMarshal(v)
	if err != nil {
		return nil, fmt.Errorf("new event %s: %w", typ, err)
	}
	msg := message.NewMessage(watermill.NewUUID(), payload)
	msg.Metadata.Set(HeaderType, typ)
	msg.Metadata.Set(HeaderOccurredAt, time.Now().UTC().Format(time.RFC3339Nano))
	if correlationID != "" {
		msg.Metadata.Set(HeaderCorrelationID, correlationID)
	}
	return msg, nil
}
