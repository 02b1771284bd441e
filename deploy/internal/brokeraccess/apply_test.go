package brokeraccess_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenhq/warren/deploy/internal/brokeraccess"
	"github.com/warrenhq/warren/deploy/internal/rabbitmgmt"
	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/messaging"
	"github.com/warrenhq/warren/shared/testkit"
)

func TestMain(m *testing.M) { os.Exit(testkit.Run(m)) }

// broker is a vhost of the shared test broker with the users applied.
type broker struct {
	api      *rabbitmgmt.Client
	vhostURL *url.URL
	vhost    string
	pw       map[string]string
}

// serviceURL is the vhost's AMQP URL with service's own credentials.
func (b broker) serviceURL(service string) string {
	u := *b.vhostURL
	u.User = url.UserPassword(service, b.pw[service])
	return u.String()
}

func setUp(t *testing.T) broker {
	t.Helper()
	rmq := testkit.SharedRabbitMQ(t)
	vhostURL, err := url.Parse(rmq.VHost(t))
	if err != nil {
		t.Fatal(err)
	}
	apiURL, err := url.Parse(rmq.API)
	if err != nil {
		t.Fatal(err)
	}
	adminPW, _ := apiURL.User.Password()
	api, err := rabbitmgmt.New(rabbitmgmt.Config{URL: rmq.API, User: apiURL.User.Username(), Password: adminPW})
	if err != nil {
		t.Fatal(err)
	}
	b := broker{api: api, vhostURL: vhostURL, vhost: strings.TrimPrefix(vhostURL.Path, "/"), pw: map[string]string{}}
	for _, name := range brokeraccess.Names() {
		b.pw[name] = "test-" + name + "-secret"
	}
	return b
}

func TestApplyUsersAndGuest(t *testing.T) {
	b := setUp(t)
	ctx := t.Context()
	// guest as a stock broker has it; a user Apply has no business with.
	for _, u := range []string{brokeraccess.GuestUser, "bystander"} {
		if err := b.api.PutUser(ctx, u, "pw-"+u, nil); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = b.api.DeleteUser(context.Background(), "bystander") })

	cfg := brokeraccess.ApplyConfig{VHost: b.vhost, Passwords: b.pw, AdminUser: "warren-test"}
	for range 2 { // a second run must succeed and change nothing
		if err := brokeraccess.Apply(ctx, b.api, cfg, slog.New(slog.DiscardHandler)); err != nil {
			t.Fatalf("apply: %v", err)
		}
	}

	if _, err := b.api.User(ctx, brokeraccess.GuestUser); !errors.Is(err, rabbitmgmt.ErrNotFound) {
		t.Errorf("guest: got %v, want it deleted", err)
	}
	if _, err := b.api.User(ctx, "bystander"); err != nil {
		t.Errorf("bystander user was touched: %v", err)
	}
	topology := events.Topology(events.Regions)
	for _, s := range brokeraccess.Services() {
		got, err := b.api.GetPermissions(ctx, b.vhost, s.Name)
		if err != nil {
			t.Fatalf("permissions of %s: %v", s.Name, err)
		}
		a, _ := brokeraccess.For(topology, s)
		if got != a.Permissions() {
			t.Errorf("permissions of %s = %+v, want %+v", s.Name, got, a.Permissions())
		}
	}
}

func TestApplyRefusesGuestAsAdmin(t *testing.T) {
	cfg := brokeraccess.ApplyConfig{VHost: "/", Passwords: map[string]string{}, AdminUser: brokeraccess.GuestUser}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "guest") {
		t.Fatalf("Validate() = %v, want an error about guest", err)
	}
}

// TestServiceUsers connects as each service's user and does what the service does at
// start-up and at work, then what it must not be able to do.
func TestServiceUsers(t *testing.T) {
	b := setUp(t)
	ctx := t.Context()
	cfg := brokeraccess.ApplyConfig{VHost: b.vhost, Passwords: b.pw, AdminUser: "warren-test"}
	if err := brokeraccess.Apply(ctx, b.api, cfg, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("apply: %v", err)
	}
	// The broker as warrenctl broker setup leaves it: every queue and sink, and the policies
	// (so that a refusal below is one, not a missing queue).
	topology := events.Topology(events.DefaultSMSRegions)
	testkit.DeclareTopology(t, b.vhostURL.String(), topology)
	testkit.SharedRabbitMQ(t).LoadPolicies(t, b.vhostURL.String(), topology.Policies("/"))

	for _, s := range brokeraccess.Services() {
		t.Run(s.Name+" runs", func(t *testing.T) { runAs(t, b.serviceURL(s.Name), s) })
	}

	t.Run("request and reply across users", func(t *testing.T) { requestReply(t, b) })

	refusals := []struct {
		name, user string
		op         func(*amqp.Channel) error
	}{
		{"order consumes email's queue", "order", consume(events.QueueEmail)},
		{"email consumes sms's queue", "email", consume(events.QueueSMS)},
		{"sms consumes inventory's queue", "sms", consume(events.QueueInventory)},
		{"analytics consumes the stock queries", "analytics", consume(events.QueueStockQuery)},
		{"inventory consumes order's queue", "inventory", consume(events.QueueOrder)},
		{"email publishes an order event", "email", publish(events.ExchangeOrderEvents, "")},
		{"analytics publishes on the topic", "analytics", publish(events.ExchangeTopic, events.OrderConfirmedKey(events.RegionEurope))},
		{"sms sends a stock query", "sms", publish(events.ExchangeRPC, events.RoutingKeyStockQuery)},
		{"inventory publishes an order confirmation", "inventory", publish(events.ExchangeTopic, events.OrderConfirmedKey(events.RegionEurope))},
		{"order publishes a reservation", "order", publish(events.ExchangeTopic, events.InventoryReservedKey(events.RegionEurope))},
		{"email replies through the default exchange", "email", publish("", events.QueueOrder)},
		{"sms deletes a queue", "sms", deleteQueue(events.QueueEmail)},
	}
	// Dead letters: no service may put one in another's dead-letter queue, with any key.
	for _, s := range brokeraccess.Services() {
		for _, other := range brokeraccess.Services() {
			if other.Name == s.Name {
				continue
			}
			for _, q := range other.Consumes {
				dlx := messaging.DeadLetterExchangeName(q)
				refusals = append(refusals, struct {
					name, user string
					op         func(*amqp.Channel) error
				}{fmt.Sprintf("%s dead-letters into %s's %s", s.Name, other.Name, messaging.DeadLetterQueueName(q)), s.Name, publish(dlx, q)})
			}
		}
	}
	// The shared sinks: no service may delete, purge, declare, read or fill them.
	for _, s := range brokeraccess.Services() {
		for _, sink := range []struct{ queue, exchange string }{
			{messaging.ArchiveQueue, messaging.ArchiveExchange},
			{messaging.UnroutableQueue, messaging.UnroutableExchange},
		} {
			for what, op := range map[string]func(*amqp.Channel) error{
				"deletes " + sink.queue:                                     deleteQueue(sink.queue),
				"purges " + sink.queue:                                      purgeQueue(sink.queue),
				"declares " + sink.queue:                                    declareQueue(sink.queue),
				"consumes " + sink.queue:                                    consume(sink.queue),
				"deletes " + sink.exchange:                                  deleteExchange(sink.exchange),
				"publishes to " + sink.exchange:                             publish(sink.exchange, ""),
				"publishes a forged order confirmation to " + sink.exchange: publish(sink.exchange, events.OrderConfirmedKey(events.RegionEurope)),
			} {
				refusals = append(refusals, struct {
					name, user string
					op         func(*amqp.Channel) error
				}{s.Name + " " + what, s.Name, op})
			}
		}
	}
	for _, r := range refusals {
		t.Run("refused: "+r.name, func(t *testing.T) { expectRefused(t, b.serviceURL(r.user), r.op) })
	}

	// The user-id property is the broker's word for who published a message (warrenctl dlq
	// replay relies on it): a service cannot claim to be another.
	t.Run("refused: sms dead-letters as order", func(t *testing.T) {
		q := events.QueueSMS
		expectClosed(t, b.serviceURL("sms"), amqp.PreconditionFailed, func(ch *amqp.Channel) error {
			return ch.PublishWithContext(context.Background(), messaging.DeadLetterExchangeName(q), q, false, false,
				amqp.Publishing{UserId: "order", Body: []byte(`{}`)})
		})
	})
}

// runAs declares exactly what service s declares at start-up (messaging.Connect and
// Broker.Declare), publishes to each of its exchanges with each of its keys and to the
// dead-letter exchange, and consumes its queues.
func runAs(t *testing.T, amqpURL string, s brokeraccess.Service) {
	ctx := t.Context()
	logger := slog.New(slog.DiscardHandler)
	br, err := messaging.Connect(ctx, messaging.Config{URL: amqpURL, ConnectTimeout: 10 * time.Second},
		events.Topology(events.DefaultSMSRegions), logger)
	if err != nil {
		t.Fatalf("connect as %s: %v", s.Name, err)
	}
	defer br.Close()

	var exchanges []string
	for _, p := range s.Publishes {
		exchanges = append(exchanges, p.Exchange)
	}
	if err := br.Declare(s.Consumes, exchanges); err != nil {
		t.Fatalf("declare as %s: %v", s.Name, err)
	}
	if s.Name == "sms" {
		// sms unbinds the regions it no longer serves.
		stale := []messaging.Binding{{Exchange: events.ExchangeTopic, Key: events.OrderConfirmedKey(events.RegionAsia)}}
		if err := br.Unbind(events.QueueSMS, stale); err != nil {
			t.Fatalf("unbind as sms: %v", err)
		}
	}

	pub := br.Publisher()
	for _, p := range s.Publishes {
		for _, key := range p.Keys {
			if err := pub.Publish(messaging.Topic(p.Exchange, key), testMessage()); err != nil {
				t.Errorf("publish to %s %q as %s: %v", p.Exchange, key, s.Name, err)
			}
		}
		if len(p.Keys) == 0 {
			if err := pub.Publish(messaging.Topic(p.Exchange, ""), testMessage()); err != nil {
				t.Errorf("publish to %s as %s: %v", p.Exchange, s.Name, err)
			}
		}
	}
	for _, q := range s.Consumes {
		if err := pub.Publish(messaging.Topic(messaging.DeadLetterExchangeName(q), q), testMessage()); err != nil {
			t.Errorf("dead-letter from %s as %s: %v", q, s.Name, err)
		}
	}

	conn := dial(t, amqpURL)
	for _, q := range s.Consumes {
		if err := consume(q)(channel(t, conn)); err != nil {
			t.Errorf("consume %s as %s: %v", q, s.Name, err)
		}
	}
}

// requestReply asks the stock question as order and answers it as inventory: direct
// reply-to on one side, the default exchange on the other.
func requestReply(t *testing.T, b broker) {
	ctx := t.Context()
	logger := slog.New(slog.DiscardHandler)
	topology := events.Topology(events.DefaultSMSRegions)
	connect := func(user string) *messaging.Broker {
		br, err := messaging.Connect(ctx, messaging.Config{URL: b.serviceURL(user), ConnectTimeout: 10 * time.Second}, topology, logger)
		if err != nil {
			t.Fatalf("connect as %s: %v", user, err)
		}
		t.Cleanup(func() { br.Close() })
		return br
	}
	order, inventory := connect("order"), connect("inventory")
	if err := inventory.Declare([]string{events.QueueStockQuery}, nil); err != nil {
		t.Fatal(err)
	}

	deliveries, err := channel(t, dial(t, b.serviceURL("inventory"))).Consume(events.QueueStockQuery, "", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	replier := inventory.NewReplier()
	go func() {
		for d := range deliveries {
			req, _ := messaging.Marshaler{}.Unmarshal(d)
			_ = replier.Reply(ctx, req, message.NewMessage("reply", []byte(`{"available":7}`)))
		}
	}()

	requester := order.NewRequester()
	defer requester.Close()
	reqCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	reply, err := requester.Request(reqCtx, events.ExchangeRPC, events.RoutingKeyStockQuery, testMessage())
	if err != nil {
		t.Fatalf("request as order: %v", err)
	}
	if string(reply.Payload) != `{"available":7}` {
		t.Fatalf("reply payload = %s", reply.Payload)
	}
}

func testMessage() *message.Message {
	return message.NewMessage(fmt.Sprint(time.Now().UnixNano()), []byte(`{}`))
}

func consume(queue string) func(*amqp.Channel) error {
	return func(ch *amqp.Channel) error {
		_, err := ch.Consume(queue, "", false, false, false, false, nil)
		return err
	}
}

func publish(exchange, key string) func(*amqp.Channel) error {
	return func(ch *amqp.Channel) error {
		return ch.PublishWithContext(context.Background(), exchange, key, false, false, amqp.Publishing{Body: []byte(`{}`)})
	}
}

func deleteQueue(queue string) func(*amqp.Channel) error {
	return func(ch *amqp.Channel) error {
		_, err := ch.QueueDelete(queue, false, false, false)
		return err
	}
}

func purgeQueue(queue string) func(*amqp.Channel) error {
	return func(ch *amqp.Channel) error {
		_, err := ch.QueuePurge(queue, false)
		return err
	}
}

func declareQueue(queue string) func(*amqp.Channel) error {
	return func(ch *amqp.Channel) error {
		_, err := ch.QueueDeclare(queue, true, false, false, false, nil)
		return err
	}
}

func deleteExchange(exchange string) func(*amqp.Channel) error {
	return func(ch *amqp.Channel) error { return ch.ExchangeDelete(exchange, false, false) }
}

// expectRefused runs op on a fresh channel as the given user and requires the broker to
// refuse it: synchronously (consume, delete) or by closing the channel (publish).
func expectRefused(t *testing.T, amqpURL string, op func(*amqp.Channel) error) {
	t.Helper()
	expectClosed(t, amqpURL, amqp.AccessRefused, op)
}

// expectClosed runs op as expectRefused does and requires the broker to refuse it with code.
func expectClosed(t *testing.T, amqpURL string, code int, op func(*amqp.Channel) error) {
	t.Helper()
	ch := channel(t, dial(t, amqpURL))
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	err := op(ch)
	if err == nil {
		select {
		case e := <-closed:
			if e != nil {
				err = e
			}
		case <-time.After(10 * time.Second):
		}
	}
	var amqpErr *amqp.Error
	if !errors.As(err, &amqpErr) || amqpErr.Code != code {
		t.Fatalf("got %v, want the channel closed with code %d", err, code)
	}
}

func dial(t *testing.T, amqpURL string) *amqp.Connection {
	t.Helper()
	conn, err := amqp.Dial(amqpURL)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func channel(t *testing.T, conn *amqp.Connection) *amqp.Channel {
	t.Helper()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("channel: %v", err)
	}
	return ch
}
