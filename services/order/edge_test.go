package main

import (
	"net/http"
	"testing"
	"time"

	"github.com/warrenhq/warren/services/order/internal/orders"
	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/service"
	"github.com/warrenhq/warren/shared/testkit"
)

// TestEdgeRefusesWhatCannotBeFinished replays issue 10 against the real service (broker
// and database wired): a name with CR/LF was accepted and never mailed, a SKU with a NUL
// answered 500, and GET /stock/%09 answered 504 after the RPC timeout and left a question
// in inventory's dead-letter queue. Each must now be a 400 naming the field, at once, with
// nothing published. Names with a quote or backslashes are accepted, and travel in
// OrderPlaced as they were typed.
func TestEdgeRefusesWhatCannotBeFinished(t *testing.T) {
	amqpURL := testkit.SharedRabbitMQ(t).VHost(t)
	s := startService(t, amqpURL, map[string]string{"RPC_TIMEOUT": "2s"})
	ch := dial(t, amqpURL)
	email := consume(t, ch, events.QueueEmail)
	peter := events.Customer{Name: "Peter Rabbit", Email: "peter@example.com", Phone: "+44 20 7946 0958"}

	refused := []struct {
		name      string
		method    string
		path      string
		body      any
		wantField string
	}{
		{"name with CR LF", http.MethodPost, "/orders", orders.PlaceRequest{
			Customer: events.Customer{Name: "Peter\r\nBcc: eve@example.com", Email: peter.Email, Phone: peter.Phone},
			Region:   events.RegionEurope, Items: []orders.LineRequest{carrots}}, "customer.name"},
		{"sku with NUL", http.MethodPost, "/orders", orders.PlaceRequest{
			Customer: peter, Region: events.RegionEurope,
			Items: []orders.LineRequest{carrots, {SKU: "watering\x00can", Quantity: 1}}}, "items[1].sku"},
		{"stock of a tab", http.MethodGet, "/stock/%09", nil, "sku"},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			status, raw := s.do(t, tc.method, tc.path, tc.body)
			var body service.ErrorBody
			decode(t, raw, &body)
			if status != http.StatusBadRequest || body.Field != tc.wantField || body.Error == "" {
				t.Errorf("%s %s = %d %s, want 400 naming %s", tc.method, tc.path, status, raw, tc.wantField)
			}
			if elapsed := time.Since(start); elapsed > time.Second {
				t.Errorf("the answer took %s: it waited for something", elapsed)
			}
		})
	}
	if n := testkit.Depth(t, ch, events.QueueStockQuery); n != 0 {
		t.Errorf("%s holds %d questions, want none: an invalid SKU was asked about", events.QueueStockQuery, n)
	}

	for _, name := range []string{`Dwayne "The Rock`, `Back\slash\`} {
		status, raw := s.do(t, http.MethodPost, "/orders", orders.PlaceRequest{
			Customer: events.Customer{Name: name, Email: peter.Email, Phone: peter.Phone},
			Region:   events.RegionAmericas, Items: []orders.LineRequest{carrots}})
		if status != http.StatusAccepted {
			t.Fatalf("POST /orders for %q = %d %s, want 202", name, status, raw)
		}
		var accepted struct{ ID string }
		decode(t, raw, &accepted)
		var placed events.OrderPlaced
		decode(t, email.await(events.TypeOrderPlaced, accepted.ID, eventWait).Body, &placed)
		if to, err := placed.Customer.MailAddress(); err != nil || to.Name != name {
			t.Errorf("OrderPlaced for %q mails to %v, %v; want the name as typed", name, to, err)
		}
	}
	// Nothing refused was published: the email queue saw only the two accepted orders.
	if n := len(email.seen); n != 2 {
		t.Errorf("the email queue got %d messages, want the 2 accepted orders", n)
	}
}
