package stats

import (
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/warrenhq/warren/services/analytics/migrations"
	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/postgres"
	"github.com/warrenhq/warren/shared/testkit"
)

func openPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool, err := postgres.Open(t.Context(), testkit.SharedPostgres(t).Database(t), time.Minute, migrations.FS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func readOrder(t *testing.T, pool *pgxpool.Pool, id string) Order {
	t.Helper()
	var o Order
	var region, status string
	if err := pool.QueryRow(t.Context(), `SELECT region, status, total_cents FROM orders WHERE order_id = $1`, id).
		Scan(&region, &status, &o.TotalCents); err != nil {
		t.Fatalf("read order %s: %v", id, err)
	}
	o.Region, o.Status = events.Region(region), Status(status)
	return o
}

// Record's SQL merge ends where Order.Apply does, for every sequence of up to three
// events, in any order: Order.Apply is the rule, the statement its implementation.
func TestRecordMergesAsOrderApply(t *testing.T) {
	pool := openPool(t)
	store := NewStore(pool)
	total, other := int64(1000), int64(700)
	updates := []Update{
		{Region: events.RegionEurope, Status: StatusPending, TotalCents: &total}, // OrderPlaced
		{Region: events.RegionEurope, Status: StatusConfirmed, TotalCents: &total},
		{Region: events.RegionEurope, Status: StatusConfirmed}, // no total
		{Status: StatusRejected}, // no region
		{Region: events.RegionAsia, Status: StatusCancelled, TotalCents: &other},
	}
	var sequences [][]Update
	var grow func(seq []Update)
	grow = func(seq []Update) {
		if len(seq) > 0 {
			sequences = append(sequences, seq)
		}
		if len(seq) == 3 {
			return
		}
		for _, u := range updates {
			grow(append(seq[:len(seq):len(seq)], u))
		}
	}
	grow(nil)

	for i, seq := range sequences {
		id := fmt.Sprintf("o-%d", i)
		var want Order
		for j, u := range seq {
			u.OrderID = id
			want = want.Apply(u)
			first, err := store.Record(t.Context(), pool, Event{Consumer: "test", MessageID: fmt.Sprintf("%s-m%d", id, j), Update: &u, Type: "t"})
			if err != nil || !first {
				t.Fatalf("record %s event %d: first %v, %v", id, j, first, err)
			}
		}
		if got := readOrder(t, pool, id); !reflect.DeepEqual(got, want) {
			t.Errorf("%+v: got %+v (total %v), want %+v (total %v)", seq, got, deref(got.TotalCents), want, deref(want.TotalCents))
		}
	}
}

func deref(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

type fixture struct {
	pool   *pgxpool.Pool
	ledger *postgres.Ledger
	handle message.NoPublishHandlerFunc
}

func newFixture(t *testing.T) fixture {
	pool := openPool(t)
	ledger, err := postgres.NewLedger(postgres.LedgerConfig{LedgerRetention: 720 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	h := NewHandlers(pool, ledger, NewStore(pool), slog.New(slog.DiscardHandler))
	return fixture{pool: pool, ledger: ledger, handle: h.Events()}
}

func (f fixture) stats(t *testing.T) Stats {
	t.Helper()
	st, err := NewStore(f.pool).Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// A redelivered message changes nothing, on the one-statement path as on the ledger's.
func TestRedeliveryChangesNothing(t *testing.T) {
	f := newFixture(t)
	now := time.Now()
	placed := events.OrderPlaced{OrderID: "o-1", Region: events.RegionEurope, TotalCents: 1000,
		Items: []events.Item{{SKU: "carrot-seeds", Quantity: 1, UnitPriceCents: 1000}}}
	confirmed := events.OrderConfirmed{OrderID: "o-1", Region: events.RegionEurope, TotalCents: 1000}
	cancelled := events.OrderCancelled{OrderID: "o-1", Region: events.RegionEurope}
	for _, m := range []*message.Message{
		testkit.Delivered(t, events.TypeOrderPlaced, "m-1", now, placed),
		testkit.Delivered(t, events.TypeOrderConfirmed, "m-2", now, confirmed),
		testkit.Delivered(t, events.TypeStockReserved, "m-3", now, events.StockReserved{OrderID: "o-1", Region: events.RegionEurope}),
	} {
		if err := f.handle(m); err != nil {
			t.Fatal(err)
		}
	}
	before := f.stats(t)
	if before.Events[events.TypeOrderPlaced] != 1 || before.RevenueCents != 1000 {
		t.Fatalf("stats after the first deliveries: %+v", before)
	}

	// The same ids again, one of them now with a payload that would change the order
	// (cancelling it) were it applied, and one old enough to take the ledger's path.
	old := now.Add(-f.ledger.Horizon() - time.Hour)
	for _, m := range []*message.Message{
		testkit.Delivered(t, events.TypeOrderPlaced, "m-1", now, placed),
		testkit.Delivered(t, events.TypeOrderCancelled, "m-2", now, cancelled),
		testkit.Delivered(t, events.TypeStockReserved, "m-3", old, events.StockReserved{OrderID: "o-1", Region: events.RegionEurope}),
	} {
		if err := f.handle(m); err != nil {
			t.Fatalf("redelivery of %s: %v", m.UUID, err)
		}
	}
	if after := f.stats(t); !reflect.DeepEqual(after, before) {
		t.Errorf("a redelivery changed the stats:\n got %+v\nwant %+v", after, before)
	}
}

// A message older than the ledger's horizon that has no record is refused (it may have been
// applied already and its record expired), and changes nothing; a fresh one next to it is
// recorded.
func TestOldMessageWithoutRecordIsRefused(t *testing.T) {
	f := newFixture(t)
	old := time.Now().Add(-f.ledger.Horizon() - time.Hour)
	err := f.handle(testkit.Delivered(t, events.TypeOrderCancelled, "m-old", old, events.OrderCancelled{OrderID: "o-1", Region: events.RegionEurope}))
	if !errors.Is(err, postgres.ErrBeyondHorizon) || !postgres.IsPermanent(err) {
		t.Fatalf("old message: %v, want a permanent ErrBeyondHorizon", err)
	}
	if st := f.stats(t); len(st.Events) != 0 || st.Orders[events.RegionEurope][StatusCancelled] != 0 {
		t.Errorf("the refused message changed the stats: %+v", st)
	}
	var n int
	if err := f.pool.QueryRow(t.Context(), `SELECT count(*) FROM processed_messages`).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d ledger records (%v), want none: the refusal rolls its record back", n, err)
	}
	if err := f.handle(testkit.Delivered(t, events.TypeOrderCancelled, "m-new", time.Now(), events.OrderCancelled{OrderID: "o-1", Region: events.RegionEurope})); err != nil {
		t.Fatal(err)
	}
	if st := f.stats(t); st.Events[events.TypeOrderCancelled] != 1 {
		t.Errorf("the fresh message was not counted: %+v", st)
	}
}
