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
	// Concurrency is how many messages of this queue are handled at once; messages of one
	// order (same correlation id) always one after another. 0: the Broker's
	// Config.Concurrency; 1: the queue strictly in order.
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
	// Unavailable tells errors that mean a dependency is down (the database restarting,
	// say) from other failures. Such a message is not dead-lettered after Retry's few quick
	// attempts: it is tried again, with backoff up to 5 s, until OutageTimeout has passed.
	// postgres.IsUnavailable is the usual choice. Nil: no error is treated so.
	Unavailable func(error) bool
	// OutageTimeout bounds how long a message waits out an outage. Default 2 min.
	OutageTimeout time.Duration
	// Permanent marks further errors as permanent (dead-lettered at once, never retried),
	// besides those wrapped by messaging.Permanent; e.g. postgres.IsDataError. May be nil.
	Permanent func(error) bool
	// HandlerTimeout bounds each handler attempt: a handler stuck on a dead connection gets
	// its context cancelled instead of holding the queue. Default 30 s.
	HandlerTimeout time.Duration
	// Metrics may be nil.
	Metrics *Metrics
	Logger  *slog.Logger
	// CloseTimeout is how long Close waits for in-flight handlers. Default 30 s.
	CloseTimeout time.Duration
}

func (c *RouterConfig) setDefaults() {
	c.Retry.setDefaults()
	if c.OutageTimeout == 0 {
		c.OutageTimeout = 2 * time.Minute
	}
	if c.HandlerTimeout == 0 {
		c.HandlerTimeout = 30 * time.Second
	}
}

// NewRouter returns a Watermill router that consumes every queue in consumers with the
// same middleware stack, outermost first:
//
//	tracing     "process <queue>" consumer span, child of the producer span
//	dead-letter failures that survive retrying go to "<queue>.dlq" with the reason
//	outage      a dependency that is down (config.Unavailable) is waited out
//	retry       transient errors retried with exponential backoff; permanent ones not
//	            (stopRetryingPermanent tells Retry so)
//	attempts    every failed attempt counted and logged
//	timeout     each attempt bounded by config.HandlerTimeout
//	metrics     every attempt counted and timed
//	recoverer   a panic becomes an error instead of killing the service
//
// Run the router with Run(ctx); Close waits for in-flight messages to be handled and acked.
func (b *Broker) NewRouter(config RouterConfig, consumers ...Consumer) (*message.Router, error) {
	config.setDefaults()
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
			// Each attempt gets the context the message came with, not the one the
			// previous attempt's timeout cancelled.
			ResetContextOnRetry: true,
		}
		stack := []message.HandlerMiddleware{
			b.tracing.middleware(c.Queue),
			DeadLetter(c.Queue, b.publisher, config.Metrics, config.Logger),
			rideOutOutage(c.Queue, config.Unavailable, config.OutageTimeout, config.Logger),
			retry.Middleware,
			stopRetryingPermanent(config.Permanent),
			logAttempts(c.Queue, config.Logger),
			middleware.Timeout(config.HandlerTimeout),
			config.Metrics.middleware(c.Queue),
			middleware.Recoverer,
		}
		h := router.AddConsumerHandler(c.Queue, c.Queue, b.subscriber(c.Concurrency), c.Handler)
		h.AddMiddleware(stack...)
	}
	return router, nil
}

// stopRetryingPermanent ends Retry's attempts at a permanent error: one wrapped by
// Permanent, or one that isPermanent (may be nil) says is, which it wraps so that
// DeadLetter reports it as such. It is a middleware rather than Retry.ShouldRetry because,
// in Watermill 1.5, computing ShouldRetry's Delay argument advances the backoff: every
// wait would double and every other step be skipped.
func stopRetryingPermanent(isPermanent func(error) bool) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			out, err := h(msg)
			if err != nil && !IsPermanent(err) && isPermanent != nil && isPermanent(err) {
				err = Permanent(err)
			}
			if IsPermanent(err) {
				return out, backoff.Permanent(err) // Retry unwraps it again
			}
			return out, err
		}
	}
}

// rideOutOutage tries a message again while its failure says a dependency is down, for up
// to limit, so that a database restart does not send every message handled meanwhile to
// the dead-letter queue. It gives up early when the message's context ends (shutdown):
// DeadLetter then returns the message to the queue.
func rideOutOutage(queue string, unavailable func(error) bool, limit time.Duration, logger *slog.Logger) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		if unavailable == nil {
			return h
		}
		return func(msg *message.Message) ([]*message.Message, error) {
			ctx := msg.Context()
			deadline := time.Now().Add(limit)
			for wait := 500 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
				msg.SetContext(ctx) // the inner attempts' timeouts replace it
				out, err := h(msg)
				if err == nil || IsPermanent(err) || !unavailable(err) || time.Now().Add(wait).After(deadline) {
					return out, err
				}
				logger.WarnContext(ctx, "dependency unavailable; waiting it out", "queue", queue,
					"message_id", msg.UUID, "wait", wait.String(), "error", err)
				select {
				case <-ctx.Done():
					return out, err
				case <-time.After(wait):
				}
			}
		}
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
