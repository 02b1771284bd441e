package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/propagation"

	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/messaging"
	"github.com/warrenhq/warren/shared/outbox"
	"github.com/warrenhq/warren/shared/postgres"
	"github.com/warrenhq/warren/shared/testkit"
)

func TestMain(m *testing.M) { os.Exit(testkit.Run(m)) }

// An event stored in a transaction that rolls back is never published; the ones that
// commit are published, in the order they were stored.
func TestRelayPublishesCommittedEventsInOrderAndNothingElse(t *testing.T) {
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	topology := events.Topology(events.DefaultSMSRegions)
	amqpURL := testkit.SharedRabbitMQ(t).VHost(t)
	ch := testkit.DeclareTopology(t, amqpURL, topology)

	pool, err := postgres.Connect(ctx, testkit.SharedPostgres(t).Database(t), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if err := postgres.Migrate(ctx, pool, fstest.MapFS{}); err != nil {
		t.Fatal(err)
	}
	broker, err := messaging.Connect(ctx, messaging.Config{URL: amqpURL}, topology, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	relay, err := outbox.NewRelay(ctx, pool, broker.Publisher(), outbox.Config{}, logger)
	if err != nil {
		t.Fatal(err)
	}

	store := func(i int, commit bool) {
		err := postgres.InTx(ctx, pool, func(tx pgx.Tx) error {
			msg, err := messaging.NewEvent(events.TypeOrderCancelled, fmt.Sprint(i), events.OrderCancelled{OrderID: fmt.Sprint(i)})
			if err != nil {
				return err
			}
			if err := outbox.Store(ctx, tx, propagation.TraceContext{}, messaging.Topic(events.ExchangeOrderEvents, ""), msg); err != nil {
				return err
			}
			if !commit {
				return errors.New("roll back")
			}
			return nil
		})
		if commit && err != nil {
			t.Fatal(err)
		}
	}
	// Stored while the relay is not running yet: it must catch up.
	for i := range 5 {
		store(i, i != 2)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- relay.Run(runCtx) }()
	defer func() { cancel(); <-done }()
	for i := 5; i < 8; i++ {
		store(i, true)
	}

	var got []string
	for range 7 {
		got = append(got, testkit.Get(t, ch, events.QueueInventory, 20*time.Second).CorrelationId)
	}
	if fmt.Sprint(got) != "[0 1 3 4 5 6 7]" {
		t.Errorf("published %v, want [0 1 3 4 5 6 7]: committed ones, in order, never the rolled-back 2", got)
	}
	time.Sleep(300 * time.Millisecond) // several poll intervals: nothing more may come
	if n := testkit.Depth(t, ch, events.QueueInventory); n != 0 {
		t.Errorf("%d more messages published", n)
	}
}
