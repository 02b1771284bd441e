package orders

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Where a stuck order's OrderPlaced is: the values of the gauge's "event" label.
const (
	// eventUnpublished: still in the outbox; the relay has not got it to the broker.
	eventUnpublished = "unpublished"
	// eventPublished: the broker confirmed it; it waits in inventory's queue, or in a
	// dead-letter queue, or inventory's verdict waits in the order service's.
	eventPublished = "published"
)

// pendingAges are the thresholds of warren_orders_pending, with their older_than labels.
var pendingAges = []struct {
	label string
	age   time.Duration
}{{"0s", 0}, {"30s", 30 * time.Second}, {"1m", time.Minute}, {"5m", 5 * time.Minute}, {"15m", 15 * time.Minute}}

// maxLoggedStuck bounds the orders one check logs by id, oldest first, so that an outage
// that strands thousands of orders writes a dozen lines a check, not thousands.
const maxLoggedStuck = 10

// PendingWatch finds orders that have been pending longer than After, which nothing else
// would notice: an order waits for inventory's verdict without a deadline of its own. It
// counts them in the gauge warren_orders_pending_too_long, by where their OrderPlaced is,
// and logs the oldest with their ids, so that an operator can settle them (README,
// "Operating dead letters"). With the same check it counts all pending orders by age in
// warren_orders_pending.
type PendingWatch struct {
	store   *Store
	after   time.Duration
	gauge   *prometheus.GaugeVec
	pending *prometheus.GaugeVec
	logger  *slog.Logger
}

// NewPendingWatch returns a PendingWatch for orders pending longer than after, with its
// gauges registered on reg.
func NewPendingWatch(store *Store, after time.Duration, reg prometheus.Registerer, logger *slog.Logger) *PendingWatch {
	gauge := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "warren_orders_pending_too_long",
		Help: "Orders pending longer than ORDER_PENDING_ALERT_AFTER, by where their OrderPlaced is: " +
			"unpublished (still in the outbox) or published (in a queue or a dead-letter queue). " +
			"Every replica reports all of them: aggregate with max, not sum.",
	}, []string{"event"})
	pending := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "warren_orders_pending",
		Help: `Pending orders older than older_than, cumulative like a histogram's le ("0s": all of them). ` +
			"Read every min(ORDER_PENDING_ALERT_AFTER, 1m). Every replica reports all of them: aggregate with max, not sum.",
	}, []string{"older_than"})
	reg.MustRegister(gauge, pending)
	// Every series exists from the start, so an alert on them has data before the first
	// stuck order.
	gauge.WithLabelValues(eventUnpublished)
	gauge.WithLabelValues(eventPublished)
	for _, a := range pendingAges {
		pending.WithLabelValues(a.label)
	}
	return &PendingWatch{store: store, after: after, gauge: gauge, pending: pending, logger: logger}
}

// Run checks at once and then every After (at most a minute apart) until ctx is
// cancelled. A failed check is logged and leaves the gauge as it was.
func (w *PendingWatch) Run(ctx context.Context) error {
	return every(ctx, min(w.after, time.Minute), w.check)
}

func (w *PendingWatch) check(ctx context.Context) {
	w.countPending(ctx)
	stuck, err := w.store.PendingLongerThan(ctx, w.after, maxLoggedStuck)
	if err != nil {
		w.logger.WarnContext(ctx, "pending order check failed", "error", err)
		return
	}
	w.gauge.WithLabelValues(eventUnpublished).Set(float64(stuck.Unpublished))
	w.gauge.WithLabelValues(eventPublished).Set(float64(stuck.Published))
	for _, o := range stuck.Oldest {
		where, hint := eventPublished, "published: its OrderPlaced or inventory's verdict waits in a queue or a dead-letter queue "+
			"(warrenctl dlq inspect); replay it or cancel the order"
		if o.Unpublished {
			where, hint = eventUnpublished, "its OrderPlaced is still in the outbox: is the broker reachable and the relay running?"
		}
		w.logger.WarnContext(ctx, "order pending too long", "order_id", o.ID,
			"pending_for", time.Since(o.CreatedAt).Round(time.Second).String(), "event", where, "hint", hint)
	}
	if more := stuck.Unpublished + stuck.Published - len(stuck.Oldest); more > 0 {
		w.logger.WarnContext(ctx, "more orders pending too long", "count", more, "after", w.after.String())
	}
}

// countPending sets warren_orders_pending. A failed count is logged and leaves the gauge
// as it was.
func (w *PendingWatch) countPending(ctx context.Context) {
	ages := make([]time.Duration, len(pendingAges))
	for i, a := range pendingAges {
		ages[i] = a.age
	}
	counts, err := w.store.PendingOlderThan(ctx, ages)
	if err != nil {
		w.logger.WarnContext(ctx, "pending order count failed", "error", err)
		return
	}
	for i, a := range pendingAges {
		w.pending.WithLabelValues(a.label).Set(float64(counts[i]))
	}
}

// every runs fn at once and then every period until ctx is cancelled.
func every(ctx context.Context, period time.Duration, fn func(context.Context)) error {
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		fn(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
