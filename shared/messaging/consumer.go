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
// when retrying cannot help (dead-lettered at once), an error that says a dependency is
// down (wrapped by Unavailable, or recognised by RouterConfig.Dependencies: the message is
// held and the consumer paused until the dependency answers, never dead-lettered for it),
// or any other error (retried with backoff, then dead-lettered).
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

// Dependency is something handlers need that can be down for a while (a database, a mail
// server), and how to tell from a handler's error that it is.
type Dependency struct {
	// Name appears in readiness and logs, e.g. "postgres".
	Name string
	// Unavailable reports whether err means the dependency could not be reached, as
	// opposed to refusing this message; e.g. postgres.IsUnavailable.
	Unavailable func(error) bool
}

// RouterConfig configures NewRouter.
type RouterConfig struct {
	Retry RetryConfig
	// Dependencies tell errors that mean a dependency is down from other failures, besides
	// those wrapped by messaging.Unavailable. Such a message is not retried and then
	// dead-lettered: the consumer holds it, takes no new deliveries, and tries it again with
	// backoff (250 ms growing to 5 s) until it succeeds, however long the outage.
	Dependencies []Dependency
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
	if c.HandlerTimeout == 0 {
		c.HandlerTimeout = 30 * time.Second
	}
}

// dependencyDown names the dependency err says is down, if it says so.
func (c *RouterConfig) dependencyDown(err error) (string, bool) {
	if err == nil {
		return "", false
	}
	if dependency, ok := UnavailableDependency(err); ok {
		return dependency, true
	}
	if IsPermanent(err) {
		return "", false
	}
	for _, d := range c.Dependencies {
		if d.Unavailable != nil && d.Unavailable(err) {
			return d.Name, true
		}
	}
	return "", false
}

// NewRouter returns a Watermill router that consumes every queue in consumers with the
// same middleware stack, outermost first:
//
//	outage      a dependency that is down (config.Dependencies, Unavailable): the message
//	            is held and tried again until it answers, the consumer paused meanwhile
//	tracing     "process <queue>" consumer span, child of the producer span
//	dead-letter failures that survive retrying go to "<queue>.dlq" with the reason
//	retry       transient errors retried with exponential backoff; permanent ones and
//	            outages not (stopRetrying tells Retry so)
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
		paused := newPause(c.Queue, config.Metrics.pausedGauge(c.Queue))
		sub := b.subscriber(c.Concurrency, paused)
		stack := []message.HandlerMiddleware{
			holdDuringOutage(c.Queue, paused, sub.closing, config.dependencyDown, config.Logger),
			b.tracing.middleware(c.Queue),
			DeadLetter(c.Queue, b.publisher, config.dependencyDown, config.Metrics, config.Logger),
			retry.Middleware,
			stopRetrying(config.Permanent, config.dependencyDown),
			logAttempts(c.Queue, config.Logger),
			middleware.Timeout(config.HandlerTimeout),
			config.Metrics.middleware(c.Queue),
			middleware.Recoverer,
		}
		h := router.AddConsumerHandler(c.Queue, c.Queue, sub, c.Handler)
		h.AddMiddleware(stack...)
	}
	return router, nil
}

// stopRetrying ends Retry's attempts at a permanent error (one wrapped by Permanent, or one
// that isPermanent, which may be nil, says is; it wraps those so that DeadLetter reports
// them as such) and at a dependency outage, which holdDuringOutage waits out with backoff
// of its own instead. It is a middleware rather than Retry.ShouldRetry because, in
// Watermill 1.5, computing ShouldRetry's Delay argument advances the backoff: every wait
// would double and every other step be skipped.
func stopRetrying(isPermanent func(error) bool, isDown func(error) (string, bool)) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			out, err := h(msg)
			if _, down := isDown(err); down {
				return out, backoff.Permanent(err) // Retry unwraps it again
			}
			if err != nil && !IsPermanent(err) && isPermanent != nil && isPermanent(err) {
				err = Permanent(err)
			}
			if IsPermanent(err) {
				return out, backoff.Permanent(err)
			}
			return out, err
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
