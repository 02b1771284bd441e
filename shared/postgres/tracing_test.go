package postgres_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/warrenhq/warren/shared/postgres"
	"github.com/warrenhq/warren/shared/testkit"
)

// The pool traces through the global TracerProvider, and a tracer obtained from it follows
// only the first provider set: the package's tests share one recorder, and each reads the
// spans of its own trace.
var (
	recorderOnce sync.Once
	recorder     *tracetest.SpanRecorder
	testTracer   trace.Tracer
)

// traced returns a context under a recording span of a new trace, that span, and a
// function returning the database spans the trace has so far (the caller's span ended).
func traced(t *testing.T) (context.Context, trace.Span, func() []sdktrace.ReadOnlySpan) {
	t.Helper()
	recorderOnce.Do(func() {
		recorder = tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(recorder))
		otel.SetTracerProvider(tp)
		testTracer = tp.Tracer("test")
	})
	ctx, caller := testTracer.Start(context.Background(), "handler")
	return ctx, caller, func() []sdktrace.ReadOnlySpan {
		var db []sdktrace.ReadOnlySpan
		for _, s := range recorder.Ended() {
			if s.SpanContext().TraceID() == caller.SpanContext().TraceID() && s.InstrumentationScope().Name == postgres.InstrumentationName {
				db = append(db, s)
			}
		}
		return db
	}
}

func eventNames(s sdktrace.ReadOnlySpan) []string {
	var names []string
	for _, e := range s.Events() {
		names = append(names, e.Name)
	}
	return names
}

func names(spans []sdktrace.ReadOnlySpan) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name())
	}
	return out
}

func stringAttr(s sdktrace.ReadOnlySpan, key string) string {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.Emit()
		}
	}
	return ""
}

func createThings(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), `CREATE TABLE things (id INT PRIMARY KEY, name TEXT)`); err != nil {
		t.Fatal(err)
	}
}

// A transaction through InTx is one span under the caller's, its round trips events on
// it: BEGIN, each statement with its SQL, COMMIT. No span per statement.
func TestInTxIsOneSpanWithItsStatementsAsEvents(t *testing.T) {
	pool := connect(t)
	createThings(t, pool)
	ctx, caller, dbSpans := traced(t)

	err := postgres.InTx(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO things (id, name) VALUES ($1, $2)`, 1, "trowel"); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE things
			SET name = $2   WHERE id = $1`, 1, "spade"); err != nil {
			return err
		}
		var name string
		return tx.QueryRow(ctx, `SELECT name FROM things WHERE id = $1`, 1).Scan(&name)
	})
	if err != nil {
		t.Fatal(err)
	}
	caller.End()

	spans := dbSpans()
	if len(spans) != 1 {
		t.Fatalf("%d database spans, want 1 (the transaction's): %v", len(spans), names(spans))
	}
	s := spans[0]
	if s.Name() != postgres.TransactionSpan || s.SpanKind() != trace.SpanKindClient {
		t.Errorf("span %q of kind %s, want %q, client", s.Name(), s.SpanKind(), postgres.TransactionSpan)
	}
	if s.Parent().SpanID() != caller.SpanContext().SpanID() {
		t.Errorf("parent %s, want the caller's span %s", s.Parent().SpanID(), caller.SpanContext().SpanID())
	}
	if got := stringAttr(s, "db.system"); got != "postgresql" {
		t.Errorf("db.system=%q, want postgresql", got)
	}
	if got := stringAttr(s, "db.transaction.outcome"); got != "commit" {
		t.Errorf("outcome %q, want commit", got)
	}
	if s.Status().Code == codes.Error {
		t.Errorf("status %v, want no error", s.Status())
	}
	want := []string{"BEGIN", "INSERT", "UPDATE", "SELECT", "COMMIT"}
	if got := eventNames(s); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	statements := s.Events()[1:4]
	wantSQL := []string{
		`INSERT INTO things (id, name) VALUES ($1, $2)`,
		`UPDATE things SET name = $2 WHERE id = $1`, // white space trimmed
		`SELECT name FROM things WHERE id = $1`,
	}
	for i, e := range statements {
		var sql string
		for _, kv := range e.Attributes {
			if kv.Key == "db.query.text" {
				sql = kv.Value.AsString()
			}
		}
		if sql != wantSQL[i] {
			t.Errorf("event %d: db.query.text %q, want %q", i, sql, wantSQL[i])
		}
	}
}

// A statement that fails marks the transaction's span as an error, and its event carries
// the SQLSTATE.
func TestInTxFailingStatementMarksTheSpanAsError(t *testing.T) {
	pool := connect(t)
	createThings(t, pool)
	ctx, caller, dbSpans := traced(t)

	err := postgres.InTx(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO things (id) VALUES ($1)`, 1); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO things (id) VALUES ($1)`, 1) // a duplicate key
		return err
	})
	if err == nil {
		t.Fatal("InTx returned nil, want the duplicate key's error")
	}
	caller.End()

	spans := dbSpans()
	if len(spans) != 1 {
		t.Fatalf("%d database spans, want 1", len(spans))
	}
	s := spans[0]
	if s.Status().Code != codes.Error {
		t.Errorf("status %v, want an error", s.Status())
	}
	if got := stringAttr(s, "db.transaction.outcome"); got != "rollback" {
		t.Errorf("outcome %q, want rollback", got)
	}
	var code string
	for _, e := range s.Events() {
		for _, kv := range e.Attributes {
			if kv.Key == "db.response.status_code" {
				code = kv.Value.AsString()
			}
		}
	}
	if code != "23505" {
		t.Errorf("db.response.status_code %q on the events, want 23505 (unique_violation)", code)
	}
	// The exception is InTx's error, recorded as the span ends.
	if got, want := eventNames(s), []string{"BEGIN", "INSERT", "INSERT", "ROLLBACK", "exception"}; !slices.Equal(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}
}

// A statement outside a transaction is still one span, under the caller's.
func TestStatementOutsideATransactionIsOneSpan(t *testing.T) {
	pool := connect(t)
	ctx, caller, dbSpans := traced(t)
	var one int
	if err := pool.QueryRow(ctx, `SELECT $1::int`, 1).Scan(&one); err != nil {
		t.Fatal(err)
	}
	caller.End()
	spans := dbSpans()
	if len(spans) != 1 {
		t.Fatalf("%d database spans, want 1", len(spans))
	}
	if s := spans[0]; s.Name() != "SELECT" || s.Parent().SpanID() != caller.SpanContext().SpanID() || stringAttr(s, "db.system") != "postgresql" {
		t.Errorf("span %q, parent %s, db.system %q; want SELECT under the caller's span %s, postgresql",
			s.Name(), s.Parent().SpanID(), stringAttr(s, "db.system"), caller.SpanContext().SpanID())
	}
}

// warren_db_round_trips_total counts each statement, BEGIN and COMMIT, each batch, and
// the statements a connection prepares on their first use.
func TestRoundTripsAreCounted(t *testing.T) {
	pool, err := postgres.Connect(context.Background(), testkit.SharedPostgres(t).Database(t)+"&pool_max_conns=1", 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	createThings(t, pool)
	ctx := context.Background()
	counter := postgres.Collectors()[0]

	// 3 statements, a transaction of 2 and a batch of 2: 3 + (1+2+1) + 1 = 8 round trips.
	work := func(id int) {
		for i := range 3 {
			if _, err := pool.Exec(ctx, `INSERT INTO things (id) VALUES ($1)`, id*10+i); err != nil {
				t.Fatal(err)
			}
		}
		err := postgres.InTx(ctx, pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `UPDATE things SET name = $2 WHERE id = $1`, id*10, "a"); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `DELETE FROM things WHERE id = $1`, id*10+1)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		b := &pgx.Batch{}
		b.Queue(`SELECT 1`)
		b.Queue(`SELECT 2`)
		if err := pool.SendBatch(ctx, b).Close(); err != nil {
			t.Fatal(err)
		}
	}
	const perRun = 8
	// The one connection's first run prepares INSERT, UPDATE and DELETE (BEGIN, COMMIT and
	// the batch prepare nothing it counts): 3 more.
	before := testutil.ToFloat64(counter)
	work(1)
	first := testutil.ToFloat64(counter) - before
	work(2)
	second := testutil.ToFloat64(counter) - before - first
	if first != perRun+3 || second != perRun {
		t.Errorf("round trips: %v on the first run and %v on the second, want %v and %v", first, second, perRun+3, perRun)
	}
}
