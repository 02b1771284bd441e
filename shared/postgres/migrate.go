package postgres

import (
	"context"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrationLock is the advisory lock id that serialises migrations when several replicas
// of a service start at once.
const migrationLock = 7_427_736 // "warren" on a phone keypad, near enough

// Migrate creates the processed-message ledger (see Ledger) and applies, in name order,
// every *.sql file in migrations that is not yet recorded in schema_migrations, each in its
// own transaction together with its record. Files are never edited once released; a change
// is a new file.
func Migrate(ctx context.Context, pool *pgxpool.Pool, migrations fs.FS) error {
	names, err := fs.Glob(migrations, "*.sql")
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	sort.Strings(names)
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrate: acquire: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrationLock); err != nil {
		return fmt.Errorf("migrate: lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrationLock) //nolint:errcheck // released with the session anyway
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		name TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	if _, err := conn.Exec(ctx, processedSchema); err != nil {
		return fmt.Errorf("migrate: create processed_messages: %w", err)
	}
	for _, name := range names {
		if err := applyOnce(ctx, conn.Conn(), migrations, name); err != nil {
			return fmt.Errorf("migrate %s: %w", name, err)
		}
	}
	return nil
}

func applyOnce(ctx context.Context, conn *pgx.Conn, migrations fs.FS, name string) error {
	sql, err := fs.ReadFile(migrations, name)
	if err != nil {
		return err
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after commit
	tag, err := tx.Exec(ctx, `INSERT INTO schema_migrations (name) VALUES ($1) ON CONFLICT DO NOTHING`, name)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return nil // applied before
	}
	if strings.TrimSpace(string(sql)) != "" {
		if _, err := tx.Exec(ctx, string(sql)); err != nil {
			return err
		}
	}
	return tx.Commit(ctx)
}
