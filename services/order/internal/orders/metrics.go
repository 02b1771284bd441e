package orders

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics count the orders' state changes. A nil *Metrics records nothing.
//
// Each is recorded after the change's transaction committed, and only when it changed
// something: a replayed request (its idempotency key) or a redelivered verdict (the
// ledger) changes nothing and counts nothing, and a transaction that failed changed
// nothing either.
type Metrics struct {
	placed         prometheus.Counter
	settled        *prometheus.CounterVec
	cancelled      prometheus.Counter
	settleDuration *prometheus.HistogramVec
}

// outcomes are the values of the "outcome" label: the statuses a verdict settles an order in.
var outcomes = []Status{StatusConfirmed, StatusRejected}

// NewMetrics registers the order flow's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		placed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "warren_orders_placed_total",
			Help: "Orders placed (a replay of an idempotent request is not counted again).",
		}),
		settled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warren_orders_settled_total",
			Help: "Pending orders settled by inventory's verdict, by outcome: confirmed or rejected.",
		}, []string{"outcome"}),
		cancelled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "warren_orders_cancelled_total",
			Help: "Orders the customer cancelled (pending or confirmed ones).",
		}),
		settleDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "warren_order_settle_duration_seconds",
			Help: "Time from an order's creation to its settlement (confirmed or rejected), by outcome, on the database's clock.",
			// From tens of milliseconds (a healthy flow) to about an hour (an outage): 25 ms to 25 min.
			Buckets: prometheus.ExponentialBuckets(0.025, 2.5, 13),
		}, []string{"outcome"}),
	}
	reg.MustRegister(m.placed, m.settled, m.cancelled, m.settleDuration)
	// Every series exists from the start, so a rate or a ratio of them has data before
	// the first order settles.
	for _, o := range outcomes {
		m.settled.WithLabelValues(string(o))
		m.settleDuration.WithLabelValues(string(o))
	}
	return m
}

func (m *Metrics) orderPlaced() {
	if m != nil {
		m.placed.Inc()
	}
}

func (m *Metrics) orderCancelled() {
	if m != nil {
		m.cancelled.Inc()
	}
}

// orderSettled records o, just settled: its outcome is its status, and it took from its
// creation to its last update (both stamped by the database).
func (m *Metrics) orderSettled(o Order) {
	if m == nil {
		return
	}
	m.settled.WithLabelValues(string(o.Status)).Inc()
	m.settleDuration.WithLabelValues(string(o.Status)).Observe(max(o.UpdatedAt.Sub(o.CreatedAt), time.Duration(0)).Seconds())
}
