package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/warrenhq/warren/shared/events"
)

// One order is one trace: the request's span, and from it every publish and every
// consumer's processing across the broker, in all five services, each hop the child of the
// hop that caused it.
func TestOneOrderIsOneTrace(t *testing.T) {
	s := system(t)
	traceID, callerSpan := randomHex(16), randomHex(8)
	header := http.Header{"Traceparent": {fmt.Sprintf("00-%s-%s-01", traceID, callerSpan)}}

	// europe, so that sms takes part.
	id := s.Order.Place(t, OrderRequest{Customer: customer(t, 1), Region: events.RegionEurope,
		Items: []Line{{SKU: "garden-trowel", Quantity: 1}}}, header)
	if o := s.Order.Settled(t, id); o.Status != StatusConfirmed {
		t.Fatalf("order %s is %s, want confirmed", id, o.Status)
	}

	// Spans leave each service in batches: wait for the whole trace.
	var trace *Trace
	start := time.Now()
	Eventually(t, 45*time.Second, "trace "+traceID+" complete in Jaeger", func() (err error) {
		if trace, err = s.Jaeger.Trace(t.Context(), traceID); err != nil {
			return err
		}
		return checkOrderTrace(trace, callerSpan, events.RegionEurope)
	})
	t.Logf("trace: order %s is trace %s, %d spans from %d services, every hop parented (complete after %s)",
		id, traceID, len(trace.Spans), len(trace.Services()), time.Since(start).Round(100*time.Millisecond))
}

// checkOrderTrace checks the causal chain of an order that was confirmed, and returns every
// link that is missing or wrong.
func checkOrderTrace(tr *Trace, callerSpan string, region events.Region) error {
	var errs []error
	// one finds the single span of service named op with attrs; a missing one is reported.
	one := func(service, op string, attrs ...string) *Span {
		found := tr.Find(service, op, attrs...)
		if len(found) != 1 {
			errs = append(errs, fmt.Errorf("%d spans %q of %s %v, want 1", len(found), op, service, attrs))
			return nil
		}
		return &found[0]
	}
	childOf := func(child, parent *Span, what string) {
		if child != nil && parent != nil && child.Parent() != parent.SpanID {
			errs = append(errs, fmt.Errorf("%s: parent %s, want %s %q", what, child.Parent(), parent.SpanID, parent.OperationName))
		}
	}
	const kind, key, typ = "span.kind", "messaging.rabbitmq.destination.routing_key", "messaging.message.type"

	request := one("order", "POST /orders", kind, "server")
	if request != nil && request.Parent() != callerSpan {
		errs = append(errs, fmt.Errorf("POST /orders: parent %s, want the caller's span %s", request.Parent(), callerSpan))
	}
	placed := one("order", "publish "+events.ExchangeOrderEvents, kind, "producer")
	childOf(placed, request, "OrderPlaced published")
	reserving := one("inventory", "process "+events.QueueInventory, kind, "consumer", typ, events.TypeOrderPlaced)
	childOf(reserving, placed, "inventory's processing")
	reserved := one("inventory", "publish "+events.ExchangeTopic, kind, "producer", key, events.InventoryReservedKey(region))
	childOf(reserved, reserving, "StockReserved published")
	settling := one("order", "process "+events.QueueOrder, kind, "consumer", typ, events.TypeStockReserved)
	childOf(settling, reserved, "order's processing")
	confirmed := one("order", "publish "+events.ExchangeTopic, kind, "producer", key, events.OrderConfirmedKey(region))
	childOf(confirmed, settling, "OrderConfirmed published")

	// Every copy each consumer got, under the publish that sent it.
	for _, c := range []struct {
		service, queue, typ string
		parent              *Span
	}{
		{"email", events.QueueEmail, events.TypeOrderPlaced, placed},
		{"email", events.QueueEmail, events.TypeOrderConfirmed, confirmed},
		{"sms", events.QueueSMS, events.TypeOrderConfirmed, confirmed},
		{"analytics", events.QueueAnalytics, events.TypeOrderPlaced, placed},
		{"analytics", events.QueueAnalytics, events.TypeStockReserved, reserved},
		{"analytics", events.QueueAnalytics, events.TypeOrderConfirmed, confirmed},
	} {
		span := one(c.service, "process "+c.queue, kind, "consumer", typ, c.typ)
		childOf(span, c.parent, c.service+"'s processing of "+c.typ)
	}
	for _, svc := range []string{"order", "inventory", "email", "sms", "analytics"} {
		if !tr.Services()[svc] {
			errs = append(errs, fmt.Errorf("no span from %s", svc))
		}
	}
	return errors.Join(errs...)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
