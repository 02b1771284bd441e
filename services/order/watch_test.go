package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/warrenhq/warren/services/order/internal/orders"
	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/service"
	"github.com/warrenhq/warren/shared/testkit"
)

// A request held by a locked row ends at REQUEST_TIMEOUT with a 503 and a JSON body,
// instead of waiting as long as the lock is held.
func TestRequestDeadline(t *testing.T) {
	const timeout = time.Second
	s := startService(t, testkit.SharedRabbitMQ(t).VHost(t), map[string]string{"REQUEST_TIMEOUT": timeout.String()})
	id := s.place(t, events.RegionEurope, carrots)

	// Another session locks the order, as a long transaction would.
	conn, err := pgx.Connect(t.Context(), s.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	tx, err := conn.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(t.Context(), `SELECT 1 FROM orders WHERE id = $1 FOR UPDATE`, id); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	status, header, raw := s.send(t, http.MethodPost, "/orders/"+id+"/cancel", nil, nil)
	elapsed := time.Since(start)
	var body service.ErrorBody
	if status != http.StatusServiceUnavailable || header.Get("Content-Type") != "application/json" ||
		json.Unmarshal(raw, &body) != nil || body.Error == "" || header.Get("Retry-After") == "" {
		t.Errorf("cancel of a locked order = %d %q %s, want 503 with a JSON error body and Retry-After", status, header.Get("Content-Type"), raw)
	}
	if elapsed < timeout || elapsed > timeout+2*time.Second {
		t.Errorf("the answer came after %s, want just over REQUEST_TIMEOUT (%s)", elapsed, timeout)
	}

	// The timed-out request changed nothing; once the lock is gone the cancel goes through.
	if err := tx.Rollback(t.Context()); err != nil {
		t.Fatal(err)
	}
	if o := s.order(t, id); o.Status != orders.StatusPending {
		t.Errorf("after the timed-out cancel the order is %s, want pending", o.Status)
	}
	if status, raw := s.do(t, http.MethodPost, "/orders/"+id+"/cancel", nil); status != http.StatusOK {
		t.Errorf("cancel once unlocked = %d %s, want 200", status, raw)
	}
}

// An order nobody settles shows in warren_orders_pending_too_long and in the log as
// published once its OrderPlaced went out (it waits in inventory's queue: read and dropped
// here, as when inventory's verdict is lost), and leaves the gauge once settled.
func TestStuckPublishedOrderIsReported(t *testing.T) {
	amqpURL := testkit.SharedRabbitMQ(t).VHost(t)
	s := startService(t, amqpURL, map[string]string{"ORDER_PENDING_ALERT_AFTER": "1s"})
	inventory := consume(t, dial(t, amqpURL), events.QueueInventory)
	s.awaitPendingGauge(t, "published", 0)

	id := s.place(t, events.RegionEurope, carrots)
	inventory.await(events.TypeOrderPlaced, id, eventWait)
	s.awaitPendingGauge(t, "published", 1)
	s.awaitPendingGauge(t, "unpublished", 0)
	s.awaitStuckLog(t, id, "published")

	if status, raw := s.do(t, http.MethodPost, "/orders/"+id+"/cancel", nil); status != http.StatusOK {
		t.Fatalf("cancel = %d %s", status, raw)
	}
	s.awaitPendingGauge(t, "published", 0)
}

// While the broker is down, a stuck order's OrderPlaced is still in the outbox: the gauge
// and the log say unpublished.
func TestStuckUnpublishedOrderIsReported(t *testing.T) {
	rabbit := testkit.OwnRabbitMQ(t)
	s := startService(t, rabbit.URL, map[string]string{"ORDER_PENDING_ALERT_AFTER": "1s"})

	rabbit.Stop(t)
	id := s.place(t, events.RegionEurope, carrots)
	s.awaitPendingGauge(t, "unpublished", 1)
	s.awaitPendingGauge(t, "published", 0)
	s.awaitStuckLog(t, id, "unpublished")
}

// awaitPendingGauge polls /metrics until warren_orders_pending_too_long{event} is want.
func (s *orderService) awaitPendingGauge(t *testing.T, event string, want int) {
	t.Helper()
	series := `warren_orders_pending_too_long{event="` + event + `"} `
	var last string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		_, raw := s.ops(t, "/metrics")
		last = "absent"
		for line := range strings.Lines(string(raw)) {
			if value, ok := strings.CutPrefix(strings.TrimSpace(line), series); ok {
				last = value
			}
		}
		if last == strconv.Itoa(want) {
			return
		}
	}
	t.Fatalf("%s is %s after 30 s, want %d", series, last, want)
}

// awaitStuckLog waits until the service logged order id as pending too long with event.
func (s *orderService) awaitStuckLog(t *testing.T, id, event string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		for _, rec := range s.logs.lines("order pending too long") {
			if rec["order_id"] == id && rec["event"] == event && rec["level"] == "WARN" && rec["pending_for"] != "" {
				return
			}
		}
	}
	got := s.logs.lines("order pending too long")
	t.Fatalf("no warning \"order pending too long\" for %s with event %s within 30 s (%d others, last %v)", id, event, len(got), got[max(len(got)-1, 0):])
}
