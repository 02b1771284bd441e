package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenhq/warren/deploy/internal/deadletters"
	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/messaging"
	"github.com/warrenhq/warren/shared/telemetry"
	"github.com/warrenhq/warren/shared/testkit"
)

func TestMain(m *testing.M) { os.Exit(testkit.Run(m)) }

// The trace every test message starts in, as an HTTP request's span would have it.
const (
	testTraceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	testTraceID     = "4bf92f3577b34da6a3ce929d0e0e4736"
)

// dlqEnv is a fresh vhost with Warren's topology, a messaging.Broker on it (the services'
// own layer), a raw channel to look from outside, and warrenctl's environment for it.
type dlqEnv struct {
	t       *testing.T
	broker  *messaging.Broker
	ch      *amqp.Channel
	environ map[string]string
}

func newDLQEnv(t *testing.T) *dlqEnv {
	t.Helper()
	vhostURL := testkit.SharedRabbitMQ(t).VHost(t)
	u, err := url.Parse(vhostURL)
	if err != nil {
		t.Fatal(err)
	}
	password, _ := u.User.Password()
	environ := map[string]string{
		"RABBITMQ_API_URL":        testkit.SharedRabbitMQ(t).API, // its credentials are ignored
		"DEFINITIONS_FILE":        "../../rabbitmq/definitions.json",
		"RABBITMQ_AMQP_URL":       "amqp://" + u.Host,
		"RABBITMQ_ADMIN_USER":     u.User.Username(),
		"RABBITMQ_ADMIN_PASSWORD": password,
		"RABBITMQ_VHOST":          strings.TrimPrefix(u.Path, "/"),
		"LOG_LEVEL":               "error",
	}
	e := &dlqEnv{t: t, environ: environ}
	// As compose's broker-setup does: the topology from the definitions file, and the
	// policy that lets inspect look at a dead letter any number of times.
	if _, err := e.warrenctl("broker", "apply-definitions"); err != nil {
		t.Fatal(err)
	}
	conn, err := amqp.Dial(vhostURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if e.ch, err = conn.Channel(); err != nil {
		t.Fatal(err)
	}
	e.broker, err = messaging.Connect(t.Context(), messaging.Config{URL: vhostURL, Propagator: telemetry.Propagator()},
		events.Topology(events.DefaultSMSRegions), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.broker.Close() })
	return e
}

// warrenctl runs warrenctl with args and returns its standard output.
func (e *dlqEnv) warrenctl(args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	err := run(e.t.Context(), args, e.environ, &stdout, &stderr)
	if testing.Verbose() {
		e.t.Logf("warrenctl %s\n%s%s", strings.Join(args, " "), stdout.String(), stderr.String())
	}
	return stdout.String(), err
}

// warrenctlJSON runs warrenctl with args and decodes its output into out.
func (e *dlqEnv) warrenctlJSON(out any, args ...string) {
	e.t.Helper()
	stdout, err := e.warrenctl(args...)
	if err != nil {
		e.t.Fatalf("warrenctl %s: %v", strings.Join(args, " "), err)
	}
	if err := json.Unmarshal([]byte(stdout), out); err != nil {
		e.t.Fatalf("warrenctl %s: %v in %s", strings.Join(args, " "), err, stdout)
	}
}

func (e *dlqEnv) inspect(queue string) (out struct {
	Count    int         `json:"count"`
	Messages []inspected `json:"messages"`
}) {
	e.t.Helper()
	e.warrenctlJSON(&out, "dlq", "inspect", queue, "--json")
	return out
}

// consume runs the services' router on queue with handler until the test ends.
func (e *dlqEnv) consume(queue string, handler message.NoPublishHandlerFunc) {
	e.t.Helper()
	router, err := e.broker.NewRouter(messaging.RouterConfig{Logger: slog.New(slog.DiscardHandler)},
		messaging.Consumer{Queue: queue, Handler: handler})
	if err != nil {
		e.t.Fatal(err)
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

func (e *dlqEnv) publish(topic string, msg *message.Message) {
	e.t.Helper()
	msg.Metadata.Set("traceparent", testTraceparent)
	if err := e.broker.Publisher().Publish(topic, msg); err != nil {
		e.t.Fatal(err)
	}
}

func (e *dlqEnv) count(queue string) int {
	e.t.Helper()
	q, err := e.ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		e.t.Fatalf("count %s: %v", queue, err)
	}
	return q.Messages
}

// waitCount waits until queue holds n messages.
func (e *dlqEnv) waitCount(queue string, n int) {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for e.count(queue) != n {
		if time.Now().After(deadline) {
			e.t.Fatalf("%s holds %d messages, want %d", queue, e.count(queue), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// get waits for a message in queue and acks it.
func (e *dlqEnv) get(queue string) amqp.Delivery {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		d, ok, err := e.ch.Get(queue, false)
		if err != nil {
			e.t.Fatal(err)
		}
		if ok {
			return d
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("no message in %s", queue)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func waitProcessed(t *testing.T, processed <-chan *message.Message) *message.Message {
	t.Helper()
	select {
	case msg := <-processed:
		return msg
	case <-time.After(20 * time.Second):
		t.Fatal("the replayed message was not processed")
		return nil
	}
}

// checkReplayed checks what a consumer got from a replay: the dead letter's identity and
// trace, none of its failure.
func checkReplayed(t *testing.T, got *message.Message, dead inspected) {
	t.Helper()
	if got.UUID != dead.MessageID {
		t.Errorf("message id %q, want %q", got.UUID, dead.MessageID)
	}
	if tp := got.Metadata.Get("traceparent"); tp != dead.Traceparent || !strings.Contains(tp, testTraceID) {
		t.Errorf("traceparent %q, want the dead letter's %q in trace %s", tp, dead.Traceparent, testTraceID)
	}
	for k := range got.Metadata {
		if strings.HasPrefix(k, "x-warren-dead-letter-") || strings.HasPrefix(k, "x-death") || strings.Contains(k, "-death-") {
			t.Errorf("replayed message carries %s=%s", k, got.Metadata[k])
		}
	}
	if n := got.Metadata.Get(deadletters.HeaderReplayCount); n != "1" {
		t.Errorf("replay count %q, want 1", n)
	}
	if at := got.Metadata.Get(deadletters.HeaderReplayedAt); at == "" {
		t.Error("no replayed-at header")
	}
}

func byID(t *testing.T, msgs []inspected, id string) inspected {
	t.Helper()
	for _, m := range msgs {
		if m.MessageID == id {
			return m
		}
	}
	t.Fatalf("no message %q among %+v", id, msgs)
	return inspected{}
}

// A consumer dead-letters an order (a permanent failure) and a malformed message; the
// operator lists, inspects, fixes the consumer, replays the order to the queue that failed
// it only, replays the malformed one to its fanout (every queue gets it again, and it fails
// again), and purges it.
func TestDLQConsumerDeadLetters(t *testing.T) {
	e := newDLQEnv(t)
	dlq := messaging.DeadLetterQueueName(events.QueueInventory)
	others := []string{events.QueueEmail, events.QueueAnalytics} // the fanout's other queues, unconsumed

	var failing atomic.Bool
	failing.Store(true)
	processed := make(chan *message.Message, 10)
	e.consume(events.QueueInventory, messaging.Dispatcher{
		events.TypeOrderPlaced: messaging.Handle(func(_ context.Context, _ events.OrderPlaced, msg *message.Message) error {
			if failing.Load() {
				return messaging.Permanent(errors.New("warehouse closed"))
			}
			processed <- msg.Copy()
			return nil
		}),
	}.Handle)

	order, err := messaging.NewEvent(events.TypeOrderPlaced, "o-1", events.OrderPlaced{OrderID: "o-1",
		Region: events.RegionEurope, Items: []events.Item{{SKU: "carrot-seeds", Quantity: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	e.publish(messaging.Topic(events.ExchangeOrderEvents, ""), order)
	malformed := message.NewMessage("bad-json", []byte(`{"order_id": `))
	malformed.Metadata.Set(messaging.HeaderType, events.TypeOrderPlaced)
	e.publish(messaging.Topic(events.ExchangeOrderEvents, ""), malformed)
	e.waitCount(dlq, 2)

	var list []queueCount
	e.warrenctlJSON(&list, "dlq", "list", "--json")
	if len(list) != len(deadletters.Queues(topology)) || list[len(list)-2].Queue != messaging.UnroutableQueue ||
		list[len(list)-1].Queue != messaging.ArchiveQueue {
		t.Errorf("list = %+v, want every .dlq, then unroutable and archive", list)
	}
	for _, q := range list {
		if want := map[bool]int{true: 2}[q.Queue == dlq]; q.Messages != want || !q.Exists {
			t.Errorf("list: %s holds %d (exists %v), want %d", q.Queue, q.Messages, q.Exists, want)
		}
	}

	got := e.inspect(dlq)
	if got.Count != 2 || len(got.Messages) != 2 {
		t.Fatalf("inspect: count %d, %d messages", got.Count, len(got.Messages))
	}
	dead := byID(t, got.Messages, order.UUID)
	if dead.DeadLetteredBy != deadletters.ByConsumer || dead.Reason != "permanent: warehouse closed" ||
		dead.Queue != events.QueueInventory || dead.Attempts != 1 || dead.Type != events.TypeOrderPlaced ||
		dead.CorrelationID != "o-1" || dead.TraceID != testTraceID || dead.DeadLetteredAt.IsZero() ||
		dead.Original == nil || *dead.Original != (deadletters.Destination{Exchange: events.ExchangeOrderEvents}) {
		t.Errorf("inspect o-1: %+v", dead)
	}
	if bad := byID(t, got.Messages, "bad-json"); !strings.HasPrefix(bad.Reason, "permanent: decode") || bad.Body != `{"order_id": ` {
		t.Errorf("inspect bad-json: reason %q body %q", bad.Reason, bad.Body)
	}
	text, err := e.warrenctl("dlq", "inspect", dlq, "--limit", "1")
	if err != nil || !strings.Contains(text, "2 message(s); the first 1") || !strings.Contains(text, "permanent: warehouse closed") {
		t.Errorf("inspect as text: %v\n%s", err, text)
	}
	// More looks than a quorum queue's default delivery limit (20), each of which counts
	// as a delivery up to RabbitMQ 4.2: the policy keeps every message where it is.
	for range 20 {
		if _, err := e.warrenctl("dlq", "inspect", dlq); err != nil {
			t.Fatal(err)
		}
	}
	if again := e.inspect(dlq); again.Count != 2 || len(again.Messages) != 2 {
		t.Errorf("inspecting changed the queue: %d messages left", again.Count)
	} else {
		byID(t, again.Messages, order.UUID)
		byID(t, again.Messages, "bad-json")
	}

	// Fixed. Replay the order (--to queue is the default): only inventory's queue gets it.
	failing.Store(false)
	out, err := e.warrenctl("dlq", "replay", dlq, "--id", order.UUID)
	if err != nil || !strings.Contains(out, "1 replayed") {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	replayed := waitProcessed(t, processed)
	checkReplayed(t, replayed, dead)
	if ex := replayed.Metadata.Get(messaging.HeaderExchange); ex != "" {
		t.Errorf("replayed through exchange %q, want the default exchange", ex)
	}
	e.waitCount(dlq, 1) // bad-json is left
	for _, q := range others {
		if n := e.count(q); n != 2 {
			t.Errorf("%s holds %d messages, want its 2 originals: a --to queue replay reaches only the failed queue", q, n)
		}
	}
	if _, err := e.warrenctl("dlq", "replay", dlq, "--id", "no-such-id"); !errors.Is(err, errNoMessage) {
		t.Errorf("replay of an unknown id: %v, want errNoMessage", err)
	}

	// --to original sends the malformed message to the fanout: every queue gets it again,
	// and inventory's consumer dead-letters it again, replay count and all.
	var res deadletters.ReplayResult
	e.warrenctlJSON(&res, "dlq", "replay", dlq, "--to", "original", "--json")
	if len(res.Replayed) != 1 || res.Replayed[0].To != (deadletters.Destination{Exchange: events.ExchangeOrderEvents}) {
		t.Fatalf("replay --to original: %+v", res)
	}
	for _, q := range others {
		e.waitCount(q, 3)
	}
	e.waitCount(dlq, 1)
	if again := e.inspect(dlq); again.Messages[0].MessageID != "bad-json" || again.Messages[0].ReplayCount != 1 {
		t.Errorf("dead-lettered again: %+v", again.Messages[0])
	}

	if _, err := e.warrenctl("dlq", "purge", dlq); !errors.Is(err, errNotConfirmed) || e.count(dlq) != 1 {
		t.Errorf("purge without --yes: %v, %d left", err, e.count(dlq))
	}
	if out, err := e.warrenctl("dlq", "purge", dlq, "--yes"); err != nil || !strings.Contains(out, "purged 1 message(s)") {
		t.Errorf("purge: %v %s", err, out)
	}
	if n := e.count(dlq); n != 0 {
		t.Errorf("%d messages left after purge", n)
	}
	if _, err := e.warrenctl("dlq", "purge", events.QueueInventory, "--yes"); !errors.Is(err, deadletters.ErrNotDeadLetterQueue) {
		t.Errorf("purge of a work queue: %v, want refused", err)
	}
}

// The broker dead-letters a message a raw client rejects (x-death only); replay --to
// original sends it back to its topic exchange and routing key, and the consumer processes
// it. A message that says nothing of where it came from is reported and left in place.
func TestDLQBrokerDeadLetters(t *testing.T) {
	e := newDLQEnv(t)
	dlq := messaging.DeadLetterQueueName(events.QueueOrder)
	key := events.InventoryReservedKey(events.RegionEurope)

	reserved, err := messaging.NewEvent(events.TypeStockReserved, "o-2", events.StockReserved{OrderID: "o-2", Region: events.RegionEurope})
	if err != nil {
		t.Fatal(err)
	}
	e.publish(messaging.Topic(events.ExchangeTopic, key), reserved) // to order's queue and analytics' ("#")
	if err := e.get(events.QueueOrder).Reject(false); err != nil {
		t.Fatal(err)
	}
	if err := e.get(events.QueueAnalytics).Ack(false); err != nil {
		t.Fatal(err)
	}
	e.waitCount(dlq, 1)

	dead := byID(t, e.inspect(dlq).Messages, reserved.UUID)
	if dead.DeadLetteredBy != deadletters.ByBroker || !strings.HasPrefix(dead.Reason, "rejected in "+events.QueueOrder) ||
		len(dead.Deaths) != 1 || dead.Deaths[0].Count != 1 || dead.Queue != events.QueueOrder || dead.TraceID != testTraceID ||
		dead.Original == nil || *dead.Original != (deadletters.Destination{Exchange: events.ExchangeTopic, RoutingKey: key}) {
		t.Errorf("inspect: %+v", dead)
	}

	processed := make(chan *message.Message, 10)
	e.consume(events.QueueOrder, messaging.Dispatcher{
		events.TypeStockReserved: messaging.Handle(func(_ context.Context, _ events.StockReserved, msg *message.Message) error {
			processed <- msg.Copy()
			return nil
		}),
	}.Handle)
	var res deadletters.ReplayResult
	e.warrenctlJSON(&res, "dlq", "replay", dlq, "--to", "original", "--json")
	if len(res.Replayed) != 1 || res.Replayed[0].MessageID != reserved.UUID || len(res.Skipped) != 0 {
		t.Fatalf("replay: %+v", res)
	}
	replayed := waitProcessed(t, processed)
	checkReplayed(t, replayed, dead)
	if ex, k := replayed.Metadata.Get(messaging.HeaderExchange), replayed.Metadata.Get(messaging.HeaderRoutingKey); ex != events.ExchangeTopic || k != key {
		t.Errorf("replayed through %q %q, want %s %s", ex, k, events.ExchangeTopic, key)
	}
	if n := e.count(dlq); n != 0 {
		t.Errorf("%d messages left in %s", n, dlq)
	}
	e.waitCount(events.QueueAnalytics, 1) // --to original: every queue bound to the key gets it again

	// Published to the queue's .dlx by hand, with no user-id: nothing says where it came
	// from, nor who wrote it.
	if err := e.ch.PublishWithContext(t.Context(), messaging.DeadLetterExchangeName(events.QueueOrder), events.QueueOrder, false, false,
		amqp.Publishing{MessageId: "orphan", Body: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	e.waitCount(dlq, 1)
	out, err := e.warrenctl("dlq", "replay", dlq, "--to", "original")
	if err != nil || !strings.Contains(out, "left orphan in "+dlq+": refused: origin not verified: it has no user-id") {
		t.Errorf("replay of the orphan: %v\n%s", err, out)
	}
	if left := e.inspect(dlq); left.Count != 1 || left.Messages[0].MessageID != "orphan" {
		t.Errorf("left in %s: %+v, want the orphan", dlq, left)
	}

	// An unroutable message has no queue to go back to, only its exchange and key.
	lost, _ := messaging.NewEvent(events.TypeStockQuery, "", events.StockQuery{SKU: "s"})
	e.publish(messaging.Topic(events.ExchangeRPC, "nobody.listens"), lost)
	e.waitCount(messaging.UnroutableQueue, 1)
	if m := e.inspect(messaging.UnroutableQueue).Messages[0]; m.DeadLetteredBy != deadletters.ByNobody ||
		m.Original == nil || *m.Original != (deadletters.Destination{Exchange: events.ExchangeRPC, RoutingKey: "nobody.listens"}) {
		t.Errorf("unroutable: %+v", m)
	}
	if out, err := e.warrenctl("dlq", "replay", messaging.UnroutableQueue); err != nil || !strings.Contains(out, "0 replayed, 1 left") {
		t.Errorf("replay of an unroutable message to its queue: %v\n%s", err, out)
	}
}
