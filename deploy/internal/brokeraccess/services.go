// Package brokeraccess gives each Warren service its own RabbitMQ user with the least
// rights that let it run: the table below says what each service does on the broker, and
// the permissions follow from it and from the topology in shared/events.
//
// Keep the table in step with the services' main.go: a service that starts declaring,
// consuming or publishing something new fails at start-up with ACCESS_REFUSED until its
// row here says so.
package brokeraccess

import (
	"slices"

	"github.com/warrenhq/warren/shared/events"
)

// Service is what one service does on the broker.
type Service struct {
	// Name is the service's name and its broker user's.
	Name string
	// Consumes are the queues the service consumes. At start-up it declares each one with
	// its "<queue>.dlx" and "<queue>.dlq", the exchanges the queue is bound to, and the
	// bindings. It is the only service that may write to the queue's "<queue>.dlx".
	Consumes []string
	// Publishes are the exchanges the service publishes to (and declares at start-up),
	// with the routing keys it uses.
	Publishes []Publication
	// Requests is true when the service sends requests and takes the replies from direct
	// reply-to (amq.rabbitmq.reply-to).
	Requests bool
	// Replies is true when the service answers requests, which goes through the default
	// exchange to the requester's reply-to address.
	Replies bool
}

// Publication is an exchange a service publishes to. On a topic exchange, the routing
// keys become a topic permission, so that a service cannot publish another's events (the
// inventory cannot confirm an order); on other exchanges they only document.
type Publication struct {
	Exchange string
	Keys     []string
}

// Services is the table: every Warren service and what it does on the broker. Every
// service also publishes dead letters to the "<queue>.dlx" of each queue it consumes,
// which needs no row.
func Services() []Service {
	return []Service{
		{
			Name:     "order",
			Consumes: []string{events.QueueOrder},
			Publishes: []Publication{
				{Exchange: events.ExchangeOrderEvents},
				{Exchange: events.ExchangeTopic, Keys: keys(events.OrderConfirmedKey, events.OrderRejectedKey)},
				{Exchange: events.ExchangeRPC, Keys: []string{events.RoutingKeyStockQuery}},
			},
			Requests: true,
		},
		{
			Name:     "inventory",
			Consumes: []string{events.QueueInventory, events.QueueStockQuery},
			Publishes: []Publication{
				{Exchange: events.ExchangeTopic, Keys: keys(events.InventoryReservedKey, events.InventoryOutOfStockKey, events.InventoryReleasedKey)},
			},
			Replies: true,
		},
		{Name: "email", Consumes: []string{events.QueueEmail}},
		{Name: "sms", Consumes: []string{events.QueueSMS}},
		{Name: "analytics", Consumes: []string{events.QueueAnalytics}},
	}
}

// keys lists the routing keys the functions make for every region.
func keys(makers ...func(events.Region) string) []string {
	var out []string
	for _, r := range events.Regions {
		for _, m := range makers {
			out = append(out, m(r))
		}
	}
	return out
}

// Names returns the names of Services, in table order.
func Names() []string {
	var out []string
	for _, s := range Services() {
		out = append(out, s.Name)
	}
	return out
}

// Owner returns the service that consumes queue: the only one that may write its dead
// letters.
func Owner(queue string) (Service, bool) {
	for _, s := range Services() {
		if slices.Contains(s.Consumes, queue) {
			return s, true
		}
	}
	return Service{}, false
}

// Lookup returns the service whose broker user is user.
func Lookup(user string) (Service, bool) {
	for _, s := range Services() {
		if s.Name == user {
			return s, true
		}
	}
	return Service{}, false
}
