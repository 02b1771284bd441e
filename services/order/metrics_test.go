package main

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/warrenhq/warren/services/order/internal/orders"
	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/testkit"
)

// The order flow's metrics move as the orders do, once per real change: a replayed request
// and a redelivered verdict count nothing; pending orders are counted by age; every
// request is counted under its route, with its trace id as exemplar in OpenMetrics.
func TestOrderMetricsFollowTheOrders(t *testing.T) {
	amqpURL := testkit.SharedRabbitMQ(t).VHost(t)
	s := startService(t, amqpURL, map[string]string{"ORDER_PENDING_ALERT_AFTER": "1s"})
	ch := dial(t, amqpURL)

	// Every series an alert or a dashboard needs exists before the first order.
	s.awaitMetrics(t, map[string]float64{
		`warren_orders_placed_total`:                                                0,
		`warren_orders_cancelled_total`:                                             0,
		`warren_orders_settled_total{outcome="confirmed"}`:                          0,
		`warren_orders_settled_total{outcome="rejected"}`:                           0,
		`warren_order_settle_duration_seconds_count{outcome="confirmed"}`:           0,
		`warren_orders_pending{older_than="0s"}`:                                    0,
		`warren_orders_pending{older_than="15m"}`:                                   0,
		`warren_outbox_unpublished_events`:                                          0,
		`warren_outbox_oldest_unpublished_age_seconds`:                              0,
		`warren_orders_pending_too_long{event="unpublished"}`:                       0,
		`warren_http_requests_total{code="200",method="GET",route="GET /products"}`: -1, // none yet
	})

	// One order placed twice with one idempotency key is one order.
	req := orders.PlaceRequest{
		Customer: events.Customer{Name: "Peter Rabbit", Email: "peter@example.com", Phone: "+44 20 7946 0958"},
		Region:   events.RegionEurope, Items: []orders.LineRequest{carrots},
	}
	_, _, confirmed := s.placeWithKey(t, "metrics-1", req)
	if _, _, again := s.placeWithKey(t, "metrics-1", req); again != confirmed || confirmed == "" {
		t.Fatalf("replay placed %q, want %q", again, confirmed)
	}
	rejected := s.place(t, events.RegionEurope, orchid)
	old := s.place(t, events.RegionEurope, can)
	// The third has waited two minutes, as far as the database knows.
	s.exec(t, `UPDATE orders SET created_at = created_at - interval '2 minutes' WHERE id = $1`, old)
	s.awaitMetrics(t, map[string]float64{
		`warren_orders_placed_total`:                                                3,
		`warren_orders_pending{older_than="0s"}`:                                    3,
		`warren_orders_pending{older_than="30s"}`:                                   1,
		`warren_orders_pending{older_than="1m"}`:                                    1,
		`warren_orders_pending{older_than="5m"}`:                                    0,
		`warren_http_requests_total{code="202",method="POST",route="POST /orders"}`: 4,
		// The outbox was emptied by the relay.
		`warren_outbox_unpublished_events`: 0,
		`warren_outbox_published_total`:    3,
	})

	// A verdict delivered twice settles once. The queue is handled in order: once the
	// rejection, published last, has been handled, so has the redelivery.
	reserved := events.StockReserved{OrderID: confirmed, Region: events.RegionEurope}
	publish(t, ch, events.ExchangeTopic, events.InventoryReservedKey(events.RegionEurope), events.TypeStockReserved, "reserved-"+confirmed, reserved)
	publish(t, ch, events.ExchangeTopic, events.InventoryReservedKey(events.RegionEurope), events.TypeStockReserved, "reserved-"+confirmed, reserved)
	publish(t, ch, events.ExchangeTopic, events.InventoryOutOfStockKey(events.RegionEurope), events.TypeStockOutOfStock, "out-"+rejected,
		events.StockOutOfStock{OrderID: rejected, Region: events.RegionEurope, MissingSKU: []string{"rare-orchid"}})
	s.awaitStatus(t, rejected, orders.StatusRejected)
	if status, raw := s.do(t, http.MethodPost, "/orders/"+confirmed+"/cancel", nil); status != http.StatusOK {
		t.Fatalf("cancel = %d %s", status, raw)
	}
	if status, _ := s.do(t, http.MethodPost, "/orders/"+confirmed+"/cancel", nil); status != http.StatusConflict {
		t.Fatalf("second cancel = %d, want 409", status)
	}
	s.awaitMetrics(t, map[string]float64{
		`warren_orders_settled_total{outcome="confirmed"}`:                                      1,
		`warren_order_settle_duration_seconds_count{outcome="confirmed"}`:                       1,
		`warren_orders_settled_total{outcome="rejected"}`:                                       1,
		`warren_order_settle_duration_seconds_count{outcome="rejected"}`:                        1,
		`warren_orders_cancelled_total`:                                                         1,
		`warren_orders_pending{older_than="0s"}`:                                                1,
		`warren_orders_pending{older_than="1m"}`:                                                1,
		`warren_http_requests_total{code="200",method="POST",route="POST /orders/{id}/cancel"}`: 1,
		`warren_http_requests_total{code="409",method="POST",route="POST /orders/{id}/cancel"}`: 1,
	})

	// Exemplars: in OpenMetrics a bucket of POST /orders carries a trace id.
	open := s.openMetrics(t)
	found := false
	for line := range strings.Lines(open) {
		if strings.HasPrefix(line, `warren_http_request_duration_seconds_bucket{method="POST",route="POST /orders"`) &&
			strings.Contains(line, `# {trace_id="`) {
			found = true
		}
	}
	if !found {
		t.Errorf("no bucket of POST /orders with a trace_id exemplar in the OpenMetrics output")
	}
}

// exec runs a statement on the service's database.
func (s *orderService) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), s.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// valueOf is the value of series (name and labels, as exposed) in a scrape, -1 if absent.
func valueOf(text, series string) float64 {
	for line := range strings.Lines(text) {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			if v, err := strconv.ParseFloat(strings.Fields(rest)[0], 64); err == nil {
				return v
			}
		}
	}
	return -1
}

// awaitMetrics polls /metrics until every series has its value (-1: absent).
func (s *orderService) awaitMetrics(t *testing.T, want map[string]float64) {
	t.Helper()
	testkit.Eventually(t, 30*time.Second, func() string {
		_, raw := s.ops(t, "/metrics")
		var wrong []string
		for series, v := range want {
			if got := valueOf(string(raw), series); got != v {
				wrong = append(wrong, series+" = "+strconv.FormatFloat(got, 'g', -1, 64)+", want "+strconv.FormatFloat(v, 'g', -1, 64))
			}
		}
		return strings.Join(wrong, "; ")
	})
}

// openMetrics GETs /metrics in the OpenMetrics format.
func (s *orderService) openMetrics(t *testing.T) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.opsURL+"/metrics", nil)
	req.Header.Set("Accept", "application/openmetrics-text; version=1.0.0")
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/openmetrics-text") {
		t.Fatalf("Content-Type %q, want OpenMetrics", ct)
	}
	return string(b)
}
