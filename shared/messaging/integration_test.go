package messaging_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	amqp "github.com/rabbitmq/amqp091-go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/messaging"
	"github.com/warrenhq/warren/shared/telemetry"
	"github.com/warrenhq/warren/shared/testkit"
)

func TestMain(m *testing.M) { os.Exit(testkit.Run(m)) }

var topology = events.Topology(events.DefaultSMSRegions)

// env is one test's broker: a fresh vhost with Warren's topology, a Broker on it, and a
// raw amqp091 channel to look at queues from outside.
type env struct {
	t      testing.TB
	url    string
	broker *messaging.Broker
	ch     *amqp.Channel
	spans  *tracetest.InMemoryExporter
	logger *slog.Logger
}

func newEnv(t testing.TB) *env {
	t.Helper()
	url := testkit.SharedRabbitMQ(t).VHost(t)
	return newEnvAt(t, url)
}

func newEnvAt(t testing.TB, url string) *env {
	t.Helper()
	return newEnvWith(t, url, messaging.Config{URL: url})
}

// newEnvWith is newEnvAt with the broker configured by cfg (TLS, for one).
func newEnvWith(t testing.TB, url string, cfg messaging.Config) *env {
	t.Helper()
	conn, err := amqp.DialTLS(url, cfg.TLS)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("channel: %v", err)
	}
	if err := topology.DeclareAll(ch); err != nil {
		t.Fatalf("declare topology: %v", err)
	}
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = telemetry.NewLogger(os.Stderr, "test", "debug")
	}
	if cfg.TracerProvider == nil {
		cfg.TracerProvider = tp
	}
	cfg.Propagator = telemetry.Propagator()
	broker, err := messaging.Connect(context.Background(), cfg, topology, logger)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { broker.Close() })
	return &env{t: t, url: url, broker: broker, ch: ch, spans: spans, logger: logger}
}

// run starts a router with consumers and stops it when the test ends.
func (e *env) run(retry messaging.RetryConfig, consumers ...messaging.Consumer) {
	e.t.Helper()
	router, err := e.broker.NewRouter(messaging.RouterConfig{Logger: e.logger, Retry: retry}, consumers...)
	if err != nil {
		e.t.Fatalf("router: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = router.Run(ctx) }()
	e.t.Cleanup(func() { cancel(); <-done })
	select {
	case <-router.Running():
	case <-time.After(30 * time.Second):
		e.t.Fatal("router did not start")
	}
}

func (e *env) publish(topic string, msg *message.Message) {
	e.t.Helper()
	if err := e.broker.Publisher().Publish(topic, msg); err != nil {
		e.t.Fatalf("publish %s: %v", topic, err)
	}
}

// publishRaw publishes like a foreign client would: whatever headers and body it likes.
func (e *env) publishRaw(exchange, key string, p amqp.Publishing) {
	e.t.Helper()
	if err := e.ch.PublishWithContext(context.Background(), exchange, key, false, false, p); err != nil {
		e.t.Fatalf("raw publish: %v", err)
	}
}

func (e *env) depth(queue string) int {
	e.t.Helper()
	return testkit.Depth(e.t, e.ch, queue)
}

// get waits up to 20 s for a message in queue and acks it.
func (e *env) get(queue string) amqp.Delivery {
	e.t.Helper()
	return testkit.Get(e.t, e.ch, queue, 20*time.Second)
}

func placed(t *testing.T, orderID string, sku string) *message.Message {
	t.Helper()
	msg, err := messaging.NewEvent(events.TypeOrderPlaced, orderID, events.OrderPlaced{
		OrderID: orderID, Region: events.RegionEurope,
		Items: []events.Item{{SKU: sku, Quantity: 1, UnitPriceCents: 100}}, TotalCents: 100,
	})
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func TestFanoutReachesEveryConsumerQueue(t *testing.T) {
	e := newEnv(t)
	e.publish(messaging.Topic(events.ExchangeOrderEvents, ""), placed(t, "o-1", "carrot-seeds"))

	for _, q := range []string{events.QueueInventory, events.QueueEmail, events.QueueAnalytics} {
		d := e.get(q)
		if d.Type != events.TypeOrderPlaced || d.CorrelationId != "o-1" || d.DeliveryMode != amqp.Persistent {
			t.Errorf("%s: got type %q correlation %q mode %d", q, d.Type, d.CorrelationId, d.DeliveryMode)
		}
		if _, ok := d.Headers["traceparent"]; !ok {
			t.Errorf("%s: no traceparent header: %v", q, d.Headers)
		}
	}
	for _, q := range []string{events.QueueOrder, events.QueueSMS} {
		if n := e.depth(q); n != 0 {
			t.Errorf("%s got %d fanout messages; it is not bound to the fanout", q, n)
		}
	}
}

func TestTopicBindingsRouteExactlyAsDeclared(t *testing.T) {
	e := newEnv(t)
	publish := func(key string) {
		msg, _ := messaging.NewEvent("test.v1", "", map[string]string{"key": key})
		e.publish(messaging.Topic(events.ExchangeTopic, key), msg) // returns after the broker confirmed routing
	}
	publish(events.OrderConfirmedKey(events.RegionAsia))
	publish(events.OrderConfirmedKey(events.RegionEurope))
	publish(events.OrderRejectedKey(events.RegionAmericas))
	publish(events.InventoryReservedKey(events.RegionAsia))
	publish(events.InventoryReleasedKey(events.RegionAsia))

	want := map[string]int{
		events.QueueSMS:       1, // europe confirmed only: asia is not among sms's default regions
		events.QueueEmail:     3, // every confirmation and rejection
		events.QueueAnalytics: 5, // "#"
		events.QueueOrder:     1, // inventory.*.reserved (released is not bound)
		events.QueueInventory: 0, // fanout only
	}
	for q, n := range want {
		if got := e.depth(q); got != n {
			t.Errorf("%s holds %d messages, want %d", q, got, n)
		}
	}
	if d := e.get(events.QueueSMS); !strings.Contains(string(d.Body), "europe") {
		t.Errorf("sms got %s, want the europe confirmation", d.Body)
	}
}

func TestUnroutableMessageIsKeptNotDropped(t *testing.T) {
	broker := testkit.SharedRabbitMQ(t)
	url := broker.VHost(t)
	e := newEnvAt(t, url)
	// The alternate exchange is a policy's (the broker setup's) part, not the declarations'.
	broker.LoadPolicies(t, url, topology.Policies("/"))
	msg, _ := messaging.NewEvent("test.v1", "", map[string]string{})
	// analytics binds "#" on the topic exchange, so only the direct rpc exchange has keys
	// that route nowhere.
	e.publish(messaging.Topic(events.ExchangeRPC, "nobody.listens.here"), msg)
	d := e.get(messaging.UnroutableQueue)
	if d.MessageId != msg.UUID || d.RoutingKey != "nobody.listens.here" {
		t.Errorf("unroutable queue got %q with key %q", d.MessageId, d.RoutingKey)
	}
}

// recorder is a handler that remembers which orders it processed.
type recorder struct {
	mu  sync.Mutex
	ids []string
}

func (r *recorder) handler() message.NoPublishHandlerFunc {
	return messaging.Dispatcher{
		events.TypeOrderPlaced: messaging.Handle(func(_ context.Context, e events.OrderPlaced, _ *message.Message) error {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.ids = append(r.ids, e.OrderID)
			return nil
		}),
	}.Handle
}

func (r *recorder) waitFor(t *testing.T, id string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		for _, got := range r.ids {
			if got == id {
				r.mu.Unlock()
				return
			}
		}
		r.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("order %s was not processed", id)
}

func TestMalformedAndUnknownMessagesAreDeadLetteredAndConsumingGoesOn(t *testing.T) {
	e := newEnv(t)
	rec := &recorder{}
	e.run(messaging.RetryConfig{}, messaging.Consumer{Queue: events.QueueEmail, Handler: rec.handler()})

	e.publishRaw(events.ExchangeOrderEvents, "", amqp.Publishing{
		MessageId: "bad-json", Type: events.TypeOrderPlaced, Body: []byte(`{"order_id": `), DeliveryMode: amqp.Persistent})
	e.publishRaw(events.ExchangeOrderEvents, "", amqp.Publishing{
		MessageId: "unknown-type", Type: "order.teleported.v1", Body: []byte(`{}`), DeliveryMode: amqp.Persistent})
	e.publishRaw(events.ExchangeOrderEvents, "", amqp.Publishing{
		MessageId: "invalid", Type: events.TypeOrderPlaced, Body: []byte(`{"order_id":"o-x","region":"mars","items":[]}`), DeliveryMode: amqp.Persistent})
	e.publishRaw(events.ExchangeOrderEvents, "", amqp.Publishing{ // a redelivery could not be told apart
		Type: events.TypeOrderPlaced, Body: []byte(`{"order_id":"o-anon"}`), DeliveryMode: amqp.Persistent})
	e.publish(messaging.Topic(events.ExchangeOrderEvents, ""), placed(t, "o-good", "carrot-seeds"))

	rec.waitFor(t, "o-good")
	reasons := map[string]string{}
	for range 4 {
		d := e.get(messaging.DeadLetterQueueName(events.QueueEmail))
		reasons[d.MessageId], _ = d.Headers[messaging.HeaderDeadLetterReason].(string)
		if q := d.Headers[messaging.HeaderDeadLetterQueue]; q != events.QueueEmail {
			t.Errorf("%s: source queue header %v", d.MessageId, q)
		}
		if ex := d.Headers[messaging.HeaderExchange]; ex != events.ExchangeOrderEvents {
			t.Errorf("%s: original exchange header %v", d.MessageId, ex)
		}
		if n := d.Headers[messaging.HeaderDeadLetterTries]; n != "1" {
			t.Errorf("%s: %v attempts; a permanent failure is not retried", d.MessageId, n)
		}
	}
	for id, want := range map[string]string{"bad-json": "decode", "unknown-type": "unknown message type", "invalid": "region", "": "no message id"} {
		if !strings.Contains(reasons[id], want) || !strings.HasPrefix(reasons[id], "permanent:") {
			t.Errorf("%s: reason %q, want a permanent failure mentioning %q", id, reasons[id], want)
		}
	}
	if n := e.depth(events.QueueEmail); n != 0 {
		t.Errorf("%d messages left in %s", n, events.QueueEmail)
	}
}

func TestFailingMessageIsRetriedThenDeadLettered(t *testing.T) {
	e := newEnv(t)
	var attempts atomic.Int32
	rec := &recorder{}
	handler := messaging.Dispatcher{
		events.TypeOrderPlaced: messaging.Handle(func(ctx context.Context, ev events.OrderPlaced, msg *message.Message) error {
			if ev.Items[0].SKU == "cursed" {
				attempts.Add(1)
				return errors.New("warehouse robot on fire")
			}
			return rec.handler()(msg)
		}),
	}.Handle
	e.run(messaging.RetryConfig{MaxRetries: 3, InitialInterval: 10 * time.Millisecond},
		messaging.Consumer{Queue: events.QueueInventory, Handler: handler})

	e.publish(messaging.Topic(events.ExchangeOrderEvents, ""), placed(t, "o-cursed", "cursed"))
	e.publish(messaging.Topic(events.ExchangeOrderEvents, ""), placed(t, "o-after", "carrot-seeds"))

	d := e.get(messaging.DeadLetterQueueName(events.QueueInventory))
	rec.waitFor(t, "o-after")
	if got := attempts.Load(); got != 4 {
		t.Errorf("handler ran %d times, want 1 + 3 retries", got)
	}
	reason, _ := d.Headers[messaging.HeaderDeadLetterReason].(string)
	if !strings.Contains(reason, "warehouse robot on fire") || strings.HasPrefix(reason, "permanent") {
		t.Errorf("reason %q", reason)
	}
	if n := d.Headers[messaging.HeaderDeadLetterTries]; n != "4" {
		t.Errorf("attempts header %v, want 4", n)
	}
	if d.CorrelationId != "o-cursed" || d.Type != events.TypeOrderPlaced {
		t.Errorf("dead letter lost its properties: %q %q", d.CorrelationId, d.Type)
	}
}

// RabbitMQ adds non-string headers itself (x-death on dead-lettered messages,
// x-delivery-count on quorum redeliveries). watermill-amqp's default marshaler rejects
// them before any middleware runs and the message loops forever; ours must not.
func TestBrokerAddedHeadersDoNotPoisonTheConsumer(t *testing.T) {
	e := newEnv(t)
	rec := &recorder{}
	e.run(messaging.RetryConfig{}, messaging.Consumer{Queue: events.QueueAnalytics, Handler: rec.handler()})
	body, _ := json.Marshal(events.OrderPlaced{OrderID: "o-hdr", Region: events.RegionAsia,
		Items: []events.Item{{SKU: "s", Quantity: 1}}})
	e.publishRaw(events.ExchangeOrderEvents, "", amqp.Publishing{
		MessageId: "hdr", Type: events.TypeOrderPlaced, Body: body, DeliveryMode: amqp.Persistent,
		Headers: amqp.Table{
			"x-death":          []any{amqp.Table{"count": int64(1), "reason": "rejected", "queue": "elsewhere"}},
			"x-delivery-count": int64(3),
			"x-custom-flag":    true,
		},
	})
	rec.waitFor(t, "o-hdr")
	if n := e.depth(messaging.DeadLetterQueueName(events.QueueAnalytics)); n != 0 {
		t.Errorf("%d messages dead-lettered", n)
	}
}

func TestTraceContextCrossesTheBroker(t *testing.T) {
	e := newEnv(t)
	rec := &recorder{}
	e.run(messaging.RetryConfig{}, messaging.Consumer{Queue: events.QueueEmail, Handler: rec.handler()})

	tracer := sdktrace.NewTracerProvider().Tracer("test")
	ctx, parent := tracer.Start(context.Background(), "POST /orders")
	msg := placed(t, "o-traced", "carrot-seeds")
	msg.SetContext(ctx)
	e.publish(messaging.Topic(events.ExchangeOrderEvents, ""), msg)
	parent.End()
	rec.waitFor(t, "o-traced")

	var producer, consumer tracetest.SpanStub
	deadline := time.Now().Add(5 * time.Second)
	for consumer.Name == "" && time.Now().Before(deadline) {
		for _, s := range e.spans.GetSpans() {
			switch {
			case s.Name == "publish order.events" && s.SpanKind == trace.SpanKindProducer:
				producer = s
			case s.Name == "process "+events.QueueEmail && s.SpanKind == trace.SpanKindConsumer:
				consumer = s
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if producer.Name == "" || consumer.Name == "" {
		t.Fatalf("missing spans: %+v", e.spans.GetSpans())
	}
	traceID := parent.SpanContext().TraceID()
	if producer.SpanContext.TraceID() != traceID || consumer.SpanContext.TraceID() != traceID {
		t.Errorf("spans left the trace: producer %s consumer %s want %s",
			producer.SpanContext.TraceID(), consumer.SpanContext.TraceID(), traceID)
	}
	if producer.Parent.SpanID() != parent.SpanContext().SpanID() {
		t.Errorf("producer's parent is %s, want the request span %s", producer.Parent.SpanID(), parent.SpanContext().SpanID())
	}
	if consumer.Parent.SpanID() != producer.SpanContext.SpanID() {
		t.Errorf("consumer's parent is %s, want the producer span %s", consumer.Parent.SpanID(), producer.SpanContext.SpanID())
	}
	attrs := map[string]string{}
	for _, kv := range consumer.Attributes {
		attrs[string(kv.Key)] = kv.Value.Emit()
	}
	if attrs["messaging.system"] != "rabbitmq" || attrs["messaging.destination.name"] != events.QueueEmail {
		t.Errorf("consumer span attributes %v", attrs)
	}
}

func TestRequestReplyAnswersAndTimesOut(t *testing.T) {
	e := newEnv(t)
	replier := e.broker.NewReplier()
	e.run(messaging.RetryConfig{}, messaging.Consumer{Queue: events.QueueStockQuery, Handler: messaging.Dispatcher{
		events.TypeStockQuery: messaging.Handle(func(ctx context.Context, q events.StockQuery, msg *message.Message) error {
			reply, _ := messaging.NewEvent(events.TypeStockLevel, "", events.StockLevel{SKU: q.SKU, Available: 42, Found: true})
			return replier.Reply(ctx, msg, reply)
		}),
	}.Handle})

	requester := e.broker.NewRequester()
	t.Cleanup(func() { requester.Close() })
	ask := func(ctx context.Context, r *messaging.Requester) (events.StockLevel, error) {
		req, _ := messaging.NewEvent(events.TypeStockQuery, "", events.StockQuery{SKU: "carrot-seeds"})
		reply, err := r.Request(ctx, events.ExchangeRPC, events.RoutingKeyStockQuery, req)
		if err != nil {
			return events.StockLevel{}, err
		}
		return messaging.Decode[events.StockLevel](reply.Payload)
	}
	for i := range 3 { // several requests over one channel
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		level, err := ask(ctx, requester)
		cancel()
		if err != nil || level.Available != 42 || level.SKU != "carrot-seeds" {
			t.Fatalf("request %d: %+v, %v", i, level, err)
		}
	}

	// A broker where nobody answers: the request must time out, not hang.
	silent := newEnv(t)
	lonely := silent.broker.NewRequester()
	t.Cleanup(func() { lonely.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := ask(ctx, lonely); !errors.Is(err, messaging.ErrRequestTimeout) {
		t.Fatalf("got %v, want ErrRequestTimeout", err)
	}
	if waited := time.Since(start); waited > 3*time.Second {
		t.Errorf("timed out after %s", waited)
	}
}

var errDatabaseDown = errors.New("database restarting")

// A dependency outage outlasts Retry's quick attempts (about 0.7 s by default): messages
// handled meanwhile must wait it out, not be dead-lettered. Errors the Permanent
// classifier recognises are dead-lettered at once.
func TestOutageIsWaitedOutAndClassifiedErrorsAreNotRetried(t *testing.T) {
	e := newEnv(t)
	up := time.Now().Add(2 * time.Second)
	var attempts atomic.Int32
	rec := &recorder{}
	errCorrupt := errors.New("invalid byte sequence")
	handler := messaging.Dispatcher{
		events.TypeOrderPlaced: messaging.Handle(func(_ context.Context, ev events.OrderPlaced, msg *message.Message) error {
			if ev.Items[0].SKU == "corrupt" {
				attempts.Add(1)
				return fmt.Errorf("store: %w", errCorrupt)
			}
			if time.Now().Before(up) {
				return fmt.Errorf("store: %w", errDatabaseDown)
			}
			return rec.handler()(msg)
		}),
	}.Handle
	router, err := e.broker.NewRouter(messaging.RouterConfig{
		Logger:       e.logger,
		Retry:        messaging.RetryConfig{MaxRetries: 2, InitialInterval: 10 * time.Millisecond},
		Dependencies: []messaging.Dependency{{Name: "postgres", Unavailable: func(err error) bool { return errors.Is(err, errDatabaseDown) }}},
		Permanent:    func(err error) bool { return errors.Is(err, errCorrupt) },
	}, messaging.Consumer{Queue: events.QueueInventory, Handler: handler})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = router.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	e.publish(messaging.Topic(events.ExchangeOrderEvents, ""), placed(t, "o-during-outage", "carrot-seeds"))
	e.publish(messaging.Topic(events.ExchangeOrderEvents, ""), placed(t, "o-corrupt", "corrupt"))
	rec.waitFor(t, "o-during-outage")

	d := e.get(messaging.DeadLetterQueueName(events.QueueInventory))
	if d.CorrelationId != "o-corrupt" {
		t.Fatalf("dead-lettered %s, want only o-corrupt", d.CorrelationId)
	}
	if reason, _ := d.Headers[messaging.HeaderDeadLetterReason].(string); !strings.HasPrefix(reason, "permanent:") || attempts.Load() != 1 {
		t.Errorf("reason %q after %d attempts; a classified permanent error is not retried", reason, attempts.Load())
	}
	if n := e.depth(messaging.DeadLetterQueueName(events.QueueInventory)); n != 0 {
		t.Errorf("%d more dead letters: the outage must have been waited out", n)
	}
}
