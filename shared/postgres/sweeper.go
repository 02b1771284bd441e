package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Defaults of a Sweeper.
const (
	// DefaultSweepInterval is the time between sweeps. Retentions are days long; sweeping
	// more often only makes smaller batches.
	DefaultSweepInterval = 10 * time.Minute
	// DefaultSweepBatch is how many rows one DELETE removes: small enough that each
	// statement holds its row locks for milliseconds and writes little WAL at once.
	DefaultSweepBatch = 1000
)

// Expiry is how long the rows of one table are kept: a row whose Column (a TIMESTAMPTZ,
// which should be indexed) is older than After is deleted by a Sweeper.
type Expiry struct {
	Table  string
	Column string
	After  time.Duration
}

// Sweeper enforces retentions: it deletes expired rows at start and then every Interval,
// at most BatchSize rows per statement, each statement its own short transaction, so no
// sweep holds a long lock or deletes a whole table in one go. Rows locked by a transaction
// at that moment are skipped (FOR UPDATE SKIP LOCKED) and left to the next sweep, so the
// sweep never waits on a handler, and replicas sweeping at once do not wait on each other.
// The cut-off is computed by the database, so the service's clock plays no part.
type Sweeper struct {
	pool     *pgxpool.Pool
	expiries []Expiry
	logger   *slog.Logger
	// Interval is the time between sweeps (DefaultSweepInterval).
	Interval time.Duration
	// BatchSize is the most rows one statement deletes (DefaultSweepBatch).
	BatchSize int
}

// NewSweeper returns a Sweeper of expiries on pool. Every After must be positive.
func NewSweeper(pool *pgxpool.Pool, logger *slog.Logger, expiries ...Expiry) (*Sweeper, error) {
	for _, e := range expiries {
		if e.After <= 0 {
			return nil, fmt.Errorf("sweeper: retention of %s must be positive, not %s", e.Table, e.After)
		}
	}
	return &Sweeper{pool: pool, expiries: expiries, logger: logger, Interval: DefaultSweepInterval, BatchSize: DefaultSweepBatch}, nil
}

// Run sweeps until ctx ends. A sweep that fails because the database is away is logged and
// tried again at the next interval; one the database rejects as invalid (a table or column
// that does not exist, a missing privilege) is a bug, and ends Run with the error, which
// stops the service.
func (s *Sweeper) Run(ctx context.Context) error {
	ticker := time.NewTicker(s.Interval)
	defer ticker.Stop()
	for {
		if err := s.Sweep(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if isInvalidStatement(err) {
				return err
			}
			s.logger.WarnContext(ctx, "retention sweep failed; trying again later", "error", err, "next_in", s.Interval)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

// Sweep deletes every row expired now, batch after batch, table after table.
func (s *Sweeper) Sweep(ctx context.Context) error {
	for _, e := range s.expiries {
		var total int64
		for {
			n, err := s.DeleteBatch(ctx, e)
			total += n
			if err != nil {
				return err
			}
			if n < int64(s.BatchSize) {
				break
			}
		}
		if total > 0 {
			s.logger.InfoContext(ctx, "expired rows deleted", "table", e.Table, "rows", total, "retention", days(e.After))
		}
	}
	return nil
}

// DeleteBatch deletes at most BatchSize rows of e that are expired, in one statement, and
// returns how many it deleted.
func (s *Sweeper) DeleteBatch(ctx context.Context, e Expiry) (int64, error) {
	table := pgx.Identifier{e.Table}.Sanitize()
	column := pgx.Identifier{e.Column}.Sanitize()
	// ctid = ANY(ARRAY(...)) is a TID scan: the rows the indexed subquery found, nothing else.
	sql := fmt.Sprintf(`DELETE FROM %[1]s WHERE ctid = ANY(ARRAY(
		SELECT ctid FROM %[1]s WHERE %[2]s < now() - $1::bigint * interval '1 microsecond'
		LIMIT $2 FOR UPDATE SKIP LOCKED))`, table, column)
	tag, err := s.pool.Exec(ctx, sql, e.After.Microseconds(), s.BatchSize)
	if err != nil {
		return 0, fmt.Errorf("sweep %s: %w", e.Table, err)
	}
	return tag.RowsAffected(), nil
}

// isInvalidStatement reports whether err is SQLSTATE class 42 (syntax error or access rule
// violation: an undefined table or column, no privilege): retrying cannot fix it.
func isInvalidStatement(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && strings.HasPrefix(pgErr.Code, "42")
}
