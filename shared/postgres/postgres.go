// Package postgres connects a service to its PostgreSQL database: a traced connection
// pool that counts its round trips, schema migrations run at start-up, transactions, and
// the processed-message ledger that makes consumers idempotent.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultMaxConns is the size of a service's connection pool unless its URL sets
// pool_max_conns: a little above the default consumer concurrency.
const DefaultMaxConns = 10

// Connect opens a pool to url and waits (up to timeout) until the database answers, so a
// service started before its database is ready waits instead of crashing. A statement is
// traced as a child span of the context it runs with, a transaction run through InTx as
// one span (see tracing.go), and every round trip is counted (Collectors).
func Connect(ctx context.Context, url string, timeout time.Duration) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse url: %w", err)
	}
	cfg.ConnConfig.Tracer = tracer{}
	// pgxpool's default, max(4, CPUs), would make a service's concurrent message handlers
	// (CONSUMER_CONCURRENCY, 8 by default) queue for connections. Connections open only
	// when needed, so an idle service holds few. pool_max_conns in the URL still wins.
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = DefaultMaxConns
	}
	// A session whose client vanished mid-transaction (a network cut, a killed container)
	// must not keep its row locks until TCP gives up on it hours later.
	if _, set := cfg.ConnConfig.RuntimeParams["idle_in_transaction_session_timeout"]; !set {
		cfg.ConnConfig.RuntimeParams["idle_in_transaction_session_timeout"] = "60000"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: new pool: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for wait := 250 * time.Millisecond; ; wait = min(2*wait, 3*time.Second) {
		err = pool.Ping(ctx)
		if err == nil {
			return pool, nil
		}
		select {
		case <-ctx.Done():
			pool.Close()
			return nil, fmt.Errorf("postgres: not reachable: %w", err)
		case <-time.After(wait):
		}
	}
}

// InTx runs fn in a transaction and commits it if fn returns nil; otherwise it rolls back.
// The transaction is one span, a child of ctx's, with the statements it ran as events:
// fn's statements must run on tx (they do whatever context they are given).
func InTx(ctx context.Context, pool *pgxpool.Pool, fn func(tx pgx.Tx) error) (err error) {
	ctx, span := startTx(ctx)
	outcome := "rollback"
	defer func() { span.end(outcome, err) }()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire: %w", err)
	}
	defer conn.Release()
	defer span.attach(conn.Conn())()
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, ignoreClosed(tx.Rollback(context.WithoutCancel(ctx))))
		}
	}()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		if !errors.Is(err, pgx.ErrTxCommitRollback) {
			outcome = "unknown" // the answer was lost: the database may have committed
		}
		return fmt.Errorf("commit: %w", err)
	}
	outcome = "commit"
	return nil
}

func ignoreClosed(err error) error {
	if errors.Is(err, pgx.ErrTxClosed) {
		return nil
	}
	return err
}

// Open is what every service does first: Connect, then Migrate with its migrations. The
// pool is closed again if the migrations fail.
func Open(ctx context.Context, url string, timeout time.Duration, migrations fs.FS) (*pgxpool.Pool, error) {
	pool, err := Connect(ctx, url, timeout)
	if err != nil {
		return nil, err
	}
	if err := Migrate(ctx, pool, migrations); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}
