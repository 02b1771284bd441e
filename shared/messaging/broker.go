package messaging

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
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
	// Addresses, when set, are the host:port of every node of a RabbitMQ cluster: each
	// connection (and each reconnect) tries them in turn instead of the URL's host, so a
	// service reaches the nodes that are up when one is stopped or paused by a partition.
	// The URL still gives the scheme, credentials and vhost, and with amqps:// the name
	// TLS verifies: every node's certificate must carry the URL's host. Not needed when
	// one DNS name already resolves to every node (Go tries each of its addresses).
	Addresses []string
	// PublishChannels is the size of the publisher's channel pool: how many Publish calls
	// run at once (each pipelines its own messages). Default 16.
	PublishChannels int
	// Prefetch is how many unacked deliveries the broker sends each consumer ahead of time.
	// Default 64: fewer costs the broker more CPU per message on quorum queues (measured
	// 1.6x at 16), and a consumer's handlers should never wait for the network. It is raised
	// to Concurrency when lower.
	Prefetch int
	// Concurrency is how many messages of one queue a service handles at once, unless the
	// Consumer says otherwise. Messages of one order (same correlation id) are always
	// handled one after another; 1 handles the queue strictly in order. Default 8.
	Concurrency int
	// Heartbeat is the AMQP heartbeat interval proposed to the broker (the lower of the
	// two sides' wins). A broker node that vanishes without closing the connection (cut off
	// by a partition, its host lost) is noticed after three silent intervals, when amqp091-go's
	// read deadline passes, and the connection is then re-made to a node that is up. Default
	// 5 s, so 15 s: amqp091-go's own 10 s would take 30 s, the whole time the flow has to
	// resume in after a partition. RabbitMQ advises against values under 5 s (false alarms
	// on a busy node).
	Heartbeat time.Duration
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
		c.Prefetch = 64
	}
	if c.Concurrency == 0 {
		c.Concurrency = 8
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = 5 * time.Second
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
	if c.PublishChannels < 1 || c.Prefetch < 1 || c.Concurrency < 1 {
		return errors.New("messaging config: PublishChannels, Prefetch and Concurrency must be positive")
	}
	if c.Heartbeat < time.Second {
		// amqp091-go would turn an interval under a second into no heartbeat at all.
		return fmt.Errorf("messaging config: Heartbeat %s is under a second", c.Heartbeat)
	}
	return validateAddresses(c.Addresses)
}

// Broker is a service's link to RabbitMQ: one connection for publishing and one for
// consuming (RabbitMQ blocks a publishing connection under memory pressure; a consumer on
// the same connection would then stop acking and make it worse). Both reconnect by
// themselves with backoff. A Broker is safe for concurrent use.
type Broker struct {
	config   Config
	topology Topology
	logger   watermill.LoggerAdapter
	slog     *slog.Logger
	tracing  tracing

	pubConn, subConn *connection
	pubFlow, subFlow *flowControl // whether the broker blocks each connection
	publisher        message.Publisher

	mu          sync.Mutex
	subscribers []*subscriber // one per consumed queue, closed by Close
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
		slog:     logger,
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
	b.pubFlow = watchFlow(b.pubConn, "publish", logger)
	b.subFlow = watchFlow(b.subConn, "consume", logger)
	user, err := brokerUser(config.URL)
	if err != nil {
		_ = b.pubConn.Close()
		_ = b.subConn.Close()
		return nil, err
	}
	b.publisher = b.tracing.publisher(newPublisher(user, b.pubConn, b.pubFlow, topology, config.PublishChannels))
	return b, nil
}

// brokerUser is the user amqp091-go logs in as for url: the URL's, or guest when it names
// none.
func brokerUser(url string) (string, error) {
	uri, err := amqp.ParseURI(url)
	if err != nil {
		return "", fmt.Errorf("messaging config: URL: %w", err)
	}
	return uri.Username, nil
}

func (b *Broker) dial(ctx context.Context) (*connection, error) {
	ctx, cancel := context.WithTimeout(ctx, b.config.ConnectTimeout)
	defer cancel()
	config := b.amqpConfig()
	dial := func() (*amqp.Connection, error) { return amqp.DialConfig(b.config.URL, *config) }
	for wait := 250 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		conn, err := openConnection(dial, b.slog)
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

// amqpConfig is what amqp.DialTLS would use (amqp091-go's defaults, b.config.TLS for
// amqps://) with the configured heartbeat, and a dial function that tries every node when
// the config lists them. A heartbeat in the URL (?heartbeat=N) still takes precedence.
func (b *Broker) amqpConfig() *amqp.Config {
	config := &amqp.Config{TLSClientConfig: b.config.TLS, Heartbeat: b.config.Heartbeat}
	if len(b.config.Addresses) > 0 {
		config.Dial = newNodeDialer(b.config.Addresses).dial
	}
	return config
}

// Publisher returns the broker's publisher: persistent messages, publisher confirms, trace
// context injected, a producer span per message. Publish returns once the broker has
// confirmed every message, or an error; it returns at once when disconnected.
func (b *Broker) Publisher() message.Publisher { return b.publisher }

// subscriber returns a new subscriber on the consuming connection that handles up to
// concurrency messages at once (0: Config.Concurrency) and hands out none while paused.
// Close closes it.
func (b *Broker) subscriber(concurrency int, paused *pause) *subscriber {
	if concurrency < 1 {
		concurrency = b.config.Concurrency
	}
	s := newSubscriber(b.subConn, b.topology, b.config.Prefetch, concurrency, paused, b.slog)
	b.mu.Lock()
	b.subscribers = append(b.subscribers, s)
	b.mu.Unlock()
	return s
}

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
	b.mu.Lock()
	subscribers := b.subscribers
	b.mu.Unlock()
	for _, s := range subscribers {
		errs = append(errs, s.Close())
	}
	if b.publisher != nil {
		errs = append(errs, b.publisher.Close())
	}
	for _, c := range []struct {
		conn *connection
		flow *flowControl
	}{{b.subConn, b.subFlow}, {b.pubConn, b.pubFlow}} {
		if c.conn != nil {
			errs = append(errs, c.flow.closeConnection(c.conn))
		}
	}
	return errors.Join(errs...)
}

// Check is a readiness check: nil while both connections are up, the broker blocks neither
// (a memory or disk alarm: the service can then publish nothing, see ErrBlocked), and no
// consumer is paused because a dependency of its handlers is down (the error names the
// queue and the dependency).
func (b *Broker) Check(context.Context) error {
	if !b.Connected() {
		return errors.New("not connected to RabbitMQ")
	}
	if err := errors.Join(b.pubFlow.err(), b.subFlow.err()); err != nil {
		return fmt.Errorf("RabbitMQ: %w", err)
	}
	b.mu.Lock()
	subscribers := b.subscribers
	b.mu.Unlock()
	var paused []error
	for _, s := range subscribers {
		paused = append(paused, s.paused.check())
	}
	return errors.Join(paused...)
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
