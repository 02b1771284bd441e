// Package outbox is the transactional outbox: a service writes the events of a state
// change into its own database in the same transaction as the change, and a relay
// publishes them to the broker afterwards. An event is therefore published if and only if
// its change committed, even when the broker was down at the time (it goes out when the
// broker is back).
//
// It is built from Watermill's parts: watermill-sql stores the messages (one table per
// service database) and components/forwarder relays them, with each message's destination
// topic kept in an envelope.
package outbox

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/components/forwarder"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/propagation"
)

// sqlTopic names the outbox table (watermill_outbox) and the forwarder's topic.
const sqlTopic = "outbox"

var schema = wsql.DefaultPostgreSQLSchema{}

// Store writes msgs to the outbox inside tx, to be published to topic once tx commits.
// The trace context of ctx is stored with each message, so the eventual publish continues
// the trace of the request that caused it.
func Store(ctx context.Context, tx pgx.Tx, p propagation.TextMapPropagator, topic string, msgs ...*message.Message) error {
	for _, msg := range msgs {
		p.Inject(ctx, propagation.MapCarrier(msg.Metadata))
	}
	pub, err := wsql.NewPublisher(wsql.TxFromPgx(tx), wsql.PublisherConfig{SchemaAdapter: schema}, watermill.NopLogger{})
	if err != nil {
		return fmt.Errorf("outbox store: %w", err)
	}
	fwd := forwarder.NewPublisher(pub, forwarder.PublisherConfig{ForwarderTopic: sqlTopic})
	if err := fwd.Publish(topic, msgs...); err != nil {
		return fmt.Errorf("outbox store %s: %w", topic, err)
	}
	return nil
}

// Config configures a Relay.
type Config struct {
	// PollInterval is how often the relay looks for new messages when idle. Default 50 ms.
	PollInterval time.Duration
	// RetryInterval is how long the relay waits after a failed publish. Default 1 s.
	RetryInterval time.Duration
}

func (c *Config) setDefaults() {
	if c.PollInterval == 0 {
		c.PollInterval = 50 * time.Millisecond
	}
	if c.RetryInterval == 0 {
		c.RetryInterval = time.Second
	}
}

// Relay publishes what Store wrote, in order, to the broker. Only one replica's relay
// publishes at a time (watermill-sql locks the consumer group's offset row); a publish that
// fails is retried until it succeeds, so messages are published at least once.
type Relay struct {
	fwd *forwarder.Forwarder
}

// NewRelay creates the outbox tables if needed and returns a relay from pool to out.
func NewRelay(ctx context.Context, pool *pgxpool.Pool, out message.Publisher, config Config, logger *slog.Logger) (*Relay, error) {
	config.setDefaults()
	wlog := watermill.NewSlogLoggerWithLevelMapping(logger, map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug})
	sub, err := wsql.NewSubscriber(wsql.BeginnerFromPgx(pool), wsql.SubscriberConfig{
		ConsumerGroup:    "relay",
		PollInterval:     config.PollInterval,
		ResendInterval:   config.RetryInterval,
		RetryInterval:    config.RetryInterval,
		SchemaAdapter:    schema,
		OffsetsAdapter:   wsql.DefaultPostgreSQLOffsetsAdapter{},
		InitializeSchema: true,
	}, wlog)
	if err != nil {
		return nil, fmt.Errorf("outbox relay: %w", err)
	}
	// Create the tables now: Store runs inside service transactions and cannot.
	if err := sub.SubscribeInitialize(sqlTopic); err != nil {
		return nil, fmt.Errorf("outbox relay: initialize schema: %w", err)
	}
	fwd, err := forwarder.NewForwarder(sub, out, wlog, forwarder.Config{ForwarderTopic: sqlTopic})
	if err != nil {
		return nil, fmt.Errorf("outbox relay: %w", err)
	}
	return &Relay{fwd: fwd}, nil
}

// Run relays until ctx is cancelled.
func (r *Relay) Run(ctx context.Context) error {
	if err := r.fwd.Run(ctx); err != nil {
		return fmt.Errorf("outbox relay: %w", err)
	}
	return nil
}
