package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/messaging"
	"github.com/warrenhq/warren/shared/testkit"
)

// publishOccurred publishes an OrderPlaced on the order.events fanout stamped, as
// messaging.NewEvent stamps every event, with when it occurred.
func (s *inventory) publishOccurred(messageID string, order events.OrderPlaced, occurredAt time.Time) {
	s.T.Helper()
	body, err := json.Marshal(order)
	if err != nil {
		s.T.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	confirm, err := s.Ch.PublishWithDeferredConfirmWithContext(ctx, events.ExchangeOrderEvents, "", false, false, amqp.Publishing{
		ContentType: "application/json", DeliveryMode: amqp.Persistent,
		MessageId: messageID, Type: events.TypeOrderPlaced, CorrelationId: order.OrderID, Body: body,
		Headers: amqp.Table{messaging.HeaderOccurredAt: occurredAt.UTC().Format(time.RFC3339Nano)},
	})
	if err != nil {
		s.T.Fatal(err)
	}
	if ok, err := confirm.WaitContext(ctx); err != nil || !ok {
		s.T.Fatalf("publish %s: not confirmed (%v)", messageID, err)
	}
}

// An OrderPlaced replayed from the dead-letter archive after the ledger's horizon (27 days
// at the default 30-day LEDGER_RETENTION) may have reserved its stock already, its record
// since expired: it is dead-lettered with the reason and reserves nothing. A fresh one
// next to it reserves as always.
func TestOrderPlacedOlderThanTheLedgerHorizonIsDeadLetteredNotReserved(t *testing.T) {
	s := startInventory(t)
	s.setStock("widget", 10)

	s.publishOccurred("msg-old", placedOrder("o-old", events.RegionEurope, events.Item{SKU: "widget", Quantity: 3}),
		time.Now().Add(-28*24*time.Hour))
	s.publishOccurred("msg-new", placedOrder("o-new", events.RegionEurope, events.Item{SKU: "widget", Quantity: 2}),
		time.Now())

	d := testkit.Get(t, s.Ch, messaging.DeadLetterQueueName(events.QueueInventory), 30*time.Second)
	reason, _ := d.Headers[messaging.HeaderDeadLetterReason].(string)
	if d.MessageId != "msg-old" || !strings.HasPrefix(reason, "permanent: ") ||
		!strings.Contains(reason, "horizon (27d)") || !strings.Contains(reason, "may have been applied already") {
		t.Errorf("dead letter %s with reason %q, want msg-old refused as older than the horizon", d.MessageId, reason)
	}
	if tries := d.Headers[messaging.HeaderDeadLetterTries]; tries != "1" {
		t.Errorf("refused after %v attempts, want 1: age is not fixed by retrying", tries)
	}
	out := s.settle(events.QueueOrder)
	if len(out) != 1 || out[0].CorrelationId != "o-new" || out[0].Type != events.TypeStockReserved {
		t.Fatalf("%d outcomes, want only o-new's reservation", len(out))
	}
	if got := s.stock("widget"); got != 8 {
		t.Errorf("stock %d, want 8: only the fresh order of 2 reserves", got)
	}
	if n := testkit.Depth(t, s.Ch, messaging.DeadLetterQueueName(events.QueueInventory)); n != 0 {
		t.Errorf("%d more dead letters, want none", n)
	}
}
