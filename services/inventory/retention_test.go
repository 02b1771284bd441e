package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenhq/warren/services/inventory/migrations"
	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/messaging"
	"github.com/warrenhq/warren/shared/postgres"
	"github.com/warrenhq/warren/shared/service"
	"github.com/warrenhq/warren/shared/testkit"
)

// publishOccurred publishes an OrderPlaced on the order.events fanout stamped, as
// messaging.NewEvent stamps every event, with when it occurred.
func (s *inventory) publishOccurred(messageID string, order events.OrderPlaced, occurredAt time.Time) {
	s.T.Helper()
	body, err := json.Marshal(order)
	if err != nil {
		s.T.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	confirm, err := s.Ch.PublishWithDeferredConfirmWithContext(ctx, events.ExchangeOrderEvents, "", false, false, amqp.Publishing{
		ContentType: "application/json", DeliveryMode: amqp.Persistent,
		MessageId: messageID, Type: events.TypeOrderPlaced, CorrelationId: order.OrderID, Body: body,
		Headers: amqp.Table{messaging.HeaderOccurredAt: occurredAt.UTC().Format(time.RFC3339Nano)},
	})
	if err != nil {
		s.T.Fatal(err)
	}
	if ok, err := confirm.WaitContext(ctx); err != nil || !ok {
		s.T.Fatalf("publish %s: not confirmed (%v)", messageID, err)
	}
}

// An OrderPlaced replayed from the dead-letter archive after the ledger's horizon (27 days
// at the default 30-day LEDGER_RETENTION) may have reserved its stock already, its record
// since expired: it is dead-lettered with the reason and reserves nothing. A fresh one
// next to it reserves as always.
func TestOrderPlacedOlderThanTheLedgerHorizonIsDeadLetteredNotReserved(t *testing.T) {
	s := startInventory(t)
	s.setStock("widget", 10)

	s.publishOccurred("msg-old", placedOrder("o-old", events.RegionEurope, events.Item{SKU: "widget", Quantity: 3}),
		time.Now().Add(-28*24*time.Hour))
	s.publishOccurred("msg-new", placedOrder("o-new", events.RegionEurope, events.Item{SKU: "widget", Quantity: 2}),
		time.Now())

	d := testkit.Get(t, s.Ch, messaging.DeadLetterQueueName(events.QueueInventory), 30*time.Second)
	reason, _ := d.Headers[messaging.HeaderDeadLetterReason].(string)
	if d.MessageId != "msg-old" || !strings.HasPrefix(reason, "permanent: ") ||
		!strings.Contains(reason, "horizon (27d)") || !strings.Contains(reason, "may have been applied already") {
		t.Errorf("dead letter %s with reason %q, want msg-old refused as older than the horizon", d.MessageId, reason)
	}
	if tries := d.Headers[messaging.HeaderDeadLetterTries]; tries != "1" {
		t.Errorf("refused after %v attempts, want 1: age is not fixed by retrying", tries)
	}
	out := s.settle(events.QueueOrder)
	if len(out) != 1 || out[0].CorrelationId != "o-new" || out[0].Type != events.TypeStockReserved {
		t.Fatalf("%d outcomes, want only o-new's reservation", len(out))
	}
	if got := s.stock("widget"); got != 8 {
		t.Errorf("stock %d, want 8: only the fresh order of 2 reserves", got)
	}
	if n := testkit.Depth(t, s.Ch, messaging.DeadLetterQueueName(events.QueueInventory)); n != 0 {
		t.Errorf("%d more dead letters, want none", n)
	}
}

// The sweeper runs as the service starts: ledger records and tombstones older than their
// retention (30 days by default) are deleted, younger ones kept.
func TestExpiredRecordsAreSweptAtStart(t *testing.T) {
	url := testkit.SharedPostgres(t).Database(t)
	db := openMigrated(t, url)
	exec(t, db, `INSERT INTO cancelled_orders (order_id, cancelled_at) VALUES
		('expired', now() - interval '31 days'), ('kept', now() - interval '29 days')`)
	exec(t, db, `INSERT INTO processed_messages (consumer, message_id, processed_at) VALUES
		('q', 'expired', now() - interval '31 days'), ('q', 'kept', now() - interval '29 days')`)

	startInventoryWith(t, map[string]string{"DATABASE_URL": url})

	testkit.Eventually(t, 20*time.Second, func() string {
		if n := count(t, db, `SELECT count(*) FROM cancelled_orders WHERE order_id = 'expired'`) +
			count(t, db, `SELECT count(*) FROM processed_messages WHERE message_id = 'expired'`); n > 0 {
			return fmt.Sprintf("%d expired rows left", n)
		}
		return ""
	})
	if n := count(t, db, `SELECT count(*) FROM cancelled_orders WHERE order_id = 'kept'`) +
		count(t, db, `SELECT count(*) FROM processed_messages WHERE message_id = 'kept'`); n != 2 {
		t.Errorf("%d of the 2 rows younger than the retention left", n)
	}
}

// openMigrated returns a pool on url with the inventory's schema, as the service makes it.
func openMigrated(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	db, err := postgres.Open(context.Background(), url, 30*time.Second, migrations.FS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return db
}

func exec(t *testing.T, db *pgxpool.Pool, sql string) {
	t.Helper()
	if _, err := db.Exec(context.Background(), sql); err != nil {
		t.Fatal(err)
	}
}

func count(t *testing.T, db *pgxpool.Pool, sql string) int {
	t.Helper()
	var n int
	if err := db.QueryRow(context.Background(), sql).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// A tombstone kept less long than the ledger's records would let an OrderPlaced the ledger
// still accepts miss its cancellation: the service refuses to start.
func TestTombstonesMustOutliveTheLedger(t *testing.T) {
	t.Setenv("TOMBSTONE_RETENTION", "24h")
	if _, err := service.LoadConfig[Config](slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "TOMBSTONE_RETENTION") {
		t.Errorf("TOMBSTONE_RETENTION shorter than LEDGER_RETENTION: %v, want a configuration error naming it", err)
	}
}
