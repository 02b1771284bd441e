// Package stock is the inventory service's business: reserving stock for orders,
// releasing it when they are cancelled, and answering stock queries.
package stock

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/postgres"
)

// ErrUnknownSKU is returned for a SKU the inventory does not stock.
var ErrUnknownSKU = errors.New("unknown sku")

// Store keeps stock levels and reservations in PostgreSQL. Methods that take a pgx.Tx
// run inside the caller's transaction, so a reservation commits together with the
// processed-message record and the outbox event that announce it.
type Store struct {
	pool *pgxpool.Pool
}

// NewStore returns a Store on pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// reserveSQL marks the message, skips an order cancelled already, locks the wanted stock
// rows in SKU order ($3, sorted), and takes the stock and records the reservation unless
// a SKU is unknown or short. It reports whether the message was new, whether the order was
// cancelled, and the missing SKUs.
//
// Every part reads mark, so a duplicate changes and locks nothing. The lock comes first:
// the NOT EXISTS (missing) the writes test is evaluated once, before either writes a row,
// and reading missing reads all of locked; locked is MATERIALIZED so that it is run once,
// as its own scan, whatever the planner would fold.
const reserveSQL = `WITH mark AS (%s),
wanted AS (SELECT * FROM unnest($3::text[], $4::int[]) AS w (sku, quantity)),
cancelled AS (SELECT 1 FROM cancelled_orders WHERE order_id = $5),
locked AS MATERIALIZED (
	SELECT sku, available FROM stock
	WHERE sku = ANY ($3) AND EXISTS (SELECT 1 FROM mark) AND NOT EXISTS (SELECT 1 FROM cancelled)
	ORDER BY sku FOR UPDATE
),
missing AS (
	SELECT w.sku FROM wanted w LEFT JOIN locked l USING (sku)
	WHERE l.available IS NULL OR l.available < w.quantity
),
proceed AS (
	SELECT 1 FROM mark WHERE NOT EXISTS (SELECT 1 FROM cancelled) AND NOT EXISTS (SELECT 1 FROM missing)
),
taken AS (
	UPDATE stock s SET available = s.available - w.quantity, updated_at = now()
	FROM wanted w WHERE s.sku = w.sku AND EXISTS (SELECT 1 FROM proceed)
),
recorded AS (
	INSERT INTO reservations (order_id, sku, quantity)
	SELECT $5, w.sku, w.quantity FROM wanted w WHERE EXISTS (SELECT 1 FROM proceed)
)
SELECT EXISTS (SELECT 1 FROM mark), EXISTS (SELECT 1 FROM cancelled),
	coalesce((SELECT array_agg(sku ORDER BY sku) FROM missing), '{}')`

// Reservation is what Reserve did.
type Reservation struct {
	// First is false for a message already processed: nothing was done.
	First bool
	// Cancelled is true when the order was cancelled before: nothing was reserved.
	Cancelled bool
	// Missing lists the SKUs that are unknown or short; when it is empty (and the message
	// was new and the order not cancelled) the stock was taken.
	Missing []string
}

// Reserve marks d processed and reserves every item of an order or nothing, in one
// statement (one round trip) inside tx, where the caller writes the outbox event that
// announces the outcome. Rows are locked in SKU order, so concurrent reservations (and
// releases, which lock the same way) cannot deadlock.
func (s *Store) Reserve(ctx context.Context, tx pgx.Tx, d postgres.Delivery, orderID string, items []events.Item) (Reservation, error) {
	wanted := map[string]int{}
	for _, it := range items {
		wanted[it.SKU] += it.Quantity
	}
	skus := make([]string, 0, len(wanted))
	for sku := range wanted {
		skus = append(skus, sku)
	}
	sort.Strings(skus)
	quantities := make([]int32, len(skus))
	for i, sku := range skus {
		quantities[i] = int32(wanted[sku])
	}

	var r Reservation
	err := tx.QueryRow(ctx, fmt.Sprintf(reserveSQL, d.MarkSQL()), d.Consumer, d.MessageID, skus, quantities, orderID).
		Scan(&r.First, &r.Cancelled, &r.Missing)
	if err != nil {
		return Reservation{}, fmt.Errorf("reserve %s: %w", orderID, err)
	}
	if len(r.Missing) == 0 {
		r.Missing = nil
	}
	return r, nil
}

// releaseSQL marks the message, writes the order's tombstone (so that an OrderPlaced
// handled later reserves nothing), locks the stock rows the order holds in SKU order, as
// Reserve does, and puts them back. The stock update only touches rows locked already:
// an update in whatever order its join yields would let two orders handled at once that
// hold the same SKUs in opposite order deadlock (PostgreSQL then aborts one of them).
const releaseSQL = `WITH mark AS (%s),
tombstone AS (
	INSERT INTO cancelled_orders (order_id) SELECT $3 FROM mark ON CONFLICT DO NOTHING
),
locked AS MATERIALIZED (
	SELECT sku FROM stock WHERE sku IN (
		SELECT sku FROM reservations WHERE order_id = $3 AND released_at IS NULL
	) AND EXISTS (SELECT 1 FROM mark)
	ORDER BY sku FOR UPDATE
),
freed AS (
	UPDATE reservations r SET released_at = now()
	FROM locked l WHERE r.order_id = $3 AND r.released_at IS NULL AND r.sku = l.sku
	RETURNING r.sku, r.quantity
),
restocked AS (
	UPDATE stock SET available = stock.available + freed.quantity, updated_at = now()
	FROM freed WHERE stock.sku = freed.sku
	RETURNING 1
)
SELECT EXISTS (SELECT 1 FROM mark), (SELECT count(*) FROM restocked) > 0`

// Release marks d processed, puts back what orderID holds and marks the order cancelled,
// in one statement inside tx. It reports whether the message was new and whether anything
// was held.
func (s *Store) Release(ctx context.Context, tx pgx.Tx, d postgres.Delivery, orderID string) (first, released bool, err error) {
	err = tx.QueryRow(ctx, fmt.Sprintf(releaseSQL, d.MarkSQL()), d.Consumer, d.MessageID, orderID).Scan(&first, &released)
	if err != nil {
		return false, false, fmt.Errorf("release %s: %w", orderID, err)
	}
	return first, released, nil
}

// TombstoneExpiry is the retention of the cancelled_orders tombstones: after is
// TOMBSTONE_RETENTION. A tombstone is needed only until its order's OrderPlaced has been
// handled or refused, and the ledger refuses any OrderPlaced older than its horizon: after
// must therefore be at least the ledger's retention (Config.Validate checks it).
func TombstoneExpiry(after time.Duration) postgres.Expiry {
	return postgres.Expiry{Table: "cancelled_orders", Column: "cancelled_at", After: after}
}

// Level returns the available stock of sku, or ErrUnknownSKU.
func (s *Store) Level(ctx context.Context, sku string) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT available FROM stock WHERE sku = $1`, sku).Scan(&n)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("level %s: %w", sku, ErrUnknownSKU)
	}
	if err != nil {
		return 0, fmt.Errorf("level %s: %w", sku, err)
	}
	return n, nil
}

// SetLevel sets the available stock of sku, adding the SKU if it is new (restocking).
func (s *Store) SetLevel(ctx context.Context, sku string, available int) error {
	_, err := s.pool.Exec(ctx, `
		INSERT INTO stock (sku, available) VALUES ($1, $2)
		ON CONFLICT (sku) DO UPDATE SET available = EXCLUDED.available, updated_at = now()`, sku, available)
	if err != nil {
		return fmt.Errorf("set level %s: %w", sku, err)
	}
	return nil
}
