package orders

import (
	"encoding/json"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/propagation"

	"github.com/warrenhq/warren/services/order/migrations"
	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/messaging"
	"github.com/warrenhq/warren/shared/outbox"
	"github.com/warrenhq/warren/shared/postgres"
	"github.com/warrenhq/warren/shared/testkit"
)

type fixture struct {
	pool   *pgxpool.Pool
	ledger *postgres.Ledger
	handle message.NoPublishHandlerFunc
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
	h := NewHandlers(pool, ledger, NewStore(pool), propagation.TraceContext{}, nil, slog.New(slog.DiscardHandler))
	return fixture{pool: pool, ledger: ledger, handle: h.StockEvents()}
}

// pending inserts a pending order and returns its id.
func (f fixture) pending(t *testing.T) string {
	t.Helper()
	id := uuid.NewString()
	_, err := f.pool.Exec(t.Context(), `INSERT INTO orders (id, status, customer_name, customer_email, customer_phone, region, total_cents)
		VALUES ($1, 'pending', 'Ada', 'ada@example.com', '+442079460958', 'europe', 1299)`, id)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// row is what a verdict can change: the order's status, reason and update time, and the
// outbox.
type row struct {
	status, reason string
	updatedAt      time.Time
	outbox         int
}

func (f fixture) row(t *testing.T, id string) row {
	t.Helper()
	var r row
	err := f.pool.QueryRow(t.Context(), `SELECT status, reason, updated_at, (SELECT count(*) FROM outbox_messages) FROM orders WHERE id = $1`, id).
		Scan(&r.status, &r.reason, &r.updatedAt, &r.outbox)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// The verdict settles a pending order and stores its event; redelivered (on the
// one-statement path, or old and recorded on the ledger's) it changes nothing; a second,
// different verdict finds the order no longer pending and leaves it.
func TestSettleOnceAndRedeliveryChangesNothing(t *testing.T) {
	f := newFixture(t)
	id := f.pending(t)
	now := time.Now()
	reserved := events.StockReserved{OrderID: id, Region: events.RegionEurope}
	if err := f.handle(testkit.Delivered(t, events.TypeStockReserved, "m-1", now, reserved)); err != nil {
		t.Fatal(err)
	}
	settled := f.row(t, id)
	if settled.status != "confirmed" || settled.outbox != 1 {
		t.Fatalf("after the verdict: %+v, want confirmed with one outbox event", settled)
	}
	var stored struct {
		Customer   events.Customer `json:"customer"`
		TotalCents int64           `json:"total_cents"`
	}
	var payload []byte
	if err := f.pool.QueryRow(t.Context(), `SELECT payload FROM outbox_messages`).Scan(&payload); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(payload, &stored); err != nil || stored.Customer.Phone != "+442079460958" || stored.TotalCents != 1299 {
		t.Errorf("OrderConfirmed %s (%v), want the order's customer and total", payload, err)
	}

	old := now.Add(-f.ledger.Horizon() - time.Hour)
	for _, at := range []time.Time{now, old} {
		if err := f.handle(testkit.Delivered(t, events.TypeStockReserved, "m-1", at, reserved)); err != nil {
			t.Fatalf("redelivery: %v", err)
		}
		if got := f.row(t, id); got != settled {
			t.Errorf("a redelivered verdict (occurred %s) changed %+v to %+v", at, settled, got)
		}
	}
	out := events.StockOutOfStock{OrderID: id, Region: events.RegionEurope, MissingSKU: []string{"rare-orchid"}}
	if err := f.handle(testkit.Delivered(t, events.TypeStockOutOfStock, "m-2", now, out)); err != nil {
		t.Fatal(err)
	}
	if got := f.row(t, id); got != settled {
		t.Errorf("a second verdict changed %+v to %+v", settled, got)
	}
}

// A verdict older than the ledger's horizon without a record is refused and changes
// nothing; one for an order that does not exist is a permanent failure that leaves no
// record.
func TestOldVerdictWithoutRecordIsRefused(t *testing.T) {
	f := newFixture(t)
	id := f.pending(t)
	before := f.row(t, id)
	old := time.Now().Add(-f.ledger.Horizon() - time.Hour)
	err := f.handle(testkit.Delivered(t, events.TypeStockReserved, "m-old", old, events.StockReserved{OrderID: id, Region: events.RegionEurope}))
	if !errors.Is(err, postgres.ErrBeyondHorizon) || !postgres.IsPermanent(err) {
		t.Errorf("old verdict: %v, want a permanent ErrBeyondHorizon", err)
	}
	if got := f.row(t, id); got != before {
		t.Errorf("the refused verdict changed %+v to %+v", before, got)
	}
	err = f.handle(testkit.Delivered(t, events.TypeStockReserved, "m-none", time.Now(), events.StockReserved{OrderID: uuid.NewString(), Region: events.RegionEurope}))
	if !errors.Is(err, ErrNotFound) || !messaging.IsPermanent(err) {
		t.Errorf("verdict for no order: %v, want a permanent ErrNotFound", err)
	}
	var n int
	if err := f.pool.QueryRow(t.Context(), `SELECT count(*) FROM processed_messages`).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d ledger records (%v), want none", n, err)
	}
}
