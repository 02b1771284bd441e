package messaging_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/messaging"
	"github.com/warrenhq/warren/shared/testkit"
)

// While a memory alarm makes the broker block publishing connections, a publish and a
// request fail with ErrBlocked within their timeout (a blocked broker reads nothing, so
// without flow control they would wait for the alarm to clear), and readiness reports the
// block. Once it clears, publishing and request/reply work again on the same Broker.
func TestBlockedBrokerFailsPublishesAndRequestsAndReportsIt(t *testing.T) {
	rabbit := testkit.OwnRabbitMQ(t)
	e := newEnvAt(t, rabbit.URL)
	replier := e.broker.NewReplier()
	e.run(messaging.RetryConfig{}, messaging.Consumer{Queue: events.QueueStockQuery, Handler: messaging.Dispatcher{
		events.TypeStockQuery: messaging.Handle(func(ctx context.Context, q events.StockQuery, msg *message.Message) error {
			reply, _ := messaging.NewEvent(events.TypeStockLevel, "", events.StockLevel{SKU: q.SKU, Available: 42, Found: true})
			return replier.Reply(ctx, msg, reply)
		}),
	}.Handle})
	requester := e.broker.NewRequester()
	t.Cleanup(func() { requester.Close() })
	const timeout = 2 * time.Second
	ask := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		req, _ := messaging.NewEvent(events.TypeStockQuery, "", events.StockQuery{SKU: "carrot-seeds"})
		_, err := requester.Request(ctx, events.ExchangeRPC, events.RoutingKeyStockQuery, req)
		return err
	}
	publish := func(label string) error {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		msg, _ := messaging.NewEvent(events.TypeOrderCancelled, label, events.OrderCancelled{OrderID: label})
		msg.SetContext(ctx)
		return e.broker.Publisher().Publish(messaging.Topic(events.ExchangeOrderEvents, ""), msg)
	}
	if err := publish("before"); err != nil {
		t.Fatal(err)
	}
	if err := ask(); err != nil {
		t.Fatal(err)
	}

	rabbit.Exec(t, "rabbitmqctl", "set_vm_memory_high_watermark", "absolute", "1")
	// RabbitMQ blocks a connection when it publishes during the alarm, after reading that
	// publish: the first one is taken (once the alarm clears) and waits at most its timeout.
	start := time.Now()
	firstErr := publish("first")
	if took := time.Since(start); took > timeout+time.Second || firstErr != nil && !errors.Is(firstErr, messaging.ErrBlocked) {
		t.Errorf("first publish during the alarm: %v after %s, want nil or ErrBlocked within %s", firstErr, took, timeout+time.Second)
	}
	t.Logf("first publish during the alarm: %v after %s", firstErr, time.Since(start).Round(time.Millisecond))
	deadline := time.Now().Add(10 * time.Second)
	for !errors.Is(e.broker.Check(context.Background()), messaging.ErrBlocked) {
		if time.Now().After(deadline) {
			t.Fatalf("readiness 10 s into the alarm: %v, want the block reported", e.broker.Check(context.Background()))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := e.broker.Check(context.Background()); !strings.Contains(err.Error(), "blocking publishes") {
		t.Errorf("readiness while blocked: %q does not say the broker is blocking publishes", err)
	}
	for _, op := range []struct {
		name string
		do   func() error
	}{{"publish", func() error { return publish("blocked") }}, {"request", ask}} {
		start := time.Now()
		err := op.do()
		if took := time.Since(start); !errors.Is(err, messaging.ErrBlocked) || took > timeout+time.Second {
			t.Errorf("%s while blocked: %v after %s, want ErrBlocked within %s", op.name, err, took, timeout+time.Second)
		}
	}

	rabbit.Exec(t, "rabbitmqctl", "set_vm_memory_high_watermark", "0.4")
	deadline = time.Now().Add(30 * time.Second)
	for e.broker.Check(context.Background()) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("still not ready 30 s after the alarm cleared: %v", e.broker.Check(context.Background()))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := publish("after"); err != nil {
		t.Fatalf("publish after the alarm cleared: %v", err)
	}
	if err := ask(); err != nil {
		t.Fatalf("request after the alarm cleared: %v", err)
	}
	// before, first (when its publish succeeded; it may have been taken anyway), after; a
	// publish refused as blocked sent nothing.
	got := map[string]int{}
	for got["after"] == 0 {
		got[e.get(events.QueueInventory).CorrelationId]++
	}
	if got["before"] != 1 || got["blocked"] != 0 || firstErr == nil && got["first"] != 1 || got["first"] > 1 {
		t.Errorf("received %v (first publish: %v), want before, first and after once each and nothing refused", got, firstErr)
	}
}
