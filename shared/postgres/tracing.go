package postgres

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// The pool's tracer, installed by Connect, makes the database's spans and counts its round
// trips (see metrics.go).
//
// It replaces otelpgx, which makes a span for every pool acquire, BEGIN, statement and
// COMMIT: 68 of the 81 spans of one order, each costing CPU in the service and in the
// exporter, and none of its options folds a transaction into one span. Here a transaction
// run through InTx is one client span, "db.transaction", and each round trip it makes
// (BEGIN, every statement, COMMIT) is an event on it with the statement's SQL, its
// duration and its error if it failed. A statement outside a transaction is one span of
// its own, named after its first keyword (SELECT, INSERT...). The wait for a pooled
// connection is an attribute of the span that waited (db.pool.wait_ms).
//
// Spans are only made under a recording span (a request's, a message's), as otelpgx did:
// background work (the outbox relay, the sweeper) adds no root spans. Connecting is not
// traced: a new connection's time shows in the pool wait of the caller that waited for it.

// InstrumentationName is the instrumentation scope of the database spans.
const InstrumentationName = "github.com/warrenhq/warren/shared/postgres"

// TransactionSpan is the name of the span of a transaction run through InTx.
const TransactionSpan = "db.transaction"

// Attributes of the database spans and events besides OpenTelemetry's own db.* ones.
const (
	// attrOutcome is how a transaction ended: "commit", "rollback" (nothing of it was
	// committed), or "unknown" (COMMIT was sent but its answer lost).
	attrOutcome = attribute.Key("db.transaction.outcome")
	// attrPoolWait is how long the caller waited for a pooled connection, in milliseconds.
	attrPoolWait = attribute.Key("db.pool.wait_ms")
	// attrDuration is how long one statement of a transaction took, in milliseconds.
	attrDuration = attribute.Key("duration_ms")
	// attrRows is the count of rows a statement affected or returned (its command tag).
	attrRows = attribute.Key("db.rows_affected")
)

// dbSystem identifies the spans as PostgreSQL's: db.system.name is the current semantic
// convention (otelpgx's), db.system the one before 1.26, which older backends and the
// benchmark's span count key on.
var dbSystem = []attribute.KeyValue{semconv.DBSystemNamePostgreSQL, attribute.String("db.system", "postgresql")}

var spans = otel.Tracer(InstrumentationName)

// tracer implements pgx's tracer interfaces. Its per-connection state lives in the
// connection's CustomData: a connection serves one caller at a time, so it needs no lock.
type tracer struct{}

var (
	_ pgx.QueryTracer       = tracer{}
	_ pgx.BatchTracer       = tracer{}
	_ pgx.CopyFromTracer    = tracer{}
	_ pgx.PrepareTracer     = tracer{}
	_ pgxpool.AcquireTracer = tracer{}
)

// connState is what the tracer knows of one connection.
type connState struct {
	waited time.Duration // the pool wait of the acquire that handed it out, until a span takes it
	tx     *txSpan       // the InTx transaction running on it, if its span is recording
	sql    string        // the statement in flight in tx
	start  time.Time
}

const stateKey = "warren.postgres.trace"

func state(conn *pgx.Conn) *connState {
	data := conn.PgConn().CustomData()
	s, _ := data[stateKey].(*connState)
	if s == nil {
		s = &connState{}
		data[stateKey] = s
	}
	return s
}

// takeWait returns the attribute of the connection's pool wait, once.
func (s *connState) takeWait() attribute.KeyValue {
	w := s.waited
	s.waited = 0
	return attrPoolWait.Float64(float64(w) / float64(time.Millisecond))
}

type acquireStartKey struct{}

// TraceAcquireStart notes when a recording caller began to wait for a connection.
func (tracer) TraceAcquireStart(ctx context.Context, _ *pgxpool.Pool, _ pgxpool.TraceAcquireStartData) context.Context {
	if !trace.SpanFromContext(ctx).IsRecording() {
		return ctx
	}
	return context.WithValue(ctx, acquireStartKey{}, time.Now())
}

// TraceAcquireEnd leaves the wait on the connection for the span that uses it next.
func (tracer) TraceAcquireEnd(ctx context.Context, _ *pgxpool.Pool, data pgxpool.TraceAcquireEndData) {
	if data.Conn == nil {
		return
	}
	var waited time.Duration
	if start, ok := ctx.Value(acquireStartKey{}).(time.Time); ok {
		waited = time.Since(start)
	}
	state(data.Conn).waited = waited
}

// TraceQueryStart is called for every Exec, Query and QueryRow, BEGIN and COMMIT included.
func (tracer) TraceQueryStart(ctx context.Context, conn *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	roundTrips.Inc()
	s := state(conn)
	if s.tx != nil {
		s.sql, s.start = data.SQL, time.Now()
		return ctx
	}
	if !trace.SpanFromContext(ctx).IsRecording() {
		return ctx
	}
	stmt := trimSQL(data.SQL)
	return s.startSpan(ctx, stmt.operation, semconv.DBQueryText(stmt.text), semconv.DBOperationName(stmt.operation))
}

// startSpan starts the span of a round trip outside a transaction: a client span of the
// database, carrying the connection's pool wait.
func (s *connState) startSpan(ctx context.Context, name string, attrs ...attribute.KeyValue) context.Context {
	ctx, _ = spans.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(dbSystem...), trace.WithAttributes(append(attrs, s.takeWait())...))
	return ctx
}

// TraceQueryEnd is called when a statement's results were read.
func (tracer) TraceQueryEnd(ctx context.Context, conn *pgx.Conn, data pgx.TraceQueryEndData) {
	if s := state(conn); s.tx != nil {
		s.tx.statement(s.sql, s.start, data.CommandTag, data.Err)
		return
	}
	endSpan(trace.SpanFromContext(ctx), data.CommandTag, data.Err)
}

// TraceBatchStart is called for SendBatch: one round trip, whatever its size.
func (tracer) TraceBatchStart(ctx context.Context, conn *pgx.Conn, data pgx.TraceBatchStartData) context.Context {
	roundTrips.Inc()
	s := state(conn)
	if s.tx != nil || !trace.SpanFromContext(ctx).IsRecording() {
		return ctx
	}
	return s.startSpan(ctx, "batch", semconv.DBOperationName("batch"), semconv.DBOperationBatchSize(data.Batch.Len()))
}

// TraceBatchQuery is called for each statement of a batch as its results are read: an
// event on the transaction's span, or on the batch's.
func (tracer) TraceBatchQuery(ctx context.Context, conn *pgx.Conn, data pgx.TraceBatchQueryData) {
	span := trace.SpanFromContext(ctx)
	if s := state(conn); s.tx != nil {
		s.tx.statement(data.SQL, time.Time{}, data.CommandTag, data.Err)
		return
	}
	if span.IsRecording() {
		span.AddEvent(trimSQL(data.SQL).operation, trace.WithAttributes(statementAttributes(data.SQL, time.Time{}, data.CommandTag, data.Err)...))
	}
}

// TraceBatchEnd is called when the batch's results were closed.
func (tracer) TraceBatchEnd(ctx context.Context, conn *pgx.Conn, data pgx.TraceBatchEndData) {
	if s := state(conn); s.tx != nil {
		if data.Err != nil {
			s.tx.fail(data.Err)
		}
		return
	}
	endSpan(trace.SpanFromContext(ctx), pgconn.CommandTag{}, data.Err)
}

// TraceCopyFromStart is called for CopyFrom: one round trip.
func (tracer) TraceCopyFromStart(ctx context.Context, conn *pgx.Conn, data pgx.TraceCopyFromStartData) context.Context {
	roundTrips.Inc()
	s := state(conn)
	sql := "COPY " + data.TableName.Sanitize()
	if s.tx != nil {
		s.sql, s.start = sql, time.Now()
		return ctx
	}
	if !trace.SpanFromContext(ctx).IsRecording() {
		return ctx
	}
	return s.startSpan(ctx, sql, semconv.DBOperationName("COPY"), semconv.DBCollectionName(data.TableName.Sanitize()))
}

// TraceCopyFromEnd is called when the copy finished.
func (tracer) TraceCopyFromEnd(ctx context.Context, conn *pgx.Conn, data pgx.TraceCopyFromEndData) {
	if s := state(conn); s.tx != nil {
		s.tx.statement(s.sql, s.start, data.CommandTag, data.Err)
		return
	}
	endSpan(trace.SpanFromContext(ctx), data.CommandTag, data.Err)
}

// TracePrepareStart is called when pgx prepares a statement. Only its round trip is
// counted (see TracePrepareEnd): the statement it prepares has its span or event anyway.
func (tracer) TracePrepareStart(ctx context.Context, _ *pgx.Conn, _ pgx.TracePrepareStartData) context.Context {
	return ctx
}

// TracePrepareEnd counts the round trip of a statement prepared on a connection for the
// first time; one it had prepared already costs none.
func (tracer) TracePrepareEnd(_ context.Context, _ *pgx.Conn, data pgx.TracePrepareEndData) {
	if !data.AlreadyPrepared {
		roundTrips.Inc()
	}
}

// endSpan ends the span of a statement, a batch or a copy outside a transaction.
func endSpan(span trace.Span, tag pgconn.CommandTag, err error) {
	if !span.IsRecording() {
		return
	}
	if err != nil {
		recordError(span, err)
	} else if tag.String() != "" {
		span.SetAttributes(attrRows.Int64(tag.RowsAffected()))
	}
	span.End()
}

func recordError(span trace.Span, err error) {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		span.SetAttributes(semconv.DBResponseStatusCode(pgErr.Code))
	}
	span.RecordError(err)
	span.SetStatus(codes.Error, err.Error())
}

// statementAttributes describes one statement of a transaction or a batch: its SQL, its
// duration when start is known, and its rows or its error.
func statementAttributes(sql string, start time.Time, tag pgconn.CommandTag, err error) []attribute.KeyValue {
	attrs := make([]attribute.KeyValue, 0, 4)
	attrs = append(attrs, semconv.DBQueryText(trimSQL(sql).text))
	if !start.IsZero() {
		attrs = append(attrs, attrDuration.Float64(float64(time.Since(start))/float64(time.Millisecond)))
	}
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			attrs = append(attrs, semconv.DBResponseStatusCode(pgErr.Code))
		}
		return append(attrs, semconv.ExceptionMessage(err.Error()))
	}
	return append(attrs, attrRows.Int64(tag.RowsAffected()))
}

// txSpan is the span of one InTx transaction.
type txSpan struct {
	span trace.Span
	err  error // the first statement that failed
}

// startTx starts the span of a transaction under ctx's span. It returns nil when that span
// is not recording: the transaction is then not traced at all.
func startTx(ctx context.Context) (context.Context, *txSpan) {
	if !trace.SpanFromContext(ctx).IsRecording() {
		return ctx, nil
	}
	ctx, span := spans.Start(ctx, TransactionSpan, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(dbSystem...))
	return ctx, &txSpan{span: span}
}

// attach makes conn's statements events of t, until the returned function detaches them.
func (t *txSpan) attach(conn *pgx.Conn) (detach func()) {
	if t == nil {
		return func() {}
	}
	s := state(conn)
	t.span.SetAttributes(s.takeWait())
	s.tx = t
	return func() { s.tx = nil }
}

// statement records one round trip of the transaction as an event named after its first
// keyword, at the time it was sent.
func (t *txSpan) statement(sql string, start time.Time, tag pgconn.CommandTag, err error) {
	var opts []trace.EventOption
	if !start.IsZero() {
		opts = append(opts, trace.WithTimestamp(start))
	}
	opts = append(opts, trace.WithAttributes(statementAttributes(sql, start, tag, err)...))
	t.span.AddEvent(trimSQL(sql).operation, opts...)
	if err != nil {
		t.fail(err)
	}
}

func (t *txSpan) fail(err error) {
	if t.err == nil {
		t.err = err
	}
}

// end ends the span with the transaction's outcome and InTx's error, or the first failed
// statement's when InTx returned none (one the caller's code tolerated).
func (t *txSpan) end(outcome string, err error) {
	if t == nil {
		return
	}
	t.span.SetAttributes(attrOutcome.String(outcome))
	if err == nil {
		err = t.err
	}
	if err != nil {
		t.span.RecordError(err)
		t.span.SetStatus(codes.Error, err.Error())
	}
	t.span.End()
}

// statementName is a statement's SQL as spans show it, and its first keyword.
type statementName struct{ text, operation string }

// maxSQL bounds the SQL a span or event carries: enough to recognise a statement.
const maxSQL = 300

// The trimmed form of each statement is kept: a service runs a few dozen constant
// statements, over and over. Past maxCached (SQL built at run time) it is recomputed.
const maxCached = 1000

var (
	trimmed      sync.Map // SQL => statementName
	trimmedCount atomic.Int32
)

// trimSQL returns sql with its runs of white space made single spaces, cut at maxSQL
// bytes, and its first keyword in upper case.
func trimSQL(sql string) statementName {
	if v, ok := trimmed.Load(sql); ok {
		return v.(statementName)
	}
	text := strings.Join(strings.Fields(sql), " ")
	if len(text) > maxSQL {
		cut := maxSQL
		for cut > 0 && text[cut]&0xC0 == 0x80 { // not inside a UTF-8 sequence
			cut--
		}
		text = text[:cut] + "…"
	}
	op, _, _ := strings.Cut(text, " ")
	name := statementName{text: text, operation: strings.ToUpper(op)}
	if trimmedCount.Add(1) <= maxCached {
		trimmed.Store(sql, name)
	}
	return name
}
