package deadletters_test

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenhq/warren/deploy/internal/brokeraccess"
	"github.com/warrenhq/warren/deploy/internal/deadletters"
	"github.com/warrenhq/warren/deploy/internal/rabbitmgmt"
	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/messaging"
	"github.com/warrenhq/warren/shared/testkit"
)

func TestMain(m *testing.M) { os.Exit(testkit.Run(m)) }

// broker is a vhost of the shared test broker as warrenctl broker setup leaves it: the
// topology, its policies and one user per service.
type broker struct {
	t        *testing.T
	vhostURL *url.URL
	admin    *amqp.Channel
	dlq      *deadletters.Client
	origins  deadletters.Origins
}

func setUp(t *testing.T) *broker {
	t.Helper()
	rmq := testkit.SharedRabbitMQ(t)
	raw := rmq.VHost(t)
	vhostURL, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	topology := events.Topology(events.DefaultSMSRegions)
	b := &broker{t: t, vhostURL: vhostURL, admin: testkit.DeclareTopology(t, raw, topology)}
	rmq.LoadPolicies(t, raw, topology.Policies("/"))

	apiURL, err := url.Parse(rmq.API)
	if err != nil {
		t.Fatal(err)
	}
	apiPW, _ := apiURL.User.Password()
	api, err := rabbitmgmt.New(rabbitmgmt.Config{URL: rmq.API, User: apiURL.User.Username(), Password: apiPW})
	if err != nil {
		t.Fatal(err)
	}
	// Users are broker-wide: the same passwords as brokeraccess's tests, which may run at once.
	passwords := map[string]string{}
	for _, name := range brokeraccess.Names() {
		passwords[name] = "test-" + name + "-secret"
	}
	cfg := brokeraccess.ApplyConfig{VHost: strings.TrimPrefix(vhostURL.Path, "/"), Passwords: passwords, AdminUser: "warren-test"}
	if err := brokeraccess.Apply(t.Context(), api, cfg, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("apply users: %v", err)
	}

	adminPW, _ := vhostURL.User.Password()
	b.dlq, err = deadletters.Dial(deadletters.Config{URL: "amqp://" + vhostURL.Host, User: vhostURL.User.Username(),
		Password: adminPW, VHost: strings.TrimPrefix(vhostURL.Path, "/")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.dlq.Close() })
	if b.origins, err = deadletters.NewOrigins(events.Topology(events.Regions)); err != nil {
		t.Fatal(err)
	}
	return b
}

// as returns an AMQP URL of the vhost with service's own credentials.
func (b *broker) as(service string) string {
	u := *b.vhostURL
	u.User = url.UserPassword(service, "test-"+service+"-secret")
	return u.String()
}

// channel is a raw channel logged in as service: what a compromised service can do.
func (b *broker) channel(service string) *amqp.Channel {
	b.t.Helper()
	conn, err := amqp.Dial(b.as(service))
	if err != nil {
		b.t.Fatalf("dial as %s: %v", service, err)
	}
	b.t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		b.t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		b.t.Fatal(err)
	}
	return ch
}

// publish publishes p on ch and requires the broker to confirm it.
func (b *broker) publish(ch *amqp.Channel, exchange, key string, p amqp.Publishing) {
	b.t.Helper()
	confirm, err := ch.PublishWithDeferredConfirmWithContext(b.t.Context(), exchange, key, false, false, p)
	if err != nil {
		b.t.Fatalf("publish to %q %q: %v", exchange, key, err)
	}
	if ok, err := confirm.WaitContext(b.t.Context()); !ok || err != nil {
		b.t.Fatalf("publish to %q %q: not confirmed (%v)", exchange, key, err)
	}
}

func (b *broker) count(queue string) int {
	b.t.Helper()
	n, err := b.dlq.Count(queue)
	if err != nil {
		b.t.Fatal(err)
	}
	return n
}

func (b *broker) waitCount(queue string, n int) {
	b.t.Helper()
	testkit.Eventually(b.t, 20*time.Second, func() string {
		if got := b.count(queue); got != n {
			return queue + " does not hold the expected number of messages yet"
		}
		return ""
	})
}

func (b *broker) replay(queue string, mode deadletters.Mode) deadletters.ReplayResult {
	b.t.Helper()
	res, err := b.dlq.Replay(b.t.Context(), queue, deadletters.ReplayOptions{Origins: b.origins, To: mode})
	if err != nil {
		b.t.Fatalf("replay %s --to %s: %v", queue, mode, err)
	}
	return res
}

// skipped returns the reason Replay gave for leaving id, or fails.
func skipped(t *testing.T, res deadletters.ReplayResult, id string) string {
	t.Helper()
	for _, s := range res.Skipped {
		if s.MessageID == id {
			return s.Reason
		}
	}
	t.Fatalf("%s was not left in place: %+v", id, res)
	return ""
}

// What sms could do with its own credentials to make order confirm an order: write dead
// letters that claim to be inventory's reservations. It can only write into its own
// order.events.sms.dlq (brokeraccess's tests prove it), with its own user-id; replay sends
// none of them to order, and sends back to sms's own queue only the ones whose record does
// not contradict where they sit.
func TestReplayRefusesWhatSMSCanForge(t *testing.T) {
	b := setUp(t)
	sms := b.channel("sms")
	dlx, dlq := messaging.DeadLetterExchangeName(events.QueueSMS), messaging.DeadLetterQueueName(events.QueueSMS)
	reservedKey := events.InventoryReservedKey(events.RegionEurope)
	forged := func(id string, headers amqp.Table) amqp.Publishing {
		return amqp.Publishing{MessageId: id, UserId: "sms", Type: events.TypeStockReserved, DeliveryMode: amqp.Persistent,
			Body: []byte(`{"order_id":"o-1","region":"europe"}`), Headers: headers}
	}
	consumerSays := func(queue string) amqp.Table {
		return amqp.Table{
			messaging.HeaderDeadLetterReason: "permanent: nothing", messaging.HeaderDeadLetterQueue: queue,
			messaging.HeaderExchange: events.ExchangeTopic, messaging.HeaderRoutingKey: reservedKey,
		}
	}
	// Claims to be order's dead letter: --to queue would send it into order's queue.
	b.publish(sms, dlx, events.QueueSMS, forged("claims-order-queue", consumerSays(events.QueueOrder)))
	// Claims, as sms's own dead letter, to have been a reservation on the topic exchange.
	b.publish(sms, dlx, events.QueueSMS, forged("claims-reservation", consumerSays(events.QueueSMS)))
	// Claims the broker dead-lettered it, with an x-death of its own making.
	b.publish(sms, dlx, events.QueueSMS, forged("claims-broker", amqp.Table{
		"x-death": []any{amqp.Table{"queue": events.QueueSMS, "reason": "rejected", "count": int64(1),
			"exchange": events.ExchangeTopic, "routing-keys": []any{reservedKey}}},
		"x-first-death-queue": events.QueueSMS, "x-first-death-reason": "rejected",
	}))
	noUser := forged("no-user-id", consumerSays(events.QueueSMS))
	noUser.UserId = ""
	b.publish(sms, dlx, events.QueueSMS, noUser)
	b.waitCount(dlq, 4)

	res := b.replay(dlq, deadletters.ToOriginal)
	if len(res.Replayed) != 0 {
		t.Errorf("--to original replayed %+v", res.Replayed)
	}
	for id, why := range map[string]string{
		"claims-order-queue": "it says it failed in " + events.QueueOrder + ", but it sits in the dead letters of " + events.QueueSMS,
		"claims-reservation": "a consumer's dead letter is its consumer's word, and sms may not publish to exchange events.topic",
		"claims-broker":      "it was published by sms, which may not publish to exchange events.topic",
		"no-user-id":         "it has no user-id, so the broker vouches for no writer",
	} {
		if reason := skipped(t, res, id); !strings.HasPrefix(reason, "refused: origin not verified: ") || !strings.Contains(reason, why) {
			t.Errorf("%s --to original: %q, want refused because %s", id, reason, why)
		}
	}

	res = b.replay(dlq, deadletters.ToQueue)
	for _, id := range []string{"claims-order-queue", "no-user-id"} {
		if reason := skipped(t, res, id); !strings.HasPrefix(reason, "refused: origin not verified: ") {
			t.Errorf("%s --to queue: %q, want refused", id, reason)
		}
	}
	// The others go back where only sms reads them: sms fooling itself.
	if len(res.Replayed) != 2 {
		t.Errorf("--to queue replayed %+v, want claims-reservation and claims-broker", res.Replayed)
	}
	for _, r := range res.Replayed {
		if r.To != (deadletters.Destination{RoutingKey: events.QueueSMS}) {
			t.Errorf("%s replayed to %s, want sms's own queue", r.MessageID, r.To)
		}
	}
	if n := b.count(events.QueueOrder); n != 0 {
		t.Errorf("order's queue holds %d messages: sms's forgeries reached it", n)
	}
	b.waitCount(dlq, 2)
}

// inventory answers requests through the default exchange, which routes to any queue by
// name, so it can put a message straight into order's dead-letter queue. The broker's record
// of the exchange it came through gives it away.
func TestReplayRefusesWhatBypassedTheDeadLetterExchange(t *testing.T) {
	b := setUp(t)
	dlq := messaging.DeadLetterQueueName(events.QueueOrder)
	b.publish(b.channel("inventory"), "", dlq, amqp.Publishing{MessageId: "by-name", UserId: "inventory",
		Type: events.TypeStockReserved, Body: []byte(`{}`), Headers: amqp.Table{
			messaging.HeaderDeadLetterReason: "permanent: nothing", messaging.HeaderDeadLetterQueue: events.QueueOrder,
		}})
	b.waitCount(dlq, 1)
	for _, mode := range []deadletters.Mode{deadletters.ToQueue, deadletters.ToOriginal} {
		res := b.replay(dlq, mode)
		want := "refused: origin not verified: it reached " + dlq + " through the default exchange, not " +
			messaging.DeadLetterExchangeName(events.QueueOrder)
		if reason := skipped(t, res, "by-name"); !strings.HasPrefix(reason, want) {
			t.Errorf("--to %s: %q, want %q", mode, reason, want)
		}
	}
	if n := b.count(events.QueueOrder); n != 0 {
		t.Errorf("order's queue holds %d messages", n)
	}
}

// Genuine dead letters still go back: order's consumer gives up on a reservation (written
// with order's user-id), and the broker dead-letters one a raw consumer rejects (the
// reservation as inventory published it, user-id and all).
func TestReplaySendsGenuineDeadLettersBack(t *testing.T) {
	b := setUp(t)
	ctx := t.Context()
	logger := slog.New(slog.DiscardHandler)
	topology := events.Topology(events.DefaultSMSRegions)
	connect := func(service string) *messaging.Broker {
		br, err := messaging.Connect(ctx, messaging.Config{URL: b.as(service), ConnectTimeout: 10 * time.Second}, topology, logger)
		if err != nil {
			t.Fatalf("connect as %s: %v", service, err)
		}
		t.Cleanup(func() { br.Close() })
		return br
	}
	inventory, order := connect("inventory"), connect("order")
	key := events.InventoryReservedKey(events.RegionEurope)
	reserve := func(orderID string) *message.Message {
		msg, err := messaging.NewEvent(events.TypeStockReserved, orderID, events.StockReserved{OrderID: orderID, Region: events.RegionEurope})
		if err != nil {
			t.Fatal(err)
		}
		if err := inventory.Publisher().Publish(messaging.Topic(events.ExchangeTopic, key), msg); err != nil {
			t.Fatal(err)
		}
		return msg
	}
	dlq := messaging.DeadLetterQueueName(events.QueueOrder)

	// The consumer's dead letter.
	router, err := order.NewRouter(messaging.RouterConfig{Logger: logger}, messaging.Consumer{Queue: events.QueueOrder,
		Handler: func(*message.Message) error { return messaging.Permanent(errors.New("orders closed")) }})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = router.Run(runCtx) }()
	<-router.Running()
	byConsumer := reserve("o-consumer")
	b.waitCount(dlq, 1)
	stop()
	<-done

	res := b.replay(dlq, deadletters.ToOriginal)
	if reason := skipped(t, res, byConsumer.UUID); !strings.Contains(reason, "a consumer's dead letter is its consumer's word, and order may not publish") {
		t.Errorf("consumer dead letter --to original: %q, want refused: order cannot publish reservations", reason)
	}
	res = b.replay(dlq, deadletters.ToQueue)
	if len(res.Replayed) != 1 || res.Replayed[0].MessageID != byConsumer.UUID ||
		res.Replayed[0].To != (deadletters.Destination{RoutingKey: events.QueueOrder}) {
		t.Fatalf("consumer dead letter --to queue: %+v", res)
	}
	if d := testkit.Get(t, b.admin, events.QueueOrder, 10*time.Second); d.MessageId != byConsumer.UUID {
		t.Errorf("order's queue got %q, want the replayed %q", d.MessageId, byConsumer.UUID)
	}

	// The broker's dead letter: a raw consumer (as order) rejects it.
	byBroker := reserve("o-broker")
	if err := getUnacked(t, b.channel("order"), events.QueueOrder).Reject(false); err != nil {
		t.Fatal(err)
	}
	b.waitCount(dlq, 1)
	res = b.replay(dlq, deadletters.ToOriginal)
	want := deadletters.Destination{Exchange: events.ExchangeTopic, RoutingKey: key}
	if len(res.Replayed) != 1 || res.Replayed[0].MessageID != byBroker.UUID || res.Replayed[0].To != want {
		t.Fatalf("broker dead letter --to original: %+v, want it replayed to %s", res, want)
	}
	if d := testkit.Get(t, b.admin, events.QueueOrder, 10*time.Second); d.MessageId != byBroker.UUID {
		t.Errorf("order's queue got %q, want the replayed %q", d.MessageId, byBroker.UUID)
	}
}

// getUnacked waits for a message in queue and returns it unacknowledged.
func getUnacked(t *testing.T, ch *amqp.Channel, queue string) amqp.Delivery {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		d, ok, err := ch.Get(queue, false)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			return d
		}
	}
	t.Fatalf("no message in %s", queue)
	return amqp.Delivery{}
}
