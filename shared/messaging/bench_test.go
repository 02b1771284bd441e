package messaging_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	amqp "github.com/rabbitmq/amqp091-go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/messaging"
	"github.com/warrenhq/warren/shared/testkit"
)

// The benchmarks below send "orders" (a 512-byte OrderPlaced-sized persistent message) to
// the order.events fanout, whose three quorum queues each have a consumer, and measure
// orders/s until every copy is consumed. BenchmarkRawFanout is the broker's own limit
// through amqp091-go with pipelined confirms; BenchmarkLayerFanout is the same traffic
// through Warren's publisher and router (tracing, confirms, marshaler, middleware). `make
// bench` reports their ratio; run them alone with
//
//	go test -run '^$' -bench Fanout -benchtime 20000x ./messaging

var fanoutQueues = []string{events.QueueInventory, events.QueueEmail, events.QueueAnalytics}

var benchPayload = []byte(fmt.Sprintf(`{"order_id":"o","region":"europe","items":[{"sku":"carrot-seeds","quantity":1}],"pad":%q}`, make([]byte, 420)))

func BenchmarkMarshal(b *testing.B) {
	msg, _ := messaging.NewEvent(events.TypeOrderPlaced, "o-1", events.OrderPlaced{OrderID: "o-1"})
	msg.Metadata.Set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := (messaging.Marshaler{}).Marshal(msg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnmarshal(b *testing.B) {
	d := amqp.Delivery{MessageId: "m", Type: events.TypeOrderPlaced, CorrelationId: "o-1", Body: benchPayload,
		Headers: amqp.Table{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
			"x-delivery-count": int64(1)}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := (messaging.Marshaler{}).Unmarshal(d); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRawFanout(b *testing.B) {
	e := newEnv(b)
	conn, err := amqp.Dial(e.url)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	done := countConsumed(b.N * len(fanoutQueues))
	for _, q := range fanoutQueues {
		ch, err := conn.Channel()
		if err != nil {
			b.Fatal(err)
		}
		_ = ch.Qos(64, 0, false)
		deliveries, err := ch.Consume(q, "", false, false, false, false, nil)
		if err != nil {
			b.Fatal(err)
		}
		go func() {
			for d := range deliveries {
				_ = d.Ack(false)
				done.add()
			}
		}()
	}
	pub, err := conn.Channel()
	if err != nil {
		b.Fatal(err)
	}
	if err := pub.Confirm(false); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	const window = 256 // confirms outstanding at once
	pending := make([]*amqp.DeferredConfirmation, 0, window)
	for i := range b.N {
		dc, err := pub.PublishWithDeferredConfirm(events.ExchangeOrderEvents, "", false, false, amqp.Publishing{
			DeliveryMode: amqp.Persistent, MessageId: fmt.Sprint(i), Type: events.TypeOrderPlaced, Body: benchPayload})
		if err != nil {
			b.Fatal(err)
		}
		if pending = append(pending, dc); len(pending) == window {
			waitConfirms(b, pending)
			pending = pending[:0]
		}
	}
	waitConfirms(b, pending)
	done.wait(b)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "orders/s")
}

func waitConfirms(b *testing.B, confirms []*amqp.DeferredConfirmation) {
	for _, dc := range confirms {
		if !dc.Wait() {
			b.Fatal("nacked")
		}
	}
}

func BenchmarkLayerFanout(b *testing.B) {
	// Spans are made and exported in batches, as a deployed service does (the tests' own
	// exporter keeps every span in memory, which a long benchmark would measure instead).
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discardSpans{}))
	defer tp.Shutdown(context.Background())
	url := testkit.SharedRabbitMQ(b).VHost(b)
	e := newEnvWith(b, url, messaging.Config{URL: url, TracerProvider: tp})
	done := countConsumed(b.N * len(fanoutQueues))
	handler := messaging.Dispatcher{events.TypeOrderPlaced: func(*message.Message) error {
		done.add()
		return nil
	}}.Handle
	var consumers []messaging.Consumer
	for _, q := range fanoutQueues {
		consumers = append(consumers, messaging.Consumer{Queue: q, Handler: handler})
	}
	e.run(messaging.RetryConfig{}, consumers...)

	const publishers, batch = 8, 64
	topic := messaging.Topic(events.ExchangeOrderEvents, "")
	next := atomic.Int64{}
	b.ResetTimer()
	var wg sync.WaitGroup
	for range publishers {
		wg.Go(func() {
			for {
				start := next.Add(batch) - batch
				if start >= int64(b.N) {
					return
				}
				msgs := make([]*message.Message, 0, batch)
				for i := start; i < min(start+batch, int64(b.N)); i++ {
					msg := message.NewMessage(fmt.Sprint(i), benchPayload)
					msg.Metadata.Set(messaging.HeaderType, events.TypeOrderPlaced)
					msgs = append(msgs, msg)
				}
				if err := e.broker.Publisher().Publish(topic, msgs...); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	done.wait(b)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "orders/s")
}

// consumedCounter closes its channel when n messages were consumed.
type consumedCounter struct {
	n, seen atomic.Int64
	all     chan struct{}
}

func countConsumed(n int) *consumedCounter {
	c := &consumedCounter{all: make(chan struct{})}
	c.n.Store(int64(n))
	return c
}

func (c *consumedCounter) add() {
	if c.seen.Add(1) == c.n.Load() {
		close(c.all)
	}
}

func (c *consumedCounter) wait(b *testing.B) {
	select {
	case <-c.all:
	case <-time.After(5 * time.Minute):
		b.Fatalf("consumed %d of %d", c.seen.Load(), c.n.Load())
	}
}

// discardSpans is a span exporter that drops what it is given.
type discardSpans struct{}

func (discardSpans) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardSpans) Shutdown(context.Context) error                             { return nil }
