package postgres_test

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/warrenhq/warren/shared/postgres"
	"github.com/warrenhq/warren/shared/testkit"
)

func TestMain(m *testing.M) { os.Exit(testkit.Run(m)) }

func connect(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool, err := postgres.Connect(context.Background(), testkit.SharedPostgres(t).Database(t), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

var migrations = fstest.MapFS{
	"001_things.sql": {Data: []byte(`CREATE TABLE things (id INT PRIMARY KEY);`)},
	"002_seed.sql":   {Data: []byte(`INSERT INTO things VALUES (1), (2);`)},
}

// Replicas of a service start together: each runs Migrate at once. Every migration must
// be applied exactly once.
func TestMigrateAppliesEachFileOnceEvenConcurrently(t *testing.T) {
	pool := connect(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() { errs <- postgres.Migrate(context.Background(), pool, migrations) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("migrate: %v", err)
		}
	}
	var things, applied int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM things`).Scan(&things); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM schema_migrations`).Scan(&applied); err != nil {
		t.Fatal(err)
	}
	if things != 2 || applied != 2 {
		t.Errorf("things=%d applied=%d, want 2 and 2", things, applied)
	}
}

func TestLedgerMarkIsFirstOnceAndRollsBackWithItsTransaction(t *testing.T) {
	pool := connect(t)
	ctx := context.Background()
	if err := postgres.Migrate(ctx, pool, fstest.MapFS{}); err != nil {
		t.Fatal(err)
	}
	ledger := newLedger(t, 30*24*time.Hour)
	mark := func() (first bool) {
		err := postgres.InTx(ctx, pool, func(tx pgx.Tx) error {
			var err error
			first, err = ledger.Mark(ctx, tx, "q", "m-1", time.Now())
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return first
	}

	// A handler that fails after marking rolls the mark back: the retry must see "first".
	errBoom := errors.New("handler failed")
	err := postgres.InTx(ctx, pool, func(tx pgx.Tx) error {
		if _, err := ledger.Mark(ctx, tx, "q", "m-1", time.Now()); err != nil {
			return err
		}
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("InTx returned %v", err)
	}
	if !mark() {
		t.Error("a rolled-back mark still counted")
	}
	if mark() {
		t.Error("the second delivery was reported as first")
	}
}

// A handler folds the ledger's record into the statement of its change (Delivery and its
// MarkSQL): the statement's mark yields a row once, none for a duplicate; a message older
// than the horizon is judged by Mark instead, before any statement runs.
func TestLedgerDeliveryFoldsTheMarkIntoTheChange(t *testing.T) {
	pool := connect(t)
	ctx := context.Background()
	if err := postgres.Migrate(ctx, pool, fstest.MapFS{}); err != nil {
		t.Fatal(err)
	}
	ledger := newLedger(t, 30*24*time.Hour)
	// change is a handler's statement: it yields 1 when the message was new.
	change := func(occurredAt time.Time, id string) (new int, err error) {
		err = postgres.InTx(ctx, pool, func(tx pgx.Tx) error {
			d, err := ledger.Delivery(ctx, tx, "q", id, occurredAt)
			if err != nil || d == nil {
				return err
			}
			return tx.QueryRow(ctx, `WITH mark AS (`+d.MarkSQL()+`) SELECT count(*) FROM mark`, d.Consumer, d.MessageID).Scan(&new)
		})
		return new, err
	}
	now, old := time.Now(), time.Now().Add(-ledger.Horizon()-time.Hour)

	if n, err := change(now, "fresh"); err != nil || n != 1 {
		t.Fatalf("a new message: mark yielded %d, %v; want 1", n, err)
	}
	if n, err := change(now, "fresh"); err != nil || n != 0 {
		t.Fatalf("its redelivery: mark yielded %d, %v; want 0", n, err)
	}
	// Old and never recorded: refused, and nothing recorded.
	if _, err := change(old, "old"); !errors.Is(err, postgres.ErrBeyondHorizon) {
		t.Fatalf("an old message without a record: %v, want ErrBeyondHorizon", err)
	}
	// Old but recorded (its first delivery went through while it was young): a duplicate.
	if n, err := change(old, "fresh"); err != nil || n != 0 {
		t.Fatalf("an old redelivery of a recorded message: mark yielded %d, %v; want 0", n, err)
	}
	var records int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM processed_messages`).Scan(&records); err != nil {
		t.Fatal(err)
	}
	if records != 1 {
		t.Errorf("%d ledger records, want 1 (fresh)", records)
	}
}
