package messaging_test

import (
	"context"
	"fmt"
	"slices"
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
// the order.events fanout, whose quorum queues each have a consumer, and measure orders/s
// until every copy is consumed. The raw side is the broker's own limit through amqp091-go
// with pipelined confirms; the layer side is the same traffic through Warren's publisher
// and router (tracing, confirms, marshaler, middleware).
//
// BenchmarkFanoutRatio is the one `make bench` reports: it runs both sides in rounds of
// b.N orders on the same broker, alternating which goes first (raw, layer, layer, raw,
// ...), so that neither profits from going first or last (a warm broker, a grown quorum
// log, another process's load), and reports the medians:
//
//	go test -run '^$' -bench FanoutRatio -benchtime 5000x ./messaging
//
// BenchmarkRawFanout and BenchmarkLayerFanout run one side once each, for profiling one.

// fanoutQueues are the queues bound to the order.events fanout, read from the topology:
// each order is one delivery to each of them.
var fanoutQueues = boundTo(topology, events.ExchangeOrderEvents)

// fanoutRounds is how many rounds of each side BenchmarkFanoutRatio runs.
const fanoutRounds = 5

var benchPayload = []byte(fmt.Sprintf(`{"order_id":"o","region":"europe","items":[{"sku":"carrot-seeds","quantity":1}],"pad":%q}`, make([]byte, 420)))

func boundTo(t messaging.Topology, exchange string) []string {
	var out []string
	for _, q := range t.Queues {
		for _, b := range q.Bindings {
			if b.Exchange == exchange {
				out = append(out, q.Name)
				break
			}
		}
	}
	return out
}

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
	f := newFanoutBench(b)
	d := f.raw(b.N)
	b.ReportMetric(float64(b.N)/d.Seconds(), "orders/s")
}

func BenchmarkLayerFanout(b *testing.B) {
	f := newFanoutBench(b)
	d := f.layer(b.N)
	b.ReportMetric(float64(b.N)/d.Seconds(), "orders/s")
}

// BenchmarkFanoutRatio runs fanoutRounds rounds of b.N orders on each side, alternating
// which side goes first, and reports each side's median orders/s and the median of the
// rounds' layer/raw ratios (each ratio from two rounds run back to back).
func BenchmarkFanoutRatio(b *testing.B) {
	f := newFanoutBench(b)
	var raws, layers, ratios []float64
	for i := range fanoutRounds {
		rate := func(run func(int) time.Duration) float64 { return float64(b.N) / run(b.N).Seconds() }
		var raw, layer float64
		if i%2 == 0 {
			raw, layer = rate(f.raw), rate(f.layer)
		} else {
			layer, raw = rate(f.layer), rate(f.raw)
		}
		raws, layers, ratios = append(raws, raw), append(layers, layer), append(ratios, layer/raw)
		b.Logf("%d orders a round, round %d (%s first): raw %.0f orders/s, layer %.0f orders/s, ratio %.3f",
			b.N, i+1, map[bool]string{true: "raw", false: "layer"}[i%2 == 0], raw, layer, layer/raw)
	}
	b.ReportMetric(median(raws), "raw_orders/s")
	b.ReportMetric(median(layers), "layer_orders/s")
	b.ReportMetric(median(ratios), "layer_ratio")
	b.ReportMetric(slices.Min(ratios), "ratio_min")
	b.ReportMetric(slices.Max(ratios), "ratio_max")
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// fanoutBench is one broker vhost with Warren's topology that both sides use in turn: a
// raw amqp091 connection and a Warren Broker whose spans are made and exported in batches,
// as a deployed service's are (the tests' own exporter keeps every span in memory, which a
// long benchmark would measure instead).
type fanoutBench struct {
	b    *testing.B
	e    *env
	conn *amqp.Connection
}

func newFanoutBench(b *testing.B) *fanoutBench {
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discardSpans{}))
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	url := testkit.SharedRabbitMQ(b).VHost(b)
	e := newEnvWith(b, url, messaging.Config{URL: url, TracerProvider: tp})
	conn, err := amqp.Dial(url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	return &fanoutBench{b: b, e: e, conn: conn}
}

// raw sends n orders through amqp091-go, 256 confirms outstanding at once, and returns the
// time from the first publish to the last copy consumed. Its consumers stop afterwards.
func (f *fanoutBench) raw(n int) time.Duration {
	b := f.b
	done := countConsumed(n * len(fanoutQueues))
	var consumers []*amqp.Channel
	for _, q := range fanoutQueues {
		ch, err := f.conn.Channel()
		if err != nil {
			b.Fatal(err)
		}
		consumers = append(consumers, ch)
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
	pub, err := f.conn.Channel()
	if err != nil {
		b.Fatal(err)
	}
	if err := pub.Confirm(false); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	const window = 256 // confirms outstanding at once
	pending := make([]*amqp.DeferredConfirmation, 0, window)
	for i := range n {
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
	elapsed := time.Since(start)
	for _, ch := range append(consumers, pub) {
		_ = ch.Close()
	}
	f.purge()
	return elapsed
}

func waitConfirms(b *testing.B, confirms []*amqp.DeferredConfirmation) {
	for _, dc := range confirms {
		if !dc.Wait() {
			b.Fatal("nacked")
		}
	}
}

// layer sends n orders through Warren's publisher, 8 goroutines publishing 64 at a time,
// to a router consuming every fanout queue, and returns the time from the first publish to
// the last copy handled. The router stops afterwards.
func (f *fanoutBench) layer(n int) time.Duration {
	b := f.b
	done := countConsumed(n * len(fanoutQueues))
	handler := messaging.Dispatcher{events.TypeOrderPlaced: func(*message.Message) error {
		done.add()
		return nil
	}}.Handle
	var consumers []messaging.Consumer
	for _, q := range fanoutQueues {
		consumers = append(consumers, messaging.Consumer{Queue: q, Handler: handler})
	}
	router, err := f.e.broker.NewRouter(messaging.RouterConfig{Logger: f.e.logger}, consumers...)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { defer close(stopped); _ = router.Run(ctx) }()
	defer func() { cancel(); <-stopped; f.purge() }()
	select {
	case <-router.Running():
	case <-time.After(30 * time.Second):
		b.Fatal("router did not start")
	}

	const publishers, batch = 8, 64
	topic := messaging.Topic(events.ExchangeOrderEvents, "")
	next := atomic.Int64{}
	start := time.Now()
	var wg sync.WaitGroup
	for range publishers {
		wg.Go(func() {
			for {
				first := next.Add(batch) - batch
				if first >= int64(n) {
					return
				}
				msgs := make([]*message.Message, 0, batch)
				for i := first; i < min(first+batch, int64(n)); i++ {
					msg := message.NewMessage(fmt.Sprint(i), benchPayload)
					msg.Metadata.Set(messaging.HeaderType, events.TypeOrderPlaced)
					msgs = append(msgs, msg)
				}
				if err := f.e.broker.Publisher().Publish(topic, msgs...); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	done.wait(b)
	return time.Since(start)
}

// purge empties the fanout queues once a side's consumers are gone: a copy consumed but
// not yet acked when they stopped goes back to its queue, and the next round must not
// count it.
func (f *fanoutBench) purge() {
	for _, q := range fanoutQueues {
		if _, err := f.e.ch.QueuePurge(q, false); err != nil {
			f.b.Fatalf("purge %s: %v", q, err)
		}
	}
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
