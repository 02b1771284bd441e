package stock

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/propagation"

	"github.com/warrenhq/warren/services/inventory/migrations"
	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/outbox"
	"github.com/warrenhq/warren/shared/postgres"
	"github.com/warrenhq/warren/shared/testkit"
)

type fixture struct {
	pool   *pgxpool.Pool
	ledger *postgres.Ledger
	store  *Store
	placed message.NoPublishHandlerFunc
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	pool, err := postgres.Open(t.Context(), testkit.SharedPostgres(t).Database(t), time.Minute, migrations.FS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	// The relay creates the outbox table; it is not run.
	if _, err := outbox.NewRelay(t.Context(), pool, nil, outbox.Config{}, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	ledger, err := postgres.NewLedger(postgres.LedgerConfig{LedgerRetention: 720 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	store := NewStore(pool)
	h := NewHandlers(pool, ledger, store, nil, propagation.TraceContext{}, Faults{}, slog.New(slog.DiscardHandler))
	return fixture{pool: pool, ledger: ledger, store: store, placed: h.OrderEvents()}
}

// state is what a handled message can change: stock, reservations, tombstones, outbox.
func (f fixture) state(t *testing.T) [4]int {
	t.Helper()
	var s [4]int
	err := f.pool.QueryRow(t.Context(), `SELECT
		(SELECT sum(available) FROM stock),
		(SELECT count(*) FROM reservations WHERE released_at IS NULL),
		(SELECT count(*) FROM cancelled_orders),
		(SELECT count(*) FROM outbox_messages)`).Scan(&s[0], &s[1], &s[2], &s[3])
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A redelivered OrderPlaced or OrderCancelled changes nothing, on the one-statement path
// as on the ledger's (a message older than the horizon that is recorded).
func TestRedeliveryChangesNothing(t *testing.T) {
	f := newFixture(t)
	now := time.Now()
	old := now.Add(-f.ledger.Horizon() - time.Hour)
	items := []events.Item{{SKU: "garden-trowel", Quantity: 2}, {SKU: "carrot-seeds", Quantity: 1}, {SKU: "garden-trowel", Quantity: 1}}
	placed := events.OrderPlaced{OrderID: "o-1", Region: events.RegionEurope, Items: items}
	cancelled := events.OrderCancelled{OrderID: "o-1", Region: events.RegionEurope}
	start := f.state(t)

	if err := f.placed(testkit.Delivered(t, events.TypeOrderPlaced, "m-placed", now, placed)); err != nil {
		t.Fatal(err)
	}
	reserved := f.state(t)
	if reserved[0] != start[0]-4 || reserved[1] != 2 || reserved[3] != 1 {
		t.Fatalf("after the OrderPlaced: %v (from %v), want 4 taken in 2 reservations and 1 outbox event", reserved, start)
	}
	for _, at := range []time.Time{now, old} {
		if err := f.placed(testkit.Delivered(t, events.TypeOrderPlaced, "m-placed", at, placed)); err != nil {
			t.Fatalf("redelivery: %v", err)
		}
		if got := f.state(t); got != reserved {
			t.Errorf("a redelivered OrderPlaced (occurred %s) changed %v to %v", at, reserved, got)
		}
	}

	if err := f.placed(testkit.Delivered(t, events.TypeOrderCancelled, "m-cancel", now, cancelled)); err != nil {
		t.Fatal(err)
	}
	released := f.state(t)
	if released[0] != start[0] || released[1] != 0 || released[2] != 1 || released[3] != 2 {
		t.Fatalf("after the cancellation: %v, want the stock back, a tombstone and a second outbox event", released)
	}
	for _, at := range []time.Time{now, old} {
		if err := f.placed(testkit.Delivered(t, events.TypeOrderCancelled, "m-cancel", at, cancelled)); err != nil {
			t.Fatalf("redelivery: %v", err)
		}
		if got := f.state(t); got != released {
			t.Errorf("a redelivered OrderCancelled (occurred %s) changed %v to %v", at, released, got)
		}
	}
	// A new OrderPlaced for the cancelled order reserves nothing.
	if err := f.placed(testkit.Delivered(t, events.TypeOrderPlaced, "m-placed-again", now, placed)); err != nil {
		t.Fatal(err)
	}
	if got := f.state(t); got != released {
		t.Errorf("an OrderPlaced of a cancelled order changed %v to %v", released, got)
	}
}

// An OrderPlaced or OrderCancelled older than the ledger's horizon without a record is
// refused and changes nothing.
func TestOldMessageWithoutRecordIsRefused(t *testing.T) {
	f := newFixture(t)
	old := time.Now().Add(-f.ledger.Horizon() - time.Hour)
	start := f.state(t)
	for _, m := range []*message.Message{
		testkit.Delivered(t, events.TypeOrderPlaced, "m-old-placed", old, events.OrderPlaced{OrderID: "o-1", Region: events.RegionEurope,
			Items: []events.Item{{SKU: "carrot-seeds", Quantity: 1}}}),
		testkit.Delivered(t, events.TypeOrderCancelled, "m-old-cancel", old, events.OrderCancelled{OrderID: "o-2", Region: events.RegionEurope}),
	} {
		if err := f.placed(m); !errors.Is(err, postgres.ErrBeyondHorizon) || !postgres.IsPermanent(err) {
			t.Errorf("%s: %v, want a permanent ErrBeyondHorizon", m.UUID, err)
		}
	}
	if got := f.state(t); got != start {
		t.Errorf("refused messages changed %v to %v", start, got)
	}
}

// Reserve reports the unknown and short SKUs, sorted, and takes nothing then.
func TestReserveReportsMissingSKUs(t *testing.T) {
	f := newFixture(t)
	start := f.state(t)
	tx, err := f.pool.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	r, err := f.store.Reserve(t.Context(), tx, postgres.Delivery{Consumer: "test", MessageID: "m-1"}, "o-1",
		[]events.Item{{SKU: "rare-orchid", Quantity: 1}, {SKU: "no-such-sku", Quantity: 1}, {SKU: "carrot-seeds", Quantity: 1}})
	if err != nil || !r.First || r.Cancelled || len(r.Missing) != 2 || r.Missing[0] != "no-such-sku" || r.Missing[1] != "rare-orchid" {
		t.Fatalf("Reserve = %+v, %v; want no-such-sku and rare-orchid missing", r, err)
	}
	if err := tx.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := f.state(t); got != start {
		t.Errorf("a reservation with missing SKUs changed %v to %v", start, got)
	}
}
