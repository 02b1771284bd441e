package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenhq/warren/shared/auth"
	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/messaging"
	"github.com/warrenhq/warren/shared/testkit"
)

func TestMain(m *testing.M) { os.Exit(testkit.Run(m)) }

// inventory is the service under test, running in-process against a real broker and database.
type inventory struct{ *testkit.Component }

func startInventory(t *testing.T) *inventory {
	return startInventoryWith(t, nil)
}

// startInventoryWith starts inventory with env; the test's requests carry the token of
// sam, who is staff (PUT /stock needs it).
func startInventoryWith(t *testing.T, env map[string]string) *inventory {
	c := testkit.StartComponent(t, "inventory", run, events.Topology(events.DefaultSMSRegions), testkit.InOrder(env))
	c.Token = c.Hydra.Token(t, "sam", auth.RoleStaff)
	return &inventory{c}
}

// publish sends an event on the order.events fanout the way the order service's relay
// does: publishing the same message id again is a redelivery.
func (s *inventory) publish(messageID, typ string, v any) {
	s.T.Helper()
	s.PublishFanout(typ, messageID, v)
}

func (s *inventory) stock(sku string) int {
	s.T.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.URL+"/stock/"+sku, nil)
	resp := s.Do(req)
	defer resp.Body.Close()
	var body struct{ Available int }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
		s.T.Fatalf("GET /stock/%s: %d %v", sku, resp.StatusCode, err)
	}
	return body.Available
}

func (s *inventory) setStock(sku string, n int) {
	s.T.Helper()
	req, _ := http.NewRequest(http.MethodPut, s.URL+"/stock/"+sku, jsonBody(fmt.Sprintf(`{"available":%d}`, n)))
	resp := s.Do(req)
	if resp.StatusCode != http.StatusOK {
		s.T.Fatalf("PUT /stock/%s: %s", sku, resp.Status)
	}
	resp.Body.Close()
}

func placedOrder(id string, region events.Region, items ...events.Item) events.OrderPlaced {
	return events.OrderPlaced{OrderID: id, Region: region, Items: items, PlacedAt: time.Now()}
}

// settle returns every event inventory published to queue because of what the test sent
// before calling it, once all of it is out, so that a test can count events without
// sleeping. It sends two barrier orders, the second after the first's outcome arrived:
// inventory handles its queue in order, so everything sent before the first barrier has
// its outbox rows stored before that barrier's outcome. The relay publishes a batch in
// parallel by topic (the first barrier's outcome may overtake an earlier event of another
// order) but reads the next batch only when the broker has confirmed the whole current
// one; the second barrier's outcome, stored after the first's went out, comes in a later
// batch. So when it arrives, every earlier event is already in queue.
func (s *inventory) settle(queue string) []amqp.Delivery {
	s.T.Helper()
	var out []amqp.Delivery
	for i := range 2 {
		barrier := fmt.Sprintf("barrier-%d-%d", time.Now().UnixNano(), i)
		s.publish(barrier, events.TypeOrderPlaced, placedOrder(barrier, events.RegionEurope, events.Item{SKU: "no-such-sku", Quantity: 1}))
		for {
			d := testkit.Get(s.T, s.Ch, queue, 20*time.Second)
			if d.CorrelationId == barrier {
				break
			}
			if !strings.HasPrefix(d.CorrelationId, "barrier-") {
				out = append(out, d)
			}
		}
	}
	return out
}

func TestRedeliveredOrderPlacedReservesStockOnce(t *testing.T) {
	s := startInventory(t)
	s.setStock("widget", 10)
	order := placedOrder("o-1", events.RegionEurope, events.Item{SKU: "widget", Quantity: 3})

	s.publish("msg-1", events.TypeOrderPlaced, order)
	s.publish("msg-1", events.TypeOrderPlaced, order) // the broker redelivers, or the relay publishes twice

	out := s.settle(events.QueueOrder)
	if len(out) != 1 {
		t.Fatalf("%d outcome events for one order delivered twice, want 1", len(out))
	}
	if d := out[0]; d.Type != events.TypeStockReserved || d.RoutingKey != "inventory.europe.reserved" || d.CorrelationId != "o-1" {
		t.Fatalf("got %s with key %s, correlation %q", d.Type, d.RoutingKey, d.CorrelationId)
	}
	if got := s.stock("widget"); got != 7 {
		t.Errorf("stock is %d after one order of 3 from 10, delivered twice", got)
	}
	if n := testkit.Depth(t, s.Ch, messaging.DeadLetterQueueName(events.QueueInventory)); n != 0 {
		t.Errorf("%d messages dead-lettered; a redelivery must be a quiet no-op", n)
	}
}

func TestOutOfStockReservesNothing(t *testing.T) {
	s := startInventory(t)
	s.setStock("widget", 5)
	s.setStock("gadget", 1)
	s.publish("msg-2", events.TypeOrderPlaced, placedOrder("o-2", events.RegionAsia,
		events.Item{SKU: "widget", Quantity: 2}, events.Item{SKU: "gadget", Quantity: 2}, events.Item{SKU: "nope", Quantity: 1}))

	d := testkit.Get(t, s.Ch, events.QueueOrder, 20*time.Second)
	var out events.StockOutOfStock
	if err := json.Unmarshal(d.Body, &out); err != nil || d.RoutingKey != "inventory.asia.out_of_stock" {
		t.Fatalf("got %s %s: %v", d.RoutingKey, d.Body, err)
	}
	if fmt.Sprint(out.MissingSKU) != "[gadget nope]" {
		t.Errorf("missing %v, want [gadget nope]", out.MissingSKU)
	}
	if w, g := s.stock("widget"), s.stock("gadget"); w != 5 || g != 1 {
		t.Errorf("stock changed to widget=%d gadget=%d; an order is reserved whole or not at all", w, g)
	}
}

func TestCancelReleasesStockOnce(t *testing.T) {
	s := startInventory(t)
	s.setStock("widget", 10)
	s.publish("msg-3", events.TypeOrderPlaced, placedOrder("o-3", events.RegionEurope, events.Item{SKU: "widget", Quantity: 4}))
	cancel := events.OrderCancelled{OrderID: "o-3", Region: events.RegionEurope}
	s.publish("msg-4", events.TypeOrderCancelled, cancel)
	s.publish("msg-4", events.TypeOrderCancelled, cancel)

	released := 0
	for _, d := range s.settle(events.QueueAnalytics) { // analytics binds "#": it sees every outcome
		if d.Type == events.TypeStockReleased && d.CorrelationId == "o-3" {
			released++
		}
	}
	if released != 1 {
		t.Errorf("%d StockReleased events, want 1", released)
	}
	if got := s.stock("widget"); got != 10 {
		t.Errorf("stock is %d after reserve 4 and cancel, want 10", got)
	}
}

func TestCancelBeforePlacedReservesNothing(t *testing.T) {
	s := startInventory(t)
	s.setStock("widget", 10)
	s.publish("msg-5", events.TypeOrderCancelled, events.OrderCancelled{OrderID: "o-5", Region: events.RegionEurope})
	s.publish("msg-6", events.TypeOrderPlaced, placedOrder("o-5", events.RegionEurope, events.Item{SKU: "widget", Quantity: 4}))
	if out := s.settle(events.QueueOrder); len(out) != 0 {
		t.Errorf("a cancelled order got %d outcome events", len(out))
	}
	if got := s.stock("widget"); got != 10 {
		t.Errorf("stock is %d; a cancelled order must reserve nothing", got)
	}
}

func TestStockQueryOverRequestReply(t *testing.T) {
	s := startInventory(t)
	s.setStock("widget", 12)
	body, _ := json.Marshal(events.StockQuery{SKU: "widget"})
	replies, err := s.Ch.Consume("amq.rabbitmq.reply-to", "", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Ch.PublishWithContext(context.Background(), events.ExchangeRPC, events.RoutingKeyStockQuery, false, false, amqp.Publishing{
		MessageId: "q-1", Type: events.TypeStockQuery, Body: body, ReplyTo: "amq.rabbitmq.reply-to", CorrelationId: "c-1",
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-replies:
		var level events.StockLevel
		if err := json.Unmarshal(d.Body, &level); err != nil || d.CorrelationId != "c-1" || level != (events.StockLevel{SKU: "widget", Available: 12, Found: true}) {
			t.Errorf("reply %s (correlation %q): %v", d.Body, d.CorrelationId, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no reply")
	}
}

// INVENTORY_FAIL_SKUS makes orders of a SKU fail transiently: they are retried, then
// dead-lettered with the reason, while other orders go on.
func TestFailingSKUIsRetriedThenDeadLettered(t *testing.T) {
	s := startInventoryWith(t, map[string]string{"INVENTORY_FAIL_SKUS": "cursed-sku"})
	s.setStock("widget", 10)
	s.publish("msg-7", events.TypeOrderPlaced, placedOrder("o-7", events.RegionEurope,
		events.Item{SKU: "widget", Quantity: 1}, events.Item{SKU: "cursed-sku", Quantity: 1}))
	s.publish("msg-8", events.TypeOrderPlaced, placedOrder("o-8", events.RegionEurope, events.Item{SKU: "widget", Quantity: 2}))

	d := testkit.Get(t, s.Ch, messaging.DeadLetterQueueName(events.QueueInventory), 30*time.Second)
	if reason, _ := d.Headers[messaging.HeaderDeadLetterReason].(string); d.MessageId != "msg-7" ||
		!strings.Contains(reason, "warehouse system unavailable") || d.Headers[messaging.HeaderDeadLetterTries] != "4" {
		t.Errorf("dead letter %s: reason %q after %v attempts", d.MessageId, reason, d.Headers[messaging.HeaderDeadLetterTries])
	}
	out := s.settle(events.QueueOrder)
	if len(out) != 1 || out[0].CorrelationId != "o-8" {
		t.Errorf("outcomes %d (want only o-8's)", len(out))
	}
	if got := s.stock("widget"); got != 8 {
		t.Errorf("stock %d, want 8: the failed order must reserve nothing", got)
	}
}

// With the default concurrency, many orders for the same stock are handled at once: row
// locks keep the count exact, and locking SKUs in one order keeps two orders that hold the
// same SKUs in opposite order, or a reservation and a release, from deadlocking.
func TestConcurrentHandlingNeverOversells(t *testing.T) {
	const orders, widgets = 40, 15
	s := startInventoryWith(t, map[string]string{"CONSUMER_CONCURRENCY": "8"})
	s.setStock("widget", widgets)
	s.setStock("gadget", 1000)
	place := func(id string, i int) {
		items := []events.Item{{SKU: "widget", Quantity: 1}, {SKU: "gadget", Quantity: 1}}
		if i%2 == 1 {
			items[0], items[1] = items[1], items[0]
		}
		s.publish("msg-"+id, events.TypeOrderPlaced, placedOrder(id, events.RegionEurope, items...))
	}
	// verdicts reads one verdict for each of n orders and returns those reserved.
	verdicts := func(n int) []string {
		var reserved []string
		seen := map[string]bool{}
		for len(seen) < n {
			d := testkit.Get(t, s.Ch, events.QueueOrder, 30*time.Second)
			if seen[d.CorrelationId] {
				t.Errorf("a second verdict for %s", d.CorrelationId)
			}
			seen[d.CorrelationId] = true
			if d.Type == events.TypeStockReserved {
				reserved = append(reserved, d.CorrelationId)
			}
		}
		return reserved
	}

	for i := range orders {
		place(fmt.Sprintf("a-%d", i), i)
	}
	first := verdicts(orders)
	if len(first) != widgets || s.stock("widget") != 0 || s.stock("gadget") != 1000-widgets {
		t.Fatalf("%d reserved, stock widget %d gadget %d; want %d reserved and none left",
			len(first), s.stock("widget"), s.stock("gadget"), widgets)
	}

	// Releases and new reservations of the same rows, all at once.
	for i := range orders {
		if i < len(first) {
			id := first[i]
			s.publish("cancel-"+id, events.TypeOrderCancelled, events.OrderCancelled{OrderID: id, Region: events.RegionEurope})
		}
		place(fmt.Sprintf("b-%d", i), i)
	}
	second := verdicts(orders)
	// Releases announce themselves to analytics only: wait for the stock they give back.
	testkit.Eventually(t, 30*time.Second, func() string {
		widget, gadget := s.stock("widget"), s.stock("gadget")
		if widget != widgets-len(second) || gadget != 1000-len(second) {
			return fmt.Sprintf("stock widget %d gadget %d, want %d and %d (%d released, %d reserved again)",
				widget, gadget, widgets-len(second), 1000-len(second), widgets, len(second))
		}
		return ""
	})
	if n := testkit.Depth(t, s.Ch, messaging.DeadLetterQueueName(events.QueueInventory)); n != 0 {
		t.Errorf("%d messages dead-lettered, want none", n)
	}
}
