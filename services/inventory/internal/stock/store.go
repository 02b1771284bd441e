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

// Reserve reserves every item of an order or nothing. It returns the SKUs that are unknown
// or short; when that list is empty the stock was taken. Rows are locked in SKU order, so
// concurrent reservations cannot deadlock.
func (s *Store) Reserve(ctx context.Context, tx pgx.Tx, orderID string, items []events.Item) (missing []string, err error) {
	wanted := map[string]int{}
	for _, it := range items {
		wanted[it.SKU] += it.Quantity
	}
	skus := make([]string, 0, len(wanted))
	for sku := range wanted {
		skus = append(skus, sku)
	}
	sort.Strings(skus)

	rows, err := tx.Query(ctx, `SELECT sku, available FROM stock WHERE sku = ANY($1) ORDER BY sku FOR UPDATE`, skus)
	if err != nil {
		return nil, fmt.Errorf("reserve %s: lock stock: %w", orderID, err)
	}
	available := map[string]int{}
	for rows.Next() {
		var sku string
		var n int
		if err := rows.Scan(&sku, &n); err != nil {
			rows.Close()
			return nil, fmt.Errorf("reserve %s: %w", orderID, err)
		}
		available[sku] = n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reserve %s: %w", orderID, err)
	}
	for _, sku := range skus {
		if n, ok := available[sku]; !ok || n < wanted[sku] {
			missing = append(missing, sku)
		}
	}
	if len(missing) > 0 {
		return missing, nil
	}
	for _, sku := range skus {
		if _, err := tx.Exec(ctx, `UPDATE stock SET available = available - $2, updated_at = now() WHERE sku = $1`, sku, wanted[sku]); err != nil {
			return nil, fmt.Errorf("reserve %s: take %s: %w", orderID, sku, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO reservations (order_id, sku, quantity) VALUES ($1, $2, $3)`, orderID, sku, wanted[sku]); err != nil {
			return nil, fmt.Errorf("reserve %s: record %s: %w", orderID, sku, err)
		}
	}
	return nil, nil
}

// Release puts back what orderID holds and marks the order cancelled, so that an
// OrderPlaced handled later reserves nothing. It reports whether anything was held.
func (s *Store) Release(ctx context.Context, tx pgx.Tx, orderID string) (released bool, err error) {
	if _, err := tx.Exec(ctx, `INSERT INTO cancelled_orders (order_id) VALUES ($1) ON CONFLICT DO NOTHING`, orderID); err != nil {
		return false, fmt.Errorf("release %s: %w", orderID, err)
	}
	// Lock the stock rows first, in SKU order as Reserve does: the UPDATE below would lock
	// them in whatever order its join yields, and two orders handled at once holding the
	// same SKUs in opposite order deadlock (PostgreSQL then aborts one of them).
	if _, err := tx.Exec(ctx, `SELECT 1 FROM stock WHERE sku IN (
			SELECT sku FROM reservations WHERE order_id = $1 AND released_at IS NULL
		) ORDER BY sku FOR UPDATE`, orderID); err != nil {
		return false, fmt.Errorf("release %s: lock stock: %w", orderID, err)
	}
	tag, err := tx.Exec(ctx, `
		WITH freed AS (
			UPDATE reservations SET released_at = now()
			WHERE order_id = $1 AND released_at IS NULL
			RETURNING sku, quantity
		)
		UPDATE stock SET available = stock.available + freed.quantity, updated_at = now()
		FROM freed WHERE stock.sku = freed.sku`, orderID)
	if err != nil {
		return false, fmt.Errorf("release %s: %w", orderID, err)
	}
	return tag.RowsAffected() > 0, nil
}

// Cancelled reports whether orderID was cancelled.
func (s *Store) Cancelled(ctx context.Context, tx pgx.Tx, orderID string) (bool, error) {
	var found bool
	err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM cancelled_orders WHERE order_id = $1)`, orderID).Scan(&found)
	if err != nil {
		return false, fmt.Errorf("cancelled %s: %w", orderID, err)
	}
	return found, nil
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
