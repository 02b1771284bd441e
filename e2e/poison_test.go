package e2e

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/messaging"
)

// A message no consumer can ever read goes to its queue's dead-letter queue with the reason,
// and the consumers carry on.
func TestPoisonMessageIsDeadLettered(t *testing.T) {
	s := system(t)
	ch := amqpChannel(t, s)
	dlq := messaging.DeadLetterQueueName(events.QueueEmail)

	// Straight into the email queue through the default exchange: an OrderPlaced by its
	// type, but its JSON breaks off.
	poisonID := "poison-" + s.runID
	publish(t, ch, "", events.QueueEmail, amqp.Publishing{
		MessageId:    poisonID,
		Type:         events.TypeOrderPlaced,
		ContentType:  "application/json",
		DeliveryMode: amqp.Persistent,
		Body:         []byte(`{"order_id": "poison", "items": [{"sku": "carrot-`),
	})

	var dead amqp.Delivery
	Eventually(t, 30*time.Second, "the poison message in "+dlq, func() error {
		d, ok, err := ch.Get(dlq, false)
		switch {
		case err != nil:
			t.Fatalf("basic.get %s: %v", dlq, err)
		case !ok:
			return errors.New("the queue is empty")
		}
		if err := d.Ack(false); err != nil {
			t.Fatal(err)
		}
		if d.MessageId != poisonID {
			// Not ours: a message a service could not handle, which is a bug of its own.
			t.Errorf("unexpected dead letter %s (%s): %v", d.MessageId, d.Type, d.Headers[messaging.HeaderDeadLetterReason])
			return errors.New("only other dead letters so far")
		}
		dead = d
		return nil
	})
	reason, _ := dead.Headers[messaging.HeaderDeadLetterReason].(string)
	if !strings.Contains(reason, "decode") {
		t.Errorf("%s = %q, want a decoding failure", messaging.HeaderDeadLetterReason, reason)
	}
	if q := dead.Headers[messaging.HeaderDeadLetterQueue]; q != events.QueueEmail {
		t.Errorf("%s = %v, want %s", messaging.HeaderDeadLetterQueue, q, events.QueueEmail)
	}
	if string(dead.Body) != `{"order_id": "poison", "items": [{"sku": "carrot-` {
		t.Errorf("dead letter body %q is not the message published", dead.Body)
	}

	// Both replicas are still up, and a normal order is mailed as ever.
	for _, e := range s.Email {
		if err := e.Ready(t.Context()); err != nil {
			t.Errorf("%s: %v", e.Name, err)
		}
	}
	c := customer(t, 1)
	id := s.Order.Place(t, OrderRequest{Customer: c, Region: events.RegionAsia, Items: []Line{{SKU: "carrot-seeds", Quantity: 1}}}, nil)
	if o := s.Order.Settled(t, id); o.Status != StatusConfirmed {
		t.Fatalf("order %s is %s, want confirmed", id, o.Status)
	}
	checkMails(t, id, s.Mailpit.WaitFor(t, c.Email, MailReceived, MailConfirmed), MailReceived, MailConfirmed)
	t.Logf("poison: malformed %s dead-lettered to %s (%q); order %s afterwards mailed", events.TypeOrderPlaced, dlq, reason, id)
}

// amqpChannel opens a channel on the broker as its administrator, through the mapped port,
// in confirm mode; both close when t ends.
func amqpChannel(t *testing.T, s *System) *amqp.Channel {
	t.Helper()
	conn, err := amqp.Dial(s.AMQPURL)
	if err != nil {
		t.Fatalf("dial the broker: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("open a channel: %v", err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatalf("confirm mode: %v", err)
	}
	return ch
}

// publish publishes msg and waits for the broker's confirmation.
func publish(t *testing.T, ch *amqp.Channel, exchange, key string, msg amqp.Publishing) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conf, err := ch.PublishWithDeferredConfirmWithContext(ctx, exchange, key, true, false, msg)
	if err != nil {
		t.Fatalf("publish to %q/%s: %v", exchange, key, err)
	}
	ok, err := conf.WaitContext(ctx)
	if err != nil || !ok {
		t.Fatalf("publish to %q/%s not confirmed: %v", exchange, key, fmt.Sprint(err))
	}
}
