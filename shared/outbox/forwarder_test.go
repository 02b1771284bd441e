package outbox_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/components/forwarder"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/propagation"

	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/messaging"
	"github.com/warrenhq/warren/shared/outbox"
	"github.com/warrenhq/warren/shared/postgres"
	"github.com/warrenhq/warren/shared/testkit"
)

// The previous outbox, kept here as the benchmarks' baseline and to test the upgrade from
// it: watermill-sql stored the messages (table watermill_outbox) and Watermill's forwarder
// relayed them one at a time, polling every 50 ms when idle.

const forwarderTopic = "outbox"

var forwarderSchema = wsql.DefaultPostgreSQLSchema{}

func forwarderStore(ctx context.Context, tx pgx.Tx, p propagation.TextMapPropagator, topic string, msgs ...*message.Message) error {
	for _, msg := range msgs {
		p.Inject(ctx, propagation.MapCarrier(msg.Metadata))
	}
	pub, err := wsql.NewPublisher(wsql.TxFromPgx(tx), wsql.PublisherConfig{SchemaAdapter: forwarderSchema}, watermill.NopLogger{})
	if err != nil {
		return err
	}
	return forwarder.NewPublisher(pub, forwarder.PublisherConfig{ForwarderTopic: forwarderTopic}).Publish(topic, msgs...)
}

// newForwarder creates the previous outbox's tables and returns its relay.
func newForwarder(pool *pgxpool.Pool, out message.Publisher, logger *slog.Logger) (*forwarder.Forwarder, error) {
	wlog := watermill.NewSlogLogger(logger)
	sub, err := wsql.NewSubscriber(wsql.BeginnerFromPgx(pool), wsql.SubscriberConfig{
		ConsumerGroup:    "relay",
		PollInterval:     50 * time.Millisecond,
		ResendInterval:   time.Second,
		RetryInterval:    time.Second,
		SchemaAdapter:    forwarderSchema,
		OffsetsAdapter:   wsql.DefaultPostgreSQLOffsetsAdapter{},
		InitializeSchema: true,
	}, wlog)
	if err != nil {
		return nil, err
	}
	if err := sub.SubscribeInitialize(forwarderTopic); err != nil {
		return nil, err
	}
	return forwarder.NewForwarder(sub, out, wlog, forwarder.Config{ForwarderTopic: forwarderTopic})
}

// A service upgraded from the previous outbox publishes what it had stored and not yet
// relayed, and none of what it had relayed.
func TestRelayTakesOverThePreviousOutbox(t *testing.T) {
	e := newEnv(t, testkit.SharedRabbitMQ(t).VHost(t))
	ctx := context.Background()
	if _, err := newForwarder(e.pool, e.broker.Publisher(), e.logger); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		err := postgres.InTx(ctx, e.pool, func(tx pgx.Tx) error {
			msg, err := messaging.NewEvent(events.TypeOrderCancelled, fmt.Sprint(i), events.OrderCancelled{OrderID: fmt.Sprint(i)})
			if err != nil {
				return err
			}
			return forwarderStore(ctx, tx, propagation.TraceContext{}, fanout, msg)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// As the forwarder records having relayed the first two.
	if _, err := e.pool.Exec(ctx, `INSERT INTO watermill_offsets_outbox (consumer_group, offset_acked, last_processed_transaction_id)
		SELECT 'relay', "offset", transaction_id FROM watermill_outbox ORDER BY transaction_id, "offset" OFFSET 1 LIMIT 1`); err != nil {
		t.Fatal(err)
	}

	e.start(t, outbox.Config{})
	e.store(ctx, t, true, "new")
	if got := labels(e.receive(t, 3, 20*time.Second)); fmt.Sprint(got) != "[2 3 new]" {
		t.Errorf("published %v, want [2 3 new]", got)
	}
	var left bool
	if err := e.pool.QueryRow(ctx, `SELECT to_regclass('watermill_outbox') IS NOT NULL`).Scan(&left); err != nil || left {
		t.Errorf("watermill_outbox still there (%v)", err)
	}
}
