package outbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	amqp "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/messaging"
	"github.com/warrenhq/warren/shared/outbox"
	"github.com/warrenhq/warren/shared/postgres"
	"github.com/warrenhq/warren/shared/testkit"
)

func TestMain(m *testing.M) { os.Exit(testkit.Run(m)) }

var fanout = messaging.Topic(events.ExchangeOrderEvents, "")

// env is one test's database, broker connection and inspection channel.
type env struct {
	url    string
	pool   *pgxpool.Pool
	broker *messaging.Broker
	ch     *amqp.Channel
	logger *slog.Logger
}

func newEnv(t testing.TB, amqpURL string) *env {
	t.Helper()
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	topology := events.Topology(events.DefaultSMSRegions)
	ch := testkit.DeclareTopology(t, amqpURL, topology)
	pool, err := postgres.Connect(ctx, testkit.SharedPostgres(t).Database(t), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := postgres.Migrate(ctx, pool, fstest.MapFS{}); err != nil {
		t.Fatal(err)
	}
	broker, err := messaging.Connect(ctx, messaging.Config{URL: amqpURL}, topology, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { broker.Close() })
	return &env{url: amqpURL, pool: pool, broker: broker, ch: ch, logger: logger}
}

// start creates and runs a relay (config's zero values are the defaults).
func (e *env) start(t testing.TB, config outbox.Config) (stop func()) {
	t.Helper()
	return run(t, e.newRelay(t, config))
}

// newRelay creates a relay, and with it the outbox table.
func (e *env) newRelay(t testing.TB, config outbox.Config) *outbox.Relay {
	t.Helper()
	relay, err := outbox.NewRelay(context.Background(), e.pool, e.broker.Publisher(), config, e.logger)
	if err != nil {
		t.Fatal(err)
	}
	return relay
}

// run runs relay and returns a function that stops it and waits for it; the test's end
// stops it too.
func run(t testing.TB, relay *outbox.Relay) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- relay.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("relay: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// store stores one OrderCancelled event per label (its correlation id) to the fanout in one
// transaction, and commits it or rolls it back.
func (e *env) store(ctx context.Context, t testing.TB, commit bool, labels ...string) {
	t.Helper()
	if err := e.tryStore(ctx, commit, labels...); commit && err != nil {
		t.Fatal(err)
	}
}

func (e *env) tryStore(ctx context.Context, commit bool, labels ...string) error {
	return postgres.InTx(ctx, e.pool, func(tx pgx.Tx) error {
		var msgs []*message.Message
		for _, label := range labels {
			msg, err := messaging.NewEvent(events.TypeOrderCancelled, label, events.OrderCancelled{OrderID: label})
			if err != nil {
				return err
			}
			msgs = append(msgs, msg)
		}
		if err := outbox.Store(ctx, tx, propagation.TraceContext{}, fanout, msgs...); err != nil {
			return err
		}
		if !commit {
			return errors.New("roll back")
		}
		return nil
	})
}

// receive takes n messages from inventory's copy of the fanout.
func (e *env) receive(t testing.TB, n int, timeout time.Duration) []amqp.Delivery {
	t.Helper()
	var got []amqp.Delivery
	for range n {
		got = append(got, testkit.Get(t, e.ch, events.QueueInventory, timeout))
	}
	return got
}

func labels(ds []amqp.Delivery) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.CorrelationId)
	}
	return out
}

func seq(prefix string, from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprint(prefix, i))
	}
	return out
}

// An event stored in a transaction that rolls back is never published; the ones that
// commit are published, in the order they were stored, with their metadata: message id,
// type, and the trace context of the request that stored them.
func TestRelayPublishesCommittedEventsInOrderAndNothingElse(t *testing.T) {
	e := newEnv(t, testkit.SharedRabbitMQ(t).VHost(t))
	traceID := trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: traceID, SpanID: trace.SpanID{0, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}, TraceFlags: trace.FlagsSampled}))

	relay := e.newRelay(t, outbox.Config{})
	// Stored while the relay is not running yet: it must catch up.
	for i := range 5 {
		e.store(ctx, t, i != 2, fmt.Sprint(i))
	}
	run(t, relay)
	for i := 5; i < 8; i++ {
		e.store(ctx, t, true, fmt.Sprint(i))
	}
	e.store(ctx, t, true, "8", "9") // two in one transaction

	got := e.receive(t, 9, 20*time.Second)
	if fmt.Sprint(labels(got)) != "[0 1 3 4 5 6 7 8 9]" {
		t.Errorf("published %v, want [0 1 3 4 5 6 7 8 9]: committed ones, in order, never the rolled-back 2", labels(got))
	}
	seen := map[string]bool{}
	for _, d := range got {
		if d.MessageId == "" || seen[d.MessageId] {
			t.Errorf("message %s: id %q missing or repeated", d.CorrelationId, d.MessageId)
		}
		seen[d.MessageId] = true
		if d.Type != events.TypeOrderCancelled || d.DeliveryMode != amqp.Persistent {
			t.Errorf("message %s: type %q, delivery mode %d", d.CorrelationId, d.Type, d.DeliveryMode)
		}
		if tp, _ := d.Headers["traceparent"].(string); !strings.Contains(tp, traceID.String()) {
			t.Errorf("message %s: traceparent %q does not continue trace %s", d.CorrelationId, tp, traceID)
		}
	}
	// Anything else published (the rolled-back 2, a repeat) would come before this one.
	e.store(ctx, t, true, "last")
	if last := e.receive(t, 1, 20*time.Second); last[0].CorrelationId != "last" {
		t.Errorf("then published %s, want last", last[0].CorrelationId)
	}
}

// With a poll interval of an hour, a message stored while the relay is idle is published
// at once: the notification sent at commit wakes the relay.
func TestRelayWakesOnNotification(t *testing.T) {
	e := newEnv(t, testkit.SharedRabbitMQ(t).VHost(t))
	ctx := context.Background()
	e.start(t, outbox.Config{PollInterval: time.Hour})
	// The first is read at start-up or on its notification; after it the relay is idle.
	e.store(ctx, t, true, "first")
	e.receive(t, 1, 20*time.Second)
	for i := range 3 {
		e.store(ctx, t, true, fmt.Sprint(i))
		if got := e.receive(t, 1, 20*time.Second); got[0].CorrelationId != fmt.Sprint(i) {
			t.Fatalf("published %s, want %d", got[0].CorrelationId, i)
		}
	}
}

// Events stored while the broker is down are all published once it is back.
func TestRelayPublishesEverythingAfterABrokerOutage(t *testing.T) {
	rabbit := testkit.OwnRabbitMQ(t)
	e := newEnv(t, rabbit.URL)
	ctx := context.Background()
	e.start(t, outbox.Config{RetryInterval: 100 * time.Millisecond})
	e.store(ctx, t, true, "before")
	e.receive(t, 1, 20*time.Second)

	rabbit.Stop(t)
	for i := range 20 {
		e.store(ctx, t, true, seq(fmt.Sprint(i, "-"), 0, 5)...)
	}
	rabbit.Start(t)
	e.ch = testkit.DeclareTopology(t, rabbit.URL, events.Topology(events.DefaultSMSRegions))

	got := map[string]int{}
	for _, d := range e.receive(t, 100, 90*time.Second) {
		got[d.CorrelationId]++
	}
	for i := range 20 {
		for _, label := range seq(fmt.Sprint(i, "-"), 0, 5) {
			if got[label] == 0 {
				t.Errorf("%s never published", label)
			}
		}
	}
}

// Two replicas' relays running at once publish every message exactly once (one relays,
// the other stands by), and when the relaying one stops the other takes over.
func TestTwoRelaysPublishEachMessageOnce(t *testing.T) {
	e := newEnv(t, testkit.SharedRabbitMQ(t).VHost(t))
	ctx := context.Background()
	stopFirst := e.start(t, outbox.Config{})
	e.store(ctx, t, true, "warm-up")
	e.receive(t, 1, 20*time.Second) // only the first relay runs: it is the relaying one
	e.start(t, outbox.Config{})

	// Four writers, 50 transactions each of 1 to 3 messages.
	var wg sync.WaitGroup
	var stored []string
	var mu sync.Mutex
	for w := range 4 {
		wg.Go(func() {
			for i := range 50 {
				batch := seq(fmt.Sprintf("w%d-%d-", w, i), 0, 1+i%3)
				if err := e.tryStore(ctx, true, batch...); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				stored = append(stored, batch...)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	e.assertOnce(ctx, t, stored, "both running")

	stopFirst()
	var more []string
	for i := range 30 {
		batch := seq(fmt.Sprintf("after-%d-", i), 0, 2)
		e.store(ctx, t, true, batch...)
		more = append(more, batch...)
	}
	e.assertOnce(ctx, t, more, "after the first stopped")
}

// assertOnce receives until a sentinel stored after want arrives and checks that every
// label in want arrived exactly once.
func (e *env) assertOnce(ctx context.Context, t *testing.T, want []string, phase string) {
	t.Helper()
	sentinel := "sentinel-" + phase
	e.store(ctx, t, true, sentinel)
	got := map[string]int{}
	for {
		d := testkit.Get(t, e.ch, events.QueueInventory, 30*time.Second)
		if d.CorrelationId == sentinel {
			break
		}
		got[d.CorrelationId]++
	}
	missing, duplicates := 0, 0
	for _, label := range want {
		switch n := got[label]; {
		case n == 0:
			missing++
		case n > 1:
			duplicates += n - 1
		}
	}
	if missing > 0 || duplicates > 0 || len(got) != len(want) {
		t.Errorf("%s: %d stored, %d distinct received, %d missing, %d duplicates", phase, len(want), len(got), missing, duplicates)
	}
}

// A batch's topics go out at once, but the messages of one topic, and those of one
// correlation id (one order's events on several topics), arrive in the order stored.
func TestRelayKeepsTheOrderOfEachTopicAndEachOrder(t *testing.T) {
	e := newEnv(t, testkit.SharedRabbitMQ(t).VHost(t))
	ctx := context.Background()
	topics := []string{fanout, // analytics' queue is bound to all four
		messaging.Topic(events.ExchangeTopic, events.OrderConfirmedKey(events.RegionEurope)),
		messaging.Topic(events.ExchangeTopic, events.OrderConfirmedKey(events.RegionAsia)),
		messaging.Topic(events.ExchangeTopic, events.OrderRejectedKey(events.RegionAmericas))}
	relay := e.newRelay(t, outbox.Config{})
	const n = 300
	for i := range n { // stored before the relay runs: they make one batch
		// Message i is order i%7's, on topic i%4: each order has events on every topic.
		err := postgres.InTx(ctx, e.pool, func(tx pgx.Tx) error {
			msg, err := messaging.NewEvent(events.TypeOrderCancelled, fmt.Sprint("o", i%7), events.OrderCancelled{OrderID: fmt.Sprint(i)})
			if err != nil {
				return err
			}
			return outbox.Store(ctx, tx, propagation.TraceContext{}, topics[i%len(topics)], msg)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	run(t, relay)
	lastOfTopic, lastOfOrder := map[string]int{}, map[string]int{}
	for range n {
		d := testkit.Get(t, e.ch, events.QueueAnalytics, 20*time.Second)
		var body events.OrderCancelled
		if err := json.Unmarshal(d.Body, &body); err != nil {
			t.Fatal(err)
		}
		i, _ := strconv.Atoi(body.OrderID)
		topic := messaging.Topic(d.Exchange, d.RoutingKey)
		if last, seen := lastOfTopic[topic]; seen && i <= last {
			t.Errorf("topic %s: %d after %d", topic, i, last)
		}
		if last, seen := lastOfOrder[d.CorrelationId]; seen && i <= last {
			t.Errorf("order %s: %d after %d", d.CorrelationId, i, last)
		}
		lastOfTopic[topic], lastOfOrder[d.CorrelationId] = i, i
	}
	if len(lastOfTopic) != len(topics) || len(lastOfOrder) != 7 {
		t.Errorf("messages of %d topics and %d orders arrived, want %d and 7", len(lastOfTopic), len(lastOfOrder), len(topics))
	}
}
