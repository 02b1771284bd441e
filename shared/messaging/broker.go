package messaging

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wamqp "github.com/ThreeDotsLabs/watermill-amqp/v2/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
	amqp "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Config configures a Broker. The zero value of every field but URL has a sensible default.
type Config struct {
	// URL is the AMQP URL, e.g. amqp://order:secret@rabbitmq:5672/ (amqps:// for TLS).
	URL string
	// TLS, when set, is used for amqps:// URLs (a custom CA, client certificates).
	TLS *tls.Config
	// PublishChannels is the size of the publisher's channel pool: how many Publish calls
	// run at once (each pipelines its own messages). Default 16.
	PublishChannels int
	// Prefetch is how many unacked deliveries the broker sends each consumer ahead of time.
	// Default 16.
	Prefetch int
	// ConnectTimeout bounds how long Connect keeps retrying the first connection.
	// Default 60 s; later reconnects go on forever with backoff.
	ConnectTimeout time.Duration
	// TracerProvider and Propagator default to the OpenTelemetry globals.
	TracerProvider trace.TracerProvider
	Propagator     propagation.TextMapPropagator
}

func (c *Config) setDefaults() {
	if c.PublishChannels == 0 {
		c.PublishChannels = 16
	}
	if c.Prefetch == 0 {
		c.Prefetch = 16
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = 60 * time.Second
	}
	if c.TracerProvider == nil {
		c.TracerProvider = otel.GetTracerProvider()
	}
	if c.Propagator == nil {
		c.Propagator = otel.GetTextMapPropagator()
	}
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if c.URL == "" {
		return errors.New("messaging config: URL is empty")
	}
	if c.PublishChannels < 1 || c.Prefetch < 1 {
		return errors.New("messaging config: PublishChannels and Prefetch must be positive")
	}
	return nil
}

// Broker is a service's link to RabbitMQ: one connection for publishing and one for
// consuming (RabbitMQ blocks a publishing connection under memory pressure; a consumer on
// the same connection would then stop acking and make it worse). Both reconnect by
// themselves with backoff. A Broker is safe for concurrent use.
type Broker struct {
	config   Config
	topology Topology
	logger   watermill.LoggerAdapter
	tracing  tracing

	pubConn, subConn *wamqp.ConnectionWrapper
	publisher        message.Publisher
	subscriber       *wamqp.Subscriber
}

// Connect connects to the broker, retrying until config.ConnectTimeout so that a service
// started before RabbitMQ is ready waits for it instead of crashing.
func Connect(ctx context.Context, config Config, topology Topology, logger *slog.Logger) (*Broker, error) {
	config.setDefaults()
	if err := config.Validate(); err != nil {
		return nil, err
	}
	b := &Broker{
		config:   config,
		topology: topology,
		logger:   watermill.NewSlogLoggerWithLevelMapping(logger, map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug}),
		tracing:  newTracing(config.TracerProvider, config.Propagator),
	}
	var err error
	if b.pubConn, err = b.dial(ctx); err != nil {
		return nil, fmt.Errorf("connect publisher: %w", err)
	}
	if b.subConn, err = b.dial(ctx); err != nil {
		_ = b.pubConn.Close()
		return nil, fmt.Errorf("connect subscriber: %w", err)
	}
	b.publisher = b.tracing.publisher(newPublisher(b.pubConn, topology, config.PublishChannels))
	if b.subscriber, err = wamqp.NewSubscriberWithConnection(b.subscriberConfig(), b.logger, b.subConn); err != nil {
		b.Close()
		return nil, fmt.Errorf("create subscriber: %w", err)
	}
	return b, nil
}

func (b *Broker) dial(ctx context.Context) (*wamqp.ConnectionWrapper, error) {
	ctx, cancel := context.WithTimeout(ctx, b.config.ConnectTimeout)
	defer cancel()
	reconnect := wamqp.DefaultReconnectConfig()
	// The library's default grows to 60 s between attempts: too slow to notice that a
	// restarted broker is back.
	reconnect.BackoffMaxInterval = 5 * time.Second
	for wait := 250 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		conn, err := wamqp.NewConnection(wamqp.ConnectionConfig{
			AmqpURI:   b.config.URL,
			TLSConfig: b.config.TLS,
			Reconnect: reconnect,
		}, b.logger)
		if err == nil {
			return conn, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		case <-time.After(wait):
		}
	}
}

// subscriberConfig is the watermill-amqp configuration of the subscriber. (Publishing is
// Warren's own publisher: see publisher.go.)
func (b *Broker) subscriberConfig() wamqp.Config {
	return wamqp.Config{
		Connection: wamqp.ConnectionConfig{AmqpURI: b.config.URL, TLSConfig: b.config.TLS},
		Marshaler:  Marshaler{},
		// A subscriber's topic is its queue's name; the queue's bindings come from the
		// topology, not from watermill-amqp (whose v2 binds with the queue name as key).
		Exchange: wamqp.ExchangeConfig{GenerateName: func(string) string { return "" }},
		Queue:    wamqp.QueueConfig{GenerateName: wamqp.GenerateQueueNameTopicName},
		Consume: wamqp.ConsumeConfig{
			// A nack only happens when the subscriber shuts down with a message in flight
			// or a dead-letter publish failed: both must requeue. Failed messages are
			// dead-lettered explicitly by the DeadLetter middleware, with a reason.
			NoRequeueOnNack: false,
			Qos:             wamqp.QosConfig{PrefetchCount: b.config.Prefetch},
		},
		TopologyBuilder: topologyBuilder{b.topology},
	}
}

// topologyBuilder lets watermill-amqp (re)declare what it uses from Warren's Topology, on
// start and after every reconnect.
type topologyBuilder struct{ topology Topology }

func (t topologyBuilder) ExchangeDeclare(ch *amqp.Channel, exchange string, _ wamqp.Config) error {
	return t.topology.DeclareExchange(ch, exchange)
}

func (t topologyBuilder) BuildTopology(ch *amqp.Channel, queue, _ string, _ wamqp.Config, _ watermill.LoggerAdapter) error {
	return t.topology.DeclareQueue(ch, queue)
}

// Publisher returns the broker's publisher: persistent messages, publisher confirms, trace
// context injected, a producer span per message. Publish returns once the broker has
// confirmed every message, or an error; it returns at once when disconnected.
func (b *Broker) Publisher() message.Publisher { return b.publisher }

// Subscriber returns the broker's subscriber. Subscribe's topic is a queue name from the
// topology; the queue, its dead-letter queue and its bindings are declared first.
func (b *Broker) Subscriber() message.Subscriber { return b.subscriber }

// Declare declares the given queues (with their dead-letter queues and bindings) and
// exchanges, so that a service's topology exists before it publishes its first message.
func (b *Broker) Declare(queues []string, exchanges []string) error {
	ch, err := b.subConn.Connection().Channel()
	if err != nil {
		return fmt.Errorf("declare: open channel: %w", err)
	}
	defer ch.Close()
	for _, e := range exchanges {
		if err := b.topology.DeclareExchange(ch, e); err != nil {
			return fmt.Errorf("declare: %w", err)
		}
	}
	for _, q := range queues {
		if err := b.topology.DeclareQueue(ch, q); err != nil {
			return fmt.Errorf("declare: %w", err)
		}
	}
	return nil
}

// Connected reports whether both connections are up; readiness probes use it.
func (b *Broker) Connected() bool {
	return b.pubConn != nil && b.pubConn.IsConnected() && b.subConn != nil && b.subConn.IsConnected()
}

// Close closes the publisher, the subscriber and both connections.
func (b *Broker) Close() error {
	var errs []error
	if b.subscriber != nil {
		errs = append(errs, b.subscriber.Close())
	}
	if b.publisher != nil {
		errs = append(errs, b.publisher.Close())
	}
	for _, c := range []*wamqp.ConnectionWrapper{b.subConn, b.pubConn} {
		if c != nil {
			errs = append(errs, c.Close())
		}
	}
	return errors.Join(errs...)
}

// Check is a readiness check: nil while both connections are up.
func (b *Broker) Check(context.Context) error {
	if !b.Connected() {
		return errors.New("not connected to RabbitMQ")
	}
	return nil
}

// Unbind removes bindings from queue. Declaring never removes a binding, so a service
// whose configuration narrows its bindings (sms's regions) unbinds what it no longer wants.
// Removing a binding that does not exist is not an error.
func (b *Broker) Unbind(queue string, bindings []Binding) error {
	ch, err := b.subConn.Connection().Channel()
	if err != nil {
		return fmt.Errorf("unbind: open channel: %w", err)
	}
	defer ch.Close()
	for _, bd := range bindings {
		if err := ch.QueueUnbind(queue, bd.Key, bd.Exchange, nil); err != nil {
			return fmt.Errorf("unbind %s from %s %q: %w", queue, bd.Exchange, bd.Key, err)
		}
	}
	return nil
}
