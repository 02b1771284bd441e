package main

import (
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warrenhq/warren/services/sms/internal/texting"
	"github.com/warrenhq/warren/shared/auth"
	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/messaging"
	"github.com/warrenhq/warren/shared/testkit"
)

func TestMain(m *testing.M) { os.Exit(testkit.Run(m)) }

// wideTopology binds the sms queue to every region's confirmations, as a broker keeps it
// after a wider SMS_REGIONS: the service must narrow it at start-up.
var wideTopology = events.Topology(events.Regions)

func confirmed(orderID string, r events.Region) events.OrderConfirmed {
	return events.OrderConfirmed{OrderID: orderID, Region: r, TotalCents: 990,
		Customer: events.Customer{Name: "Ada", Email: "ada@example.com", Phone: "+44 20 7946 0958"}}
}

func (h *harness) publishConfirmed(id string, e events.OrderConfirmed) {
	h.T.Helper()
	h.Publish(events.ExchangeTopic, events.OrderConfirmedKey(e.Region), events.TypeOrderConfirmed, id, e)
}

// texts is GET /messages.
func (h *harness) texts(orderID string) []texting.Text {
	var body struct{ Messages []texting.Text }
	h.GetJSON("/messages?order_id="+orderID, &body)
	return body.Messages
}

// waitTexts waits until GET /messages lists n texts for orderID ("" for all).
func (h *harness) waitTexts(orderID string, n int) []texting.Text {
	h.T.Helper()
	var texts []texting.Text
	testkit.Eventually(h.T, 30*time.Second, func() string {
		if texts = h.texts(orderID); len(texts) != n {
			return fmt.Sprintf("%d texts for %q, want %d: %+v", len(texts), orderID, n, texts)
		}
		return ""
	})
	return texts
}

// deliveries reads from /metrics how many messages of typ the sms queue handled.
func (h *harness) deliveries(typ string) int {
	prefix := fmt.Sprintf("warren_messages_processed_total{queue=%q,type=%q} ", events.QueueSMS, typ)
	for line := range strings.Lines(h.Metrics()) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), prefix); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return 0
}

func TestConfirmationIsTexted(t *testing.T) {
	h := startService(t, "sms", wideTopology, nil)
	h.publishConfirmed("m-confirmed", confirmed("o-1", events.RegionEurope))

	texts := h.waitTexts("o-1", 1)
	if got := texts[0]; got.Body != "Warren: your order o-1 is confirmed" || got.To != "+442079460958" || got.MessageID != "m-confirmed" {
		t.Errorf("text = %+v", got)
	}
	if n := len(h.texts("")); n != 1 {
		t.Errorf("%d texts in all, want 1", n)
	}
}

// oldTopology is the broker as a release that bound the sms queue to the order.events
// fanout left it: the queue still bound there, and nothing retired.
func oldTopology() messaging.Topology {
	topology := events.Topology(events.Regions)
	for i, q := range topology.Queues {
		if q.Name == events.QueueSMS {
			q.Bindings = append(q.Bindings, q.Retired...)
			q.Retired = nil
			topology.Queues[i] = q
		}
	}
	return topology
}

// On a broker upgraded in place, the service removes the sms queue's old binding to the
// fanout at start-up, so new OrderPlaced and OrderCancelled no longer reach it; those
// queued before the upgrade are acknowledged without a text, not dead-lettered.
func TestUpgradedBrokerStopsRoutingOrderEventsToSMS(t *testing.T) {
	h := startService(t, "sms", oldTopology(), nil)
	// Queued before the upgrade (straight into the queue: the binding is gone already).
	h.Publish("", events.QueueSMS, events.TypeOrderPlaced, "m-old-placed", events.OrderPlaced{OrderID: "o-old",
		Region: events.RegionEurope, Items: []events.Item{{SKU: "carrot-seeds", Quantity: 1}}})
	h.Publish("", events.QueueSMS, events.TypeOrderCancelled, "m-old-cancelled", events.OrderCancelled{OrderID: "o-old", Region: events.RegionEurope})
	// Published after: the fanout routes them to the other services' queues only.
	h.PublishFanout(events.TypeOrderPlaced, "m-new-placed", events.OrderPlaced{OrderID: "o-new",
		Region: events.RegionEurope, Items: []events.Item{{SKU: "carrot-seeds", Quantity: 1}}})
	h.PublishFanout(events.TypeOrderCancelled, "m-new-cancelled", events.OrderCancelled{OrderID: "o-new", Region: events.RegionEurope})
	h.publishConfirmed("m-barrier", confirmed("o-new", events.RegionEurope))

	// One consumer handles the queue in order: once the text exists, everything routed
	// here before it was handled.
	h.waitTexts("o-new", 1)
	for _, typ := range []string{events.TypeOrderPlaced, events.TypeOrderCancelled} {
		if n := h.deliveries(typ); n != 1 {
			t.Errorf("sms handled %d of type %s, want 1 (the one queued before the upgrade): the fanout binding was not removed", n, typ)
		}
	}
	if n := testkit.Depth(t, h.Ch, messaging.DeadLetterQueueName(events.QueueSMS)); n != 0 {
		t.Errorf("%d messages dead-lettered, want none", n)
	}
	if n := testkit.Depth(t, h.Ch, events.QueueInventory); n != 2 {
		t.Errorf("inventory's queue holds %d messages, want both fanout messages", n)
	}
}

func TestUnservedRegionIsNotRoutedToSMS(t *testing.T) {
	h := startService(t, "sms", wideTopology, nil) // SMS_REGIONS defaults to europe,americas
	h.publishConfirmed("m-asia", confirmed("o-asia", events.RegionAsia))
	h.publishConfirmed("m-europe", confirmed("o-europe", events.RegionEurope))

	// One consumer handles the queue in order: once the europe text exists, an asia
	// confirmation routed here would have been handled too.
	h.waitTexts("o-europe", 1)
	if texts := h.texts(""); len(texts) != 1 {
		t.Errorf("texts = %+v, want only o-europe's", texts)
	}
	if n := h.deliveries(events.TypeOrderConfirmed); n != 1 {
		t.Errorf("sms queue got %d confirmations, want 1: the asia binding was not removed", n)
	}
	// Both were published and routed: analytics (not running here) holds both.
	if n := testkit.Depth(t, h.Ch, events.QueueAnalytics); n != 2 {
		t.Errorf("analytics queue holds %d messages, want 2", n)
	}
}

func TestRegionSetting(t *testing.T) {
	h := startService(t, "sms", wideTopology, map[string]string{"SMS_REGIONS": "asia"})
	h.publishConfirmed("m-europe", confirmed("o-europe", events.RegionEurope))
	h.publishConfirmed("m-asia", confirmed("o-asia", events.RegionAsia))

	h.waitTexts("o-asia", 1)
	if texts := h.texts(""); len(texts) != 1 {
		t.Errorf("texts = %+v, want only o-asia's", texts)
	}
}

func TestRedeliveredConfirmationTextsOnce(t *testing.T) {
	h := startService(t, "sms", wideTopology, nil)
	h.publishConfirmed("m-dup", confirmed("o-1", events.RegionAmericas))
	h.publishConfirmed("m-dup", confirmed("o-1", events.RegionAmericas))
	h.publishConfirmed("m-barrier", confirmed("o-2", events.RegionAmericas))

	h.waitTexts("o-2", 1)
	if texts := h.texts("o-1"); len(texts) != 1 {
		t.Errorf("o-1 texts = %+v, want exactly one", texts)
	}
	if n := h.deliveries(events.TypeOrderConfirmed); n != 3 {
		t.Errorf("%d confirmations handled, want 3 (the duplicate was delivered, then skipped)", n)
	}
}

// A number no one can text is dead-lettered, and neither the dead letter's reason nor any
// log line repeats it (or the customer's address): the order id says which order it was.
func TestUntextableNumberLeavesNoNumberInLogsOrDeadLetters(t *testing.T) {
	h := startService(t, "sms", wideTopology, nil)
	e := confirmed("o-bad-phone", events.RegionEurope)
	e.Customer.Phone = "+44 20 7946 0958 ext 7"
	h.publishConfirmed("m-bad-phone", e)

	dead := testkit.Get(t, h.Ch, messaging.DeadLetterQueueName(events.QueueSMS), 30*time.Second)
	reason, _ := dead.Headers[messaging.HeaderDeadLetterReason].(string)
	if dead.MessageId != "m-bad-phone" || !strings.Contains(reason, "customer.phone") {
		t.Errorf("dead letter %q with reason %q; want m-bad-phone saying what is wrong with the number", dead.MessageId, reason)
	}
	testkit.Eventually(t, 10*time.Second, func() string {
		if !strings.Contains(h.Logs(), "message dead-lettered") {
			return "no log line says the message was dead-lettered"
		}
		return ""
	})
	for what, text := range map[string]string{"dead-letter reason": reason, "logs": h.Logs()} {
		for _, secret := range []string{"7946", "2079460958", e.Customer.Email} {
			if strings.Contains(text, secret) {
				t.Errorf("%s hold %q:\n%s", what, secret, text)
			}
		}
	}
}

// GET /messages is for staff: no token is a 401, a customer's token a 403.
func TestMessagesIsForStaff(t *testing.T) {
	h := startService(t, "sms", wideTopology, nil)
	customer := h.Hydra.Token(t, "alice", auth.RoleCustomer)
	for _, c := range []struct {
		who, token string
		want       int
	}{{"nobody", "", http.StatusUnauthorized}, {"a customer", customer, http.StatusForbidden}, {"staff", h.Token, http.StatusOK}} {
		if got := h.StatusAs(http.MethodGet, "/messages", c.token); got != c.want {
			t.Errorf("GET /messages as %s = %d, want %d", c.who, got, c.want)
		}
	}
}
