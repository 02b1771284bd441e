package testkit

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/testcontainers/testcontainers-go/modules/postgres"
)

// Postgres is a database server for tests.
type Postgres struct {
	// URL connects to the server's maintenance database as a superuser.
	URL string
}

var (
	sharedPG     *Postgres
	sharedPGErr  error
	sharedPGOnce sync.Once
	dbCounter    int
)

// SharedPostgres returns the server all tests of this binary share (see Database for
// isolation). It skips the test under -short.
func SharedPostgres(t testing.TB) *Postgres {
	t.Helper()
	Integration(t)
	sharedPGOnce.Do(func() {
		if u := envOr("WARREN_TEST_DATABASE_URL", ""); u != "" {
			sharedPG = &Postgres{URL: u}
			return
		}
		ctx := context.Background()
		c, err := postgres.Run(ctx, envOr("POSTGRES_IMAGE", DefaultPostgresImage),
			postgres.WithUsername("warren"), postgres.WithPassword("warren"), postgres.WithDatabase("postgres"),
			postgres.BasicWaitStrategies())
		if err != nil {
			sharedPGErr = err
			return
		}
		onExit(func(ctx context.Context) error { return c.Terminate(ctx) })
		u, err := c.ConnectionString(ctx, "sslmode=disable")
		sharedPG, sharedPGErr = &Postgres{URL: u}, err
	})
	if sharedPGErr != nil {
		t.Fatalf("start postgres: %v", sharedPGErr)
	}
	return sharedPG
}

// Database creates a fresh database for t, dropped when t ends, and returns its URL.
func (p *Postgres) Database(t testing.TB) string {
	t.Helper()
	mu.Lock()
	dbCounter++
	name := fmt.Sprintf("t_%d_%d", time.Now().UnixNano()%1e9, dbCounter)
	mu.Unlock()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, p.URL)
	if err != nil {
		t.Fatalf("connect postgres: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), p.URL)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		_, _ = c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	u, _ := url.Parse(p.URL)
	u.Path = "/" + name
	return strings.Replace(u.String(), "postgres:///", "postgres://localhost/", 1)
}
