package stats

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/warrenhq/warren/shared/events"
)

// Store keeps the running totals in PostgreSQL. Methods that take a pgx.Tx run inside the
// handler's transaction, so totals move exactly when an event is marked processed.
type Store struct {
	pool *pgxpool.Pool
}

// NewStore returns a Store on pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Apply applies u to its order. A new order is inserted as u describes it; a known one is
// locked, merged in Go (see Order.Apply) and written back, so two events of one order
// handled at once (several replicas) apply one after the other.
func (s *Store) Apply(ctx context.Context, tx pgx.Tx, u Update) error {
	tag, err := tx.Exec(ctx, `INSERT INTO orders (order_id, region, status, total_cents)
		VALUES ($1, $2, $3, $4) ON CONFLICT (order_id) DO NOTHING`, u.OrderID, u.Region, u.Status, u.TotalCents)
	if err != nil {
		return fmt.Errorf("apply %s: %w", u.OrderID, err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var o Order
	err = tx.QueryRow(ctx, `SELECT region, status, total_cents FROM orders WHERE order_id = $1 FOR UPDATE`, u.OrderID).
		Scan(&o.Region, &o.Status, &o.TotalCents)
	if err != nil {
		return fmt.Errorf("apply %s: lock: %w", u.OrderID, err)
	}
	o = o.Apply(u)
	_, err = tx.Exec(ctx, `UPDATE orders SET region = $2, status = $3, total_cents = $4, updated_at = now()
		WHERE order_id = $1`, u.OrderID, o.Region, o.Status, o.TotalCents)
	if err != nil {
		return fmt.Errorf("apply %s: update: %w", u.OrderID, err)
	}
	return nil
}

// Count adds one to the counter of message type typ. Every event updates one of a handful
// of counter rows, so handlers call it last: the row lock is held only until commit.
func (s *Store) Count(ctx context.Context, tx pgx.Tx, typ string) error {
	_, err := tx.Exec(ctx, `INSERT INTO event_counts (type, count) VALUES ($1, 1)
		ON CONFLICT (type) DO UPDATE SET count = event_counts.count + 1`, typ)
	if err != nil {
		return fmt.Errorf("count %s: %w", typ, err)
	}
	return nil
}

// Stats are the running totals GET /stats serves.
type Stats struct {
	// Orders counts orders by region and status. Every region and status is present,
	// zero if need be; orders whose region is not known yet are under "unknown".
	Orders map[events.Region]map[Status]int64 `json:"orders"`
	// RevenueCents sums the totals of confirmed orders; a cancelled order no longer counts.
	RevenueCents int64 `json:"revenue_cents"`
	// Events counts the events handled, by type.
	Events map[string]int64 `json:"events"`
}

// RegionUnknown is the key of orders whose region no event has told yet.
const RegionUnknown events.Region = "unknown"

// Stats reads the totals from one snapshot, so they add up with each other.
func (s *Store) Stats(ctx context.Context) (Stats, error) {
	st := Stats{Orders: map[events.Region]map[Status]int64{}, Events: map[string]int64{}}
	for _, r := range events.Regions {
		st.Orders[r] = zeroStatuses()
	}
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT region, status, count(*) FROM orders GROUP BY region, status`)
		if err != nil {
			return err
		}
		var region events.Region
		var status Status
		var n int64
		if _, err := pgx.ForEachRow(rows, []any{&region, &status, &n}, func() error {
			if region == "" {
				region = RegionUnknown
			}
			if st.Orders[region] == nil {
				st.Orders[region] = zeroStatuses()
			}
			st.Orders[region][status] = n
			return nil
		}); err != nil {
			return err
		}
		err = tx.QueryRow(ctx, `SELECT coalesce(sum(total_cents), 0) FROM orders WHERE status = $1`, StatusConfirmed).
			Scan(&st.RevenueCents)
		if err != nil {
			return err
		}
		var typ string
		rows, err = tx.Query(ctx, `SELECT type, count FROM event_counts`)
		if err != nil {
			return err
		}
		_, err = pgx.ForEachRow(rows, []any{&typ, &n}, func() error {
			st.Events[typ] = n
			return nil
		})
		return err
	})
	if err != nil {
		return Stats{}, fmt.Errorf("stats: %w", err)
	}
	return st, nil
}

func zeroStatuses() map[Status]int64 {
	m := make(map[Status]int64, len(Statuses))
	for _, s := range Statuses {
		m[s] = 0
	}
	return m
}
