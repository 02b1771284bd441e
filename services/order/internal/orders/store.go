package orders

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/messaging"
)

// Store keeps orders and the product catalogue in PostgreSQL. Methods that take a pgx.Tx
// run inside the caller's transaction, so a state change commits together with the
// processed-message record and the outbox event that announce it.
type Store struct {
	pool *pgxpool.Pool
}

// NewStore returns a Store on pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// querier is what a pool and a transaction both offer: reads run on either.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Products returns the catalogue, cheapest first.
func (s *Store) Products(ctx context.Context) ([]Product, error) {
	rows, err := s.pool.Query(ctx, `SELECT sku, name, price_cents FROM products ORDER BY price_cents, sku`)
	if err != nil {
		return nil, fmt.Errorf("products: %w", err)
	}
	products, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Product, error) {
		var p Product
		err := row.Scan(&p.SKU, &p.Name, &p.PriceCents)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("products: %w", err)
	}
	return products, nil
}

// Prices returns the catalogue price of each of skus that exists; unknown SKUs are absent.
func (s *Store) Prices(ctx context.Context, tx pgx.Tx, skus []string) (map[string]int64, error) {
	rows, err := tx.Query(ctx, `SELECT sku, price_cents FROM products WHERE sku = ANY($1)`, skus)
	if err != nil {
		return nil, fmt.Errorf("prices: %w", err)
	}
	defer rows.Close()
	prices := make(map[string]int64, len(skus))
	for rows.Next() {
		var sku string
		var cents int64
		if err := rows.Scan(&sku, &cents); err != nil {
			return nil, fmt.Errorf("prices: %w", err)
		}
		prices[sku] = cents
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("prices: %w", err)
	}
	return prices, nil
}

// Insert stores a new order with its items and returns it with the database's timestamps.
func (s *Store) Insert(ctx context.Context, tx pgx.Tx, o Order) (Order, error) {
	err := tx.QueryRow(ctx, `
		INSERT INTO orders (id, status, customer_name, customer_email, customer_phone, region, total_cents, reason, customer_subject)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULLIF($9, ''))
		RETURNING created_at, updated_at`,
		o.ID, string(o.Status), o.Customer.Name, o.Customer.Email, o.Customer.Phone, string(o.Region), o.TotalCents, o.Reason, o.Owner,
	).Scan(&o.CreatedAt, &o.UpdatedAt)
	if err != nil {
		return o, fmt.Errorf("insert order %s: %w", o.ID, err)
	}
	lines := make([]int32, len(o.Items))
	skus := make([]string, len(o.Items))
	quantities := make([]int32, len(o.Items))
	prices := make([]int64, len(o.Items))
	for i, it := range o.Items {
		lines[i], skus[i], quantities[i], prices[i] = int32(i), it.SKU, int32(it.Quantity), it.UnitPriceCents
	}
	// One round trip for all items, however many there are.
	_, err = tx.Exec(ctx, `
		INSERT INTO order_items (order_id, line, sku, quantity, unit_price_cents)
		SELECT $1, t.line, t.sku, t.quantity, t.price
		FROM unnest($2::int[], $3::text[], $4::int[], $5::bigint[]) AS t (line, sku, quantity, price)`,
		o.ID, lines, skus, quantities, prices)
	if err != nil {
		return o, fmt.Errorf("insert order %s: items: %w", o.ID, err)
	}
	return o, nil
}

// Get returns the order with id that owner placed, or ErrNotFound: someone else's order is
// not found either, so a customer cannot tell it from one that does not exist.
func (s *Store) Get(ctx context.Context, id, owner string) (Order, error) {
	return load(ctx, s.pool, id, &owner, false)
}

// LockOwned returns the order with id that owner placed, or ErrNotFound (someone else's
// order too), and locks it until tx ends: whoever changes an order's status locks it first
// (this, or Settle's statement), so two changes cannot interleave.
func (s *Store) LockOwned(ctx context.Context, tx pgx.Tx, id, owner string) (Order, error) {
	return load(ctx, tx, id, &owner, true)
}

// openOrdersLock is the first key of the transaction advisory lock on a customer's
// pending orders (the second is a hash of the subject). The two-key form is a key space of
// its own: it cannot meet the migrations' single-key lock.
const openOrdersLock = 1

// LockPending counts owner's pending orders and, until tx ends, makes every other
// transaction that counts them wait (on any replica: the lock is the database's). Checking
// the quota and inserting the order under it make the quota exact: two requests at once
// cannot both see room for one. Two subjects may share a hash: they then wait for each
// other, never see each other's orders.
func (s *Store) LockPending(ctx context.Context, tx pgx.Tx, owner string) (int, error) {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, openOrdersLock, owner); err != nil {
		return 0, fmt.Errorf("lock pending orders of %s: %w", owner, err)
	}
	var n int
	err := tx.QueryRow(ctx, `SELECT count(*) FROM orders WHERE customer_subject = $1 AND status = 'pending'`, owner).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count pending orders of %s: %w", owner, err)
	}
	return n, nil
}

// SetStatus moves o to status with reason and returns it as stored.
func (s *Store) SetStatus(ctx context.Context, tx pgx.Tx, o Order, status Status, reason string) (Order, error) {
	err := tx.QueryRow(ctx, `UPDATE orders SET status = $2, reason = $3, updated_at = now() WHERE id = $1 RETURNING updated_at`,
		o.ID, string(status), reason).Scan(&o.UpdatedAt)
	if err != nil {
		return o, fmt.Errorf("set status of %s to %s: %w", o.ID, status, err)
	}
	o.Status, o.Reason = status, reason
	return o, nil
}

// load reads the order with id; with owner non-nil, only if *owner placed it (an order
// nobody owns, placed before authentication, matches no owner).
func load(ctx context.Context, db querier, id string, owner *string, lock bool) (Order, error) {
	uid, err := uuid.Parse(id)
	if err != nil {
		// Not a UUID: no order can have it, and PostgreSQL would reject the comparison.
		return Order{}, fmt.Errorf("load %q: %w", id, ErrNotFound)
	}
	o := Order{ID: uid.String()}
	query := `SELECT status, customer_name, customer_email, customer_phone, region, total_cents, reason, created_at, updated_at,
			coalesce(customer_subject, '')
		FROM orders WHERE id = $1`
	args := []any{o.ID}
	if owner != nil {
		query += ` AND customer_subject = $2`
		args = append(args, *owner)
	}
	if lock {
		query += ` FOR UPDATE`
	}
	err = db.QueryRow(ctx, query, args...).Scan(&o.Status, &o.Customer.Name, &o.Customer.Email, &o.Customer.Phone,
		&o.Region, &o.TotalCents, &o.Reason, &o.CreatedAt, &o.UpdatedAt, &o.Owner)
	if errors.Is(err, pgx.ErrNoRows) {
		return o, fmt.Errorf("load %s: %w", o.ID, ErrNotFound)
	}
	if err != nil {
		return o, fmt.Errorf("load %s: %w", o.ID, err)
	}
	rows, err := db.Query(ctx, `SELECT sku, quantity, unit_price_cents FROM order_items WHERE order_id = $1 ORDER BY line`, o.ID)
	if err != nil {
		return o, fmt.Errorf("load %s: items: %w", o.ID, err)
	}
	o.Items, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (events.Item, error) {
		var it events.Item
		err := row.Scan(&it.SKU, &it.Quantity, &it.UnitPriceCents)
		return it, err
	})
	if err != nil {
		return o, fmt.Errorf("load %s: items: %w", o.ID, err)
	}
	return o, nil
}

// claim is what ClaimKey found: the key was free and is now this transaction's, or an
// earlier request holds it for orderID with requestHash.
type claim struct {
	claimed     bool
	orderID     string
	requestHash []byte
}

// ClaimKey records key for orderID and requestHash in tx. When a committed request holds
// the key already it returns that request's order and hash instead. A concurrent request
// with the same key makes this wait until that request's transaction ends (the primary
// key's unique index), so of two racing duplicates exactly one places an order and the
// other then sees it.
func (s *Store) ClaimKey(ctx context.Context, tx pgx.Tx, key IdempotencyKey, requestHash []byte, orderID string) (claim, error) {
	tag, err := tx.Exec(ctx, `
		INSERT INTO idempotency_keys (subject, key, request_hash, order_id) VALUES ($1, $2, $3, $4)
		ON CONFLICT (subject, key) DO NOTHING`,
		key.Subject, key.Key, requestHash, orderID)
	if err != nil {
		return claim{}, fmt.Errorf("claim idempotency key: %w", err)
	}
	if tag.RowsAffected() == 1 {
		return claim{claimed: true, orderID: orderID, requestHash: requestHash}, nil
	}
	// A statement of its own: at READ COMMITTED it sees the row the other transaction
	// committed while the INSERT waited, which the INSERT's own snapshot does not.
	c := claim{}
	err = tx.QueryRow(ctx, `SELECT order_id::text, request_hash FROM idempotency_keys WHERE subject = $1 AND key = $2`,
		key.Subject, key.Key).Scan(&c.orderID, &c.requestHash)
	if err != nil {
		// pgx.ErrNoRows here means the cleanup deleted an expired key in between.
		return claim{}, fmt.Errorf("read idempotency key: %w", err)
	}
	return c, nil
}

// StuckOrders are the orders pending for too long: how many, by whether their OrderPlaced
// is still in the outbox, and the oldest of them.
type StuckOrders struct {
	Unpublished, Published int
	Oldest                 []StuckOrder
}

// StuckOrder is one order pending for too long.
type StuckOrder struct {
	ID        string
	CreatedAt time.Time
	// Unpublished tells that its OrderPlaced is still in the outbox.
	Unpublished bool
}

// PendingLongerThan returns the orders pending for longer than age, with the oldest limit
// of them. Whether an order's OrderPlaced is still unpublished is read from the outbox's
// table (shared/outbox), read-only: the outbox is small unless the broker is away, and
// the uncorrelated IN reads it once per check, not once per order.
func (s *Store) PendingLongerThan(ctx context.Context, age time.Duration, limit int) (StuckOrders, error) {
	rows, err := s.pool.Query(ctx, `
		WITH stuck AS (
			SELECT o.id, o.created_at,
				o.id::text IN (SELECT m.metadata->>$2 FROM outbox_messages m
					WHERE m.metadata->>$3 = $4 AND m.metadata ? $2) AS unpublished
			FROM orders o
			WHERE o.status = 'pending' AND o.created_at < now() - make_interval(secs => $1)
		)
		SELECT id::text, created_at, unpublished,
			count(*) FILTER (WHERE unpublished) OVER (), count(*) FILTER (WHERE NOT unpublished) OVER ()
		FROM stuck ORDER BY created_at LIMIT $5`,
		age.Seconds(), messaging.HeaderCorrelationID, messaging.HeaderType, events.TypeOrderPlaced, limit)
	if err != nil {
		return StuckOrders{}, fmt.Errorf("pending orders: %w", err)
	}
	defer rows.Close()
	var stuck StuckOrders
	for rows.Next() {
		var o StuckOrder
		if err := rows.Scan(&o.ID, &o.CreatedAt, &o.Unpublished, &stuck.Unpublished, &stuck.Published); err != nil {
			return StuckOrders{}, fmt.Errorf("pending orders: %w", err)
		}
		stuck.Oldest = append(stuck.Oldest, o)
	}
	if err := rows.Err(); err != nil {
		return StuckOrders{}, fmt.Errorf("pending orders: %w", err)
	}
	return stuck, nil
}

// PendingOlderThan counts the pending orders older than each of thresholds (ascending),
// cumulatively: the count for a threshold includes the older orders of the next ones. One
// pass over the index of pending orders, however many there are.
func (s *Store) PendingOlderThan(ctx context.Context, thresholds []time.Duration) ([]int64, error) {
	secs := make([]float64, len(thresholds))
	for i, d := range thresholds {
		secs[i] = d.Seconds()
	}
	// width_bucket gives each order the number of thresholds its age has reached (0 for
	// one younger than the first).
	rows, err := s.pool.Query(ctx, `
		SELECT width_bucket(greatest(extract(epoch FROM now() - created_at)::float8, 0), $1::float8[]), count(*)
		FROM orders WHERE status = 'pending' GROUP BY 1`, secs)
	if err != nil {
		return nil, fmt.Errorf("pending orders by age: %w", err)
	}
	defer rows.Close()
	counts := make([]int64, len(thresholds))
	for rows.Next() {
		var reached int
		var n int64
		if err := rows.Scan(&reached, &n); err != nil {
			return nil, fmt.Errorf("pending orders by age: %w", err)
		}
		for i := range min(reached, len(counts)) {
			counts[i] += n
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pending orders by age: %w", err)
	}
	return counts, nil
}
