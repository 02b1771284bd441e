package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenhq/warren/shared/auth"
	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/messaging"
	"github.com/warrenhq/warren/shared/service"
	"github.com/warrenhq/warren/shared/testkit"
)

// TestStockRoutesRefuseInvalidSKUs: GET and PUT /stock/{sku} check the contract's SKU rule
// and answer 400 naming "sku"; a NUL byte reached PostgreSQL and answered 500.
func TestStockRoutesRefuseInvalidSKUs(t *testing.T) {
	s := startInventory(t)
	for _, sku := range []string{"%00", "%09", "carrot%0Aseeds", "%7F", strings.Repeat("s", 65)} {
		for _, method := range []string{http.MethodGet, http.MethodPut} {
			req, _ := http.NewRequest(method, s.URL+"/stock/"+sku, jsonBody(`{"available":1}`))
			resp := s.Do(req)
			var body service.ErrorBody
			err := json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest || err != nil || body.Field != "sku" {
				t.Errorf("%s /stock/%s = %d %+v (%v), want 400 naming sku", method, sku, resp.StatusCode, body, err)
			}
		}
	}
}

// TestInvalidStockQueryIsAnswered: a query inventory cannot answer (its SKU breaks the
// rule) gets a reply saying so, at once, instead of being dead-lettered while the
// requester waits out its timeout (issue 10's GET /stock/%09).
func TestInvalidStockQueryIsAnswered(t *testing.T) {
	s := startInventory(t)
	replies, err := s.Ch.Consume("amq.rabbitmq.reply-to", "", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for corrID, body := range map[string]string{"c-tab": `{"sku":"\t"}`, "c-nul": `{"sku":"a\u0000b"}`, "c-json": `{"sku":`} {
		err = s.Ch.PublishWithContext(context.Background(), events.ExchangeRPC, events.RoutingKeyStockQuery, false, false, amqp.Publishing{
			MessageId: "q-" + corrID, Type: events.TypeStockQuery, Body: []byte(body), ReplyTo: "amq.rabbitmq.reply-to", CorrelationId: corrID,
		})
		if err != nil {
			t.Fatal(err)
		}
		select {
		case d := <-replies:
			var level events.StockLevel
			if err := json.Unmarshal(d.Body, &level); err != nil || d.CorrelationId != corrID || level.Invalid == "" || level.Found {
				t.Errorf("reply to %s: %s (correlation %q, %v), want one saying the query is invalid", body, d.Body, d.CorrelationId, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no reply to %s", body)
		}
	}
	if n := testkit.Depth(t, s.Ch, messaging.DeadLetterQueueName(events.QueueStockQuery)); n != 0 {
		t.Errorf("%d stock queries dead-lettered, want none: each was answered", n)
	}
}

// Anyone with a token reads stock; only staff sets it. No token is a 401.
func TestStockIsSetByStaff(t *testing.T) {
	s := startInventory(t)
	customer := s.Hydra.Token(t, "alice", auth.RoleCustomer)
	for _, c := range []struct {
		method, who, token string
		want               int
	}{
		{http.MethodGet, "nobody", "", http.StatusUnauthorized},
		{http.MethodGet, "a customer", customer, http.StatusOK},
		{http.MethodPut, "nobody", "", http.StatusUnauthorized},
		{http.MethodPut, "a customer", customer, http.StatusForbidden},
	} {
		if got := s.StatusAs(c.method, "/stock/carrot-seeds", c.token); got != c.want {
			t.Errorf("%s /stock/carrot-seeds as %s = %d, want %d", c.method, c.who, got, c.want)
		}
	}
	s.setStock("carrot-seeds", 7) // as sam, who is staff
	if got := s.stock("carrot-seeds"); got != 7 {
		t.Errorf("stock after staff's PUT = %d, want 7", got)
	}
}
