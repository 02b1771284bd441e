package events_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/testkit"
)

// One consumer that stops (analytics here) must neither stop nor flood the others. Every
// OrderPlaced reaches three queues through the order.events fanout; a work queue that
// refused it once full (x-max-length with reject-publish) made the broker nack the
// publish while the other queues still enqueued it, and the outbox relay's retry
// then enqueued it in those again, for as long as the stopped consumer stayed away.
// So no work queue has a length limit: every publish to the fanout is confirmed, each
// queue holds each message once, and the stopped consumer finds all of them when it
// comes back. (Run before the change with analytics' queue limited to 10, this test saw
// 189 of the 200 publishes nacked.)
func TestAStoppedConsumerNeitherStopsNorFloodsTheOthers(t *testing.T) {
	const orders = 200
	topology := events.Topology(events.DefaultSMSRegions)
	ch := testkit.DeclareTopology(t, testkit.SharedRabbitMQ(t).VHost(t), topology)

	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// One at a time, each confirm awaited: a quorum queue applies its limit to what it has
	// already enqueued, so a pipelined burst could overshoot a limit unnoticed.
	nacked := 0
	for i := range orders {
		c, err := ch.PublishWithDeferredConfirmWithContext(ctx, events.ExchangeOrderEvents, "", false, false, amqp.Publishing{
			MessageId: fmt.Sprintf("order-placed-%03d", i), Type: events.TypeOrderPlaced,
			DeliveryMode: amqp.Persistent, ContentType: "application/json", Body: []byte(`{}`),
		})
		if err != nil {
			t.Fatal(err)
		}
		acked, err := c.WaitContext(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !acked {
			nacked++
		}
	}
	if nacked > 0 {
		t.Errorf("%d of %d publishes to the fanout were nacked: the relay would publish them again, into every queue that had taken them", nacked, orders)
	}

	// Nobody consumes yet: every queue behind the fanout holds every message exactly once.
	for _, q := range []string{events.QueueInventory, events.QueueEmail, events.QueueAnalytics} {
		testkit.Eventually(t, 10*time.Second, func() string {
			if n := testkit.Depth(t, ch, q); n != orders {
				return fmt.Sprintf("%s holds %d messages, want %d", q, n, orders)
			}
			return ""
		})
	}

	// The consumer that was away catches up: each message once, none missing.
	seen := map[string]int{}
	for range orders {
		d := testkit.Get(t, ch, events.QueueAnalytics, 5*time.Second)
		seen[d.MessageId]++
	}
	for i := range orders {
		if id := fmt.Sprintf("order-placed-%03d", i); seen[id] != 1 {
			t.Errorf("analytics got %s %d times, want once", id, seen[id])
		}
	}
	if n := testkit.Depth(t, ch, events.QueueAnalytics); n != 0 {
		t.Errorf("analytics' queue still holds %d messages after catching up", n)
	}
}
