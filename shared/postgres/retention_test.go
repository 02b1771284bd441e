package postgres_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/warrenhq/warren/shared/postgres"
)

const day = 24 * time.Hour

func newLedger(t *testing.T, retention time.Duration) *postgres.Ledger {
	t.Helper()
	ledger, err := postgres.NewLedger(postgres.LedgerConfig{LedgerRetention: retention})
	if err != nil {
		t.Fatal(err)
	}
	return ledger
}

func count(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// A message the ledger has no record of and that occurred longer ago than the horizon may
// have been processed and forgotten: Mark refuses it, permanently, with a reason naming the
// horizon, and records nothing. A fresh message, one without a timestamp, and a duplicate
// of an old one still recorded are handled as always.
func TestLedgerRefusesAMessageOlderThanItsHorizon(t *testing.T) {
	pool := connect(t)
	ctx := context.Background()
	if err := postgres.Migrate(ctx, pool, fstest.MapFS{}); err != nil {
		t.Fatal(err)
	}
	ledger := newLedger(t, 30*day)
	if got := ledger.Horizon(); got != 27*day {
		t.Fatalf("horizon %s, want 27 days (the retention less a tenth)", got)
	}
	mark := func(id string, occurredAt time.Time) (first bool, err error) {
		err = postgres.InTx(ctx, pool, func(tx pgx.Tx) error {
			first, err = ledger.Mark(ctx, tx, "q", id, occurredAt)
			return err
		})
		return first, err
	}

	_, err := mark("old", time.Now().Add(-28*day))
	if !errors.Is(err, postgres.ErrBeyondHorizon) || !postgres.IsPermanent(err) {
		t.Fatalf("a message 28 days old: %v, want a permanent ErrBeyondHorizon", err)
	}
	for _, want := range []string{"old", "28d", "27d", "may have been applied already", "README"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("reason %q does not say %q", err, want)
		}
	}
	if n := count(t, pool, `SELECT count(*) FROM processed_messages WHERE message_id = 'old'`); n != 0 {
		t.Errorf("the refused message was recorded (%d rows)", n)
	}

	for _, c := range []struct {
		id         string
		occurredAt time.Time
	}{
		{"fresh", time.Now()},
		{"just-inside", time.Now().Add(-26 * day)},
		{"unstamped", time.Time{}}, // cannot be judged: new
	} {
		if first, err := mark(c.id, c.occurredAt); err != nil || !first {
			t.Errorf("%s: first=%v err=%v, want a first delivery", c.id, first, err)
		}
	}

	// Recorded 26 days ago, redelivered now at 28 days of age: the record says it all.
	if first, err := mark("recorded", time.Now().Add(-26*day)); err != nil || !first {
		t.Fatalf("first delivery: %v %v", first, err)
	}
	if first, err := mark("recorded", time.Now().Add(-28*day)); err != nil || first {
		t.Errorf("a duplicate still recorded, beyond the horizon: first=%v err=%v, want a quiet duplicate", first, err)
	}
}

// The sweeper deletes exactly the rows older than the retention, at most a batch per
// statement, and leaves the others.
func TestSweeperDeletesExpiredRowsInBatches(t *testing.T) {
	pool := connect(t)
	ctx := context.Background()
	if err := postgres.Migrate(ctx, pool, fstest.MapFS{}); err != nil {
		t.Fatal(err)
	}
	ledger := newLedger(t, 30*day)
	insert := func(prefix string, n int, age time.Duration) {
		t.Helper()
		_, err := pool.Exec(ctx, `INSERT INTO processed_messages (consumer, message_id, processed_at)
			SELECT 'q', $1 || i, now() - $2 * interval '1 microsecond' FROM generate_series(1, $3) i`,
			prefix, age.Microseconds(), n)
		if err != nil {
			t.Fatal(err)
		}
	}
	insert("expired-", 250, 31*day)
	insert("kept-", 40, 29*day)
	insert("new-", 10, 0)

	sweeper, err := postgres.NewSweeper(pool, slog.Default(), ledger.Expiry())
	if err != nil {
		t.Fatal(err)
	}
	sweeper.BatchSize = 100
	left := func(prefix string) int {
		return count(t, pool, `SELECT count(*) FROM processed_messages WHERE message_id LIKE $1`, prefix+"%")
	}

	n, err := sweeper.DeleteBatch(ctx, ledger.Expiry())
	if err != nil {
		t.Fatal(err)
	}
	if n != 100 || left("expired-") != 150 {
		t.Fatalf("one batch deleted %d, %d expired rows left; want 100 and 150", n, left("expired-"))
	}
	if err := sweeper.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if e, k, f := left("expired-"), left("kept-"), left("new-"); e != 0 || k != 40 || f != 10 {
		t.Errorf("after the sweep: %d expired, %d kept, %d new rows; want 0, 40, 10", e, k, f)
	}
}

// A sweep of a table or column that does not exist is a bug, not an outage: Run returns it
// (and the service stops) instead of logging it every interval.
func TestSweeperStopsOnAnInvalidExpiry(t *testing.T) {
	pool := connect(t)
	sweeper, err := postgres.NewSweeper(pool, slog.Default(), postgres.Expiry{Table: "no_such_table", Column: "at", After: day})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sweeper.Run(ctx); err == nil || ctx.Err() != nil {
		t.Fatalf("Run returned %v (context %v), want the database's error at once", err, ctx.Err())
	}
}

func TestRetentionsMustBePositive(t *testing.T) {
	if _, err := postgres.NewLedger(postgres.LedgerConfig{}); err == nil {
		t.Error("a ledger without retention was accepted")
	}
	if _, err := postgres.NewSweeper(nil, slog.Default(), postgres.Expiry{Table: "t", Column: "c", After: -time.Hour}); err == nil {
		t.Error("a negative retention was accepted")
	}
}
