package main

import (
	"encoding/json"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenhq/warren/services/order/internal/orders"
	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/service"
	"github.com/warrenhq/warren/shared/testkit"
)

func TestMain(m *testing.M) { os.Exit(testkit.Run(m)) }

const eventWait = 30 * time.Second

var (
	carrots = orders.LineRequest{SKU: "carrot-seeds", Quantity: 3}
	can     = orders.LineRequest{SKU: "watering-can", Quantity: 1}
	orchid  = orders.LineRequest{SKU: "rare-orchid", Quantity: 2}
)

func TestPlaceOrder(t *testing.T) {
	amqpURL := testkit.SharedRabbitMQ(t).VHost(t)
	s := startService(t, amqpURL, nil)
	ch := dial(t, amqpURL)
	inventory, email := consume(t, ch, events.QueueInventory), consume(t, ch, events.QueueEmail)

	status, header, raw := s.doHeader(t, http.MethodPost, "/orders", orders.PlaceRequest{
		Customer: events.Customer{Name: "Peter Rabbit", Email: "peter@example.com", Phone: "+44 20 7946 0958"},
		Region:   events.RegionEurope,
		Items:    []orders.LineRequest{carrots, can},
	})
	if status != http.StatusAccepted {
		t.Fatalf("POST /orders = %d %s, want 202", status, raw)
	}
	var accepted struct{ ID, Status string }
	decode(t, raw, &accepted)
	if accepted.ID == "" || accepted.Status != "pending" {
		t.Fatalf("POST /orders body = %s, want an id and status pending", raw)
	}
	if loc := header.Get("Location"); loc != "/orders/"+accepted.ID {
		t.Errorf("Location = %q, want /orders/%s", loc, accepted.ID)
	}

	o := s.order(t, accepted.ID)
	wantItems := []events.Item{{SKU: "carrot-seeds", Quantity: 3, UnitPriceCents: 299}, {SKU: "watering-can", Quantity: 1, UnitPriceCents: 2499}}
	if o.Status != orders.StatusPending || o.Region != events.RegionEurope || o.Customer.Email != "peter@example.com" ||
		o.TotalCents != 3*299+2499 || o.CreatedAt.IsZero() || !slices.Equal(o.Items, wantItems) {
		t.Errorf("GET /orders/%s = %+v, want a pending europe order of %v totalling 3396", o.ID, o, wantItems)
	}

	for _, q := range []*queueReader{inventory, email} {
		d := q.await(events.TypeOrderPlaced, o.ID, eventWait)
		var placed events.OrderPlaced
		decode(t, d.Body, &placed)
		if d.CorrelationId != o.ID || d.MessageId == "" || placed.TotalCents != o.TotalCents || !slices.Equal(placed.Items, wantItems) {
			t.Errorf("%s: OrderPlaced = %+v (correlation id %q, message id %q), want order %s priced as stored",
				q.queue, placed, d.CorrelationId, d.MessageId, o.ID)
		}
		// The request's trace continues through the outbox: the relay's publish is its child.
		if tp, _ := d.Headers["traceparent"].(string); len(tp) != 55 {
			t.Errorf("%s: OrderPlaced traceparent = %q, want a W3C trace context", q.queue, tp)
		}
	}
}

func TestReadEndpoints(t *testing.T) {
	s := startService(t, testkit.SharedRabbitMQ(t).VHost(t), nil)

	status, raw := s.do(t, http.MethodGet, "/products", nil)
	var products []orders.Product
	decode(t, raw, &products)
	if status != http.StatusOK || len(products) != 5 || products[0] != (orders.Product{SKU: "carrot-seeds", Name: "Carrot seeds", PriceCents: 299}) ||
		products[4].SKU != "rare-orchid" || products[4].PriceCents != 9999 {
		t.Errorf("GET /products = %d %s, want the five seeded products cheapest first", status, raw)
	}
	for _, id := range []string{"6f1c1b52-3f0e-4a57-9d5e-1d2b8f0c9a11", "not-a-uuid"} {
		if status, raw := s.do(t, http.MethodGet, "/orders/"+id, nil); status != http.StatusNotFound || !isErrorBody(raw) {
			t.Errorf("GET /orders/%s = %d %s, want 404 with an error body", id, status, raw)
		}
	}
	// Whether a SKU exists is only known to the catalogue, in the database.
	status, raw = s.do(t, http.MethodPost, "/orders", orders.PlaceRequest{
		Customer: events.Customer{Name: "Peter Rabbit", Email: "peter@example.com", Phone: "+44 20 7946 0958"},
		Region:   events.RegionAsia,
		Items:    []orders.LineRequest{carrots, {SKU: "golden-carrot", Quantity: 1}},
	})
	var body service.ErrorBody
	decode(t, raw, &body)
	if status != http.StatusBadRequest || body.Field != "items[1].sku" {
		t.Errorf("POST /orders with an unknown sku = %d %s, want 400 naming items[1].sku", status, raw)
	}
}

func TestStockReservedConfirmsOrderOnce(t *testing.T) {
	amqpURL := testkit.SharedRabbitMQ(t).VHost(t)
	s := startService(t, amqpURL, nil)
	ch := dial(t, amqpURL)
	email := consume(t, ch, events.QueueEmail)
	id := s.place(t, events.RegionEurope, carrots)
	other := s.place(t, events.RegionEurope, orchid)

	reserved := events.StockReserved{OrderID: id, Region: events.RegionEurope, Items: []events.Item{{SKU: "carrot-seeds", Quantity: 3}}}
	publish(t, ch, events.ExchangeTopic, events.InventoryReservedKey(events.RegionEurope), events.TypeStockReserved, "reserved-"+id, reserved)
	confirmed := s.awaitStatus(t, id, orders.StatusConfirmed)
	d := email.await(events.TypeOrderConfirmed, id, eventWait)
	var event events.OrderConfirmed
	decode(t, d.Body, &event)
	if d.Exchange != events.ExchangeTopic || d.RoutingKey != "order.europe.confirmed" || event.TotalCents != 3*299 || event.Customer.Name != "Peter Rabbit" {
		t.Errorf("OrderConfirmed = %+v via %s %q, want order %s on events.topic order.europe.confirmed", event, d.Exchange, d.RoutingKey, id)
	}

	// The broker delivers at least once: the same message again must change nothing. The
	// queue is handled in order, so once the verdict published after it has been handled,
	// so has the redelivery.
	publish(t, ch, events.ExchangeTopic, events.InventoryReservedKey(events.RegionEurope), events.TypeStockReserved, "reserved-"+id, reserved)
	publish(t, ch, events.ExchangeTopic, events.InventoryOutOfStockKey(events.RegionEurope), events.TypeStockOutOfStock, "out-"+other,
		events.StockOutOfStock{OrderID: other, Region: events.RegionEurope, MissingSKU: []string{"rare-orchid"}})
	email.await(events.TypeOrderRejected, other, eventWait)
	if n := email.count(events.TypeOrderConfirmed, id); n != 1 {
		t.Errorf("%d OrderConfirmed for order %s after a redelivery, want exactly 1", n, id)
	}
	if again := s.order(t, id); again.Status != orders.StatusConfirmed || !again.UpdatedAt.Equal(confirmed.UpdatedAt) {
		t.Errorf("after a redelivery the order is %s updated at %s, want it untouched (confirmed at %s)", again.Status, again.UpdatedAt, confirmed.UpdatedAt)
	}
}

func TestOutOfStockRejectsOrder(t *testing.T) {
	amqpURL := testkit.SharedRabbitMQ(t).VHost(t)
	s := startService(t, amqpURL, nil)
	ch := dial(t, amqpURL)
	email := consume(t, ch, events.QueueEmail)
	id := s.place(t, events.RegionAsia, carrots, orchid)

	publish(t, ch, events.ExchangeTopic, events.InventoryOutOfStockKey(events.RegionAsia), events.TypeStockOutOfStock, "out-"+id,
		events.StockOutOfStock{OrderID: id, Region: events.RegionAsia, MissingSKU: []string{"rare-orchid"}})
	o := s.awaitStatus(t, id, orders.StatusRejected)
	if !strings.Contains(o.Reason, "rare-orchid") {
		t.Errorf("reason = %q, want it to name rare-orchid", o.Reason)
	}
	d := email.await(events.TypeOrderRejected, id, eventWait)
	var event events.OrderRejected
	decode(t, d.Body, &event)
	if d.RoutingKey != "order.asia.rejected" || event.Reason != o.Reason || event.Customer.Email != "peter@example.com" {
		t.Errorf("OrderRejected = %+v via %q, want the order's reason on order.asia.rejected", event, d.RoutingKey)
	}
	if status, raw := s.do(t, http.MethodPost, "/orders/"+id+"/cancel", nil); status != http.StatusConflict {
		t.Errorf("cancel a rejected order = %d %s, want 409", status, raw)
	}
}

func TestCancelOrder(t *testing.T) {
	amqpURL := testkit.SharedRabbitMQ(t).VHost(t)
	s := startService(t, amqpURL, nil)
	ch := dial(t, amqpURL)
	inventory, email := consume(t, ch, events.QueueInventory), consume(t, ch, events.QueueEmail)
	id := s.place(t, events.RegionAmericas, can)

	status, raw := s.do(t, http.MethodPost, "/orders/"+id+"/cancel", nil)
	var o orders.Order
	decode(t, raw, &o)
	if status != http.StatusOK || o.ID != id || o.Status != orders.StatusCancelled || len(o.Items) != 1 {
		t.Fatalf("cancel = %d %s, want 200 with the cancelled order", status, raw)
	}
	for _, q := range []*queueReader{inventory, email} {
		d := q.await(events.TypeOrderCancelled, id, eventWait)
		var event events.OrderCancelled
		decode(t, d.Body, &event)
		if d.Exchange != events.ExchangeOrderEvents || event.Region != events.RegionAmericas || event.CancelledAt.IsZero() {
			t.Errorf("%s: OrderCancelled = %+v from %q, want order %s's from the fanout", q.queue, event, d.Exchange, id)
		}
	}
	status, raw = s.do(t, http.MethodPost, "/orders/"+id+"/cancel", nil)
	if status != http.StatusConflict || !isErrorBody(raw) {
		t.Errorf("second cancel = %d %s, want 409 with an error body", status, raw)
	}
	if status, raw := s.do(t, http.MethodPost, "/orders/6f1c1b52-3f0e-4a57-9d5e-1d2b8f0c9a11/cancel", nil); status != http.StatusNotFound {
		t.Errorf("cancel an unknown order = %d %s, want 404", status, raw)
	}

	// A confirmed order can still be cancelled.
	confirmed := s.place(t, events.RegionAmericas, carrots)
	publish(t, ch, events.ExchangeTopic, events.InventoryReservedKey(events.RegionAmericas), events.TypeStockReserved, "reserved-"+confirmed,
		events.StockReserved{OrderID: confirmed, Region: events.RegionAmericas})
	s.awaitStatus(t, confirmed, orders.StatusConfirmed)
	if status, raw := s.do(t, http.MethodPost, "/orders/"+confirmed+"/cancel", nil); status != http.StatusOK {
		t.Errorf("cancel a confirmed order = %d %s, want 200", status, raw)
	}

	// Inventory's verdict on an order cancelled meanwhile leaves it alone. The second
	// verdict is a barrier: when its OrderConfirmed arrives the first one has been handled.
	publish(t, ch, events.ExchangeTopic, events.InventoryReservedKey(events.RegionAmericas), events.TypeStockReserved, "late-"+id,
		events.StockReserved{OrderID: id, Region: events.RegionAmericas})
	barrier := s.place(t, events.RegionAmericas, carrots)
	publish(t, ch, events.ExchangeTopic, events.InventoryReservedKey(events.RegionAmericas), events.TypeStockReserved, "reserved-"+barrier,
		events.StockReserved{OrderID: barrier, Region: events.RegionAmericas})
	email.await(events.TypeOrderConfirmed, barrier, eventWait)
	if got := s.order(t, id); got.Status != orders.StatusCancelled || email.count(events.TypeOrderConfirmed, id) != 0 {
		t.Errorf("a late StockReserved made the cancelled order %s (%d OrderConfirmed), want it left alone",
			got.Status, email.count(events.TypeOrderConfirmed, id))
	}
}

func TestStockQuery(t *testing.T) {
	amqpURL := testkit.SharedRabbitMQ(t).VHost(t)
	const rpcTimeout = 500 * time.Millisecond
	s := startService(t, amqpURL, map[string]string{"RPC_TIMEOUT": rpcTimeout.String()})

	t.Run("answered", func(t *testing.T) {
		stop := respondToStockQueries(t, amqpURL, map[string]int{"carrot-seeds": 42})
		defer stop()
		status, raw := s.do(t, http.MethodGet, "/stock/carrot-seeds", nil)
		var level struct {
			SKU       string `json:"sku"`
			Available *int   `json:"available"`
		}
		decode(t, raw, &level)
		if status != http.StatusOK || level.SKU != "carrot-seeds" || level.Available == nil || *level.Available != 42 {
			t.Errorf("GET /stock/carrot-seeds = %d %s, want 200 with 42 available", status, raw)
		}
		if status, raw := s.do(t, http.MethodGet, "/stock/golden-carrot", nil); status != http.StatusNotFound || !isErrorBody(raw) {
			t.Errorf("GET /stock/golden-carrot = %d %s, want 404 with an error body", status, raw)
		}
	})
	t.Run("nobody answers", func(t *testing.T) {
		start := time.Now()
		status, raw := s.do(t, http.MethodGet, "/stock/carrot-seeds", nil)
		elapsed := time.Since(start)
		if status != http.StatusGatewayTimeout || !isErrorBody(raw) {
			t.Errorf("GET /stock/carrot-seeds = %d %s, want 504 with an error body", status, raw)
		}
		if elapsed < rpcTimeout || elapsed > rpcTimeout+time.Second {
			t.Errorf("the 504 came after %s, want just over RPC_TIMEOUT (%s)", elapsed, rpcTimeout)
		}
	})
}

// respondToStockQueries answers stock queries the way inventory does, from levels, until
// the returned function is called.
func respondToStockQueries(t *testing.T, amqpURL string, levels map[string]int) (stop func()) {
	t.Helper()
	ch := dial(t, amqpURL)
	queries, err := ch.Consume(events.QueueStockQuery, "", true, false, false, false, nil)
	if err != nil {
		t.Fatalf("consume %s: %v", events.QueueStockQuery, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for d := range queries {
			var q events.StockQuery
			if d.Type != events.TypeStockQuery || json.Unmarshal(d.Body, &q) != nil {
				continue
			}
			n, found := levels[q.SKU]
			body, _ := json.Marshal(events.StockLevel{SKU: q.SKU, Available: n, Found: found})
			_ = ch.Publish("", d.ReplyTo, false, false, amqp.Publishing{
				ContentType: "application/json", CorrelationId: d.CorrelationId, Type: events.TypeStockLevel, Body: body,
			})
		}
	}()
	return func() {
		_ = ch.Close()
		<-done
	}
}

func TestOrderSurvivesBrokerRestart(t *testing.T) {
	rabbit := testkit.OwnRabbitMQ(t)
	s := startService(t, rabbit.URL, nil)

	rabbit.Stop(t)
	// The order goes to the outbox, in the database: taking it needs no broker.
	id := s.place(t, events.RegionEurope, carrots)
	rabbit.Start(t)

	inventory := consume(t, dial(t, rabbit.URL), events.QueueInventory)
	d := inventory.await(events.TypeOrderPlaced, id, 60*time.Second)
	if d.CorrelationId != id {
		t.Errorf("OrderPlaced correlation id = %q, want %s", d.CorrelationId, id)
	}
}

func isErrorBody(raw []byte) bool {
	var body service.ErrorBody
	return json.Unmarshal(raw, &body) == nil && body.Error != ""
}
