package outbox

import (
	"context"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// backlogSQL reads what the outbox holds: a count, and the age of the oldest message,
// found through the primary key (ids follow insertion), 0 when it is empty. The count
// reads the table, which is small unless the broker has been away; even a backlog of a
// million rows costs a fraction of a second every BacklogInterval.
const backlogSQL = `
SELECT (SELECT count(*) FROM outbox_messages),
	coalesce((SELECT extract(epoch FROM now() - created_at)::float8 FROM outbox_messages ORDER BY id LIMIT 1), 0)`

// Metrics are the outbox's Prometheus metrics. A nil *Metrics records nothing.
//
// The backlog gauges are read from the database by every replica's relay, the standbys'
// too, so they are right whichever replica is scraped: aggregate them with max, not sum.
// The publish metrics come from the leader alone.
type Metrics struct {
	unpublished prometheus.Gauge
	oldestAge   prometheus.Gauge
	duration    prometheus.Histogram
	published   prometheus.Counter
}

// NewMetrics registers the outbox metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		unpublished: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "warren_outbox_unpublished_events",
			Help: "Events in the outbox that the broker has not confirmed yet. Every replica reports all of them: aggregate with max.",
		}),
		oldestAge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "warren_outbox_oldest_unpublished_age_seconds",
			Help: "Age of the oldest event in the outbox, 0 when it is empty. Every replica reports it: aggregate with max.",
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "warren_outbox_publish_duration_seconds",
			Help: "Time from the relay's publish of an event to the broker's confirm (events of one topic and wave go out pipelined: " +
				"each counts the time until the last of them was confirmed). Exemplars carry the trace_id of the event's trace.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "warren_outbox_published_total",
			Help: "Events the relay published and the broker confirmed (an event published again after a failure counts again).",
		}),
	}
	reg.MustRegister(m.unpublished, m.oldestAge, m.duration, m.published)
	return m
}

// confirmed records that msgs were published and confirmed within elapsed.
func (m *Metrics) confirmed(msgs []row, elapsed time.Duration) {
	if m == nil {
		return
	}
	m.published.Add(float64(len(msgs)))
	obs := m.duration.(prometheus.ExemplarObserver)
	for _, msg := range msgs {
		if exemplar := traceExemplar(msg.metadata); exemplar != nil {
			obs.ObserveWithExemplar(elapsed.Seconds(), exemplar)
		} else {
			m.duration.Observe(elapsed.Seconds())
		}
	}
}

// traceExemplar is the exemplar of a stored message: the id of the trace it was stored in
// (Store keeps the W3C trace context in its metadata), if that trace is sampled.
func traceExemplar(md message.Metadata) prometheus.Labels {
	if md == nil {
		return nil
	}
	ctx := propagation.TraceContext{}.Extract(context.Background(), propagation.MapCarrier(md))
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() || !sc.IsSampled() {
		return nil
	}
	return prometheus.Labels{"trace_id": sc.TraceID().String()}
}

// watchBacklog sets the backlog gauges at once and then every BacklogInterval until ctx
// is cancelled. It holds a connection of its own, with the relay's settings (its queries
// are counted, not traced), and opens it again after a failure. A failed read is logged and leaves the gauges as they were.
func (r *Relay) watchBacklog(ctx context.Context) {
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			defer cancel()
			_ = conn.Close(closeCtx)
		}
	}()
	tick := time.NewTicker(r.config.BacklogInterval)
	defer tick.Stop()
	for {
		var err error
		if conn, err = r.readBacklog(ctx, conn); err != nil && ctx.Err() == nil {
			r.logger.WarnContext(ctx, "outbox relay: backlog check failed", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// readBacklog sets the gauges from one read over conn, connecting first if conn is nil.
// It returns the connection to use next time: nil after a failure.
func (r *Relay) readBacklog(ctx context.Context, conn *pgx.Conn) (*pgx.Conn, error) {
	qctx, cancel := context.WithTimeout(ctx, r.config.BacklogInterval)
	defer cancel()
	if conn == nil {
		var err error
		if conn, err = pgx.ConnectConfig(qctx, r.connConfig); err != nil {
			return nil, fmt.Errorf("connect: %w", err)
		}
	}
	var (
		count int64
		age   float64
	)
	if err := conn.QueryRow(qctx, backlogSQL).Scan(&count, &age); err != nil {
		closeCtx, cancelClose := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancelClose()
		_ = conn.Close(closeCtx)
		return nil, fmt.Errorf("read backlog: %w", err)
	}
	r.config.Metrics.unpublished.Set(float64(count))
	r.config.Metrics.oldestAge.Set(max(age, 0))
	return conn, nil
}
