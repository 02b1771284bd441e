package stats

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/postgres"
)

// Store keeps the running totals in PostgreSQL. Record moves them in the statement (or
// the transaction) that marks the event processed, so totals move exactly when an event is
// marked processed.
type Store struct {
	pool *pgxpool.Pool
}

// NewStore returns a Store on pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Querier runs one statement: the pool (the statement commits on its own) or a
// transaction.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Event is one message to record: its processed-message record, what it says about its
// order, and its type to count.
type Event struct {
	// Consumer and MessageID are the processed-message ledger's key (see postgres.Ledger).
	Consumer, MessageID string
	// Marked means the caller has marked the message processed already, in the transaction
	// Record runs in; otherwise Record marks it.
	Marked bool
	// Update is what the event says about its order; nil for an event that is only counted.
	Update *Update
	// Type is the message type whose counter goes up.
	Type string
}

// recordSQL does all of Record in one statement, so on the pool it is one round trip and
// commits on its own, with no BEGIN and COMMIT. Every part reads "FROM mark", which has a
// row only when the message is new: a duplicate changes nothing.
//
// The ledger insert is postgres.Ledger.Mark's, unchanged; when the caller marked the
// message already, mark is a row of its own (%s is replaced by one or the other).
//
// The orders upsert is Order.Apply in SQL (a test holds the two to the same results): a
// new order is inserted as the event describes it; a known one is merged under the row
// lock ON CONFLICT takes, so two events of one order handled at once (several replicas)
// apply one after the other. The status moves only to one of higher precedence ($8 lists
// Statuses in that order), region and total are filled in once and then kept.
//
// The main query reads mark; the two inserts then run to completion in the order written,
// so each statement locks its order's row before its counter row, and two statements
// cannot wait for each other. The counter goes last because every event updates one of a
// handful of counter rows: its lock is held only until the statement commits.
const recordSQL = `WITH mark AS (%s),
upsert AS (
	INSERT INTO orders AS o (order_id, region, status, total_cents)
	SELECT $3::text, $4::text, $5::text, $6::bigint FROM mark WHERE $3::text IS NOT NULL
	ON CONFLICT (order_id) DO UPDATE SET
		status = CASE WHEN array_position($8::text[], excluded.status) > array_position($8::text[], o.status)
			THEN excluded.status ELSE o.status END,
		region = CASE WHEN o.region = '' THEN excluded.region ELSE o.region END,
		total_cents = coalesce(o.total_cents, excluded.total_cents),
		updated_at = now()
),
counted AS (
	INSERT INTO event_counts (type, count) SELECT $7::text, 1 FROM mark
	ON CONFLICT (type) DO UPDATE SET count = event_counts.count + 1
)
SELECT count(*) FROM mark`

var (
	markNew    = fmt.Sprintf(recordSQL, postgres.Delivery{}.MarkSQL())
	markedOnce = fmt.Sprintf(recordSQL, postgres.Delivery{Marked: true}.MarkSQL())
	precedence = func() []string {
		out := make([]string, len(Statuses))
		for i, s := range Statuses {
			out[i] = string(s)
		}
		return out
	}()
)

// Record marks e processed (unless e.Marked), applies its update to its order and counts
// its type, all in one statement on q, and reports whether the message was new. For a
// message already recorded it changes nothing and reports false.
//
// It does not judge the message's age: a caller whose message may be older than the
// ledger's horizon marks it with postgres.Ledger.Mark in a transaction first (see
// Handlers).
func (s *Store) Record(ctx context.Context, q Querier, e Event) (first bool, err error) {
	sql := markNew
	if e.Marked {
		sql = markedOnce
	}
	var orderID, region, status *string
	var total *int64
	if u := e.Update; u != nil {
		orderID, total = &u.OrderID, u.TotalCents
		r, st := string(u.Region), string(u.Status)
		region, status = &r, &st
	}
	var n int
	err = q.QueryRow(ctx, sql, e.Consumer, e.MessageID, orderID, region, status, total, e.Type, precedence).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("record %s %s: %w", e.Type, e.MessageID, err)
	}
	return n == 1, nil
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
