package events

import "github.com/warrenhq/warren/shared/messaging"

// Queue names: one work queue per consuming service, each with a "<name>.dlq".
const (
	QueueInventory  = "order.events.inventory"
	QueueEmail      = "order.events.email"
	QueueSMS        = "order.events.sms"
	QueueAnalytics  = "order.events.analytics"
	QueueOrder      = "inventory.events.order"
	QueueStockQuery = "inventory.stock-queries"
)

// Topology is Warren's whole broker topology. deploy/rabbitmq/definitions.json is generated
// from it (a test keeps the two equal), and each service declares its part at start-up.
//
// smsRegions are the regions whose confirmations the sms service is bound to. sms texts
// confirmations only, so its queue is bound to nothing else: up to this version it was also
// bound to the order.events fanout, and every OrderPlaced (and OrderCancelled) was a
// delivery sms acknowledged without doing anything. That binding is Retired, so declaring
// the queue removes it from a broker upgraded in place.
func Topology(smsRegions []Region) messaging.Topology {
	fanout := messaging.Binding{Exchange: ExchangeOrderEvents}
	topic := func(key string) messaging.Binding {
		return messaging.Binding{Exchange: ExchangeTopic, Key: key}
	}
	var sms []messaging.Binding
	for _, r := range smsRegions {
		sms = append(sms, topic(OrderConfirmedKey(r)))
	}
	return messaging.Topology{
		Exchanges: []messaging.Exchange{
			{Name: ExchangeOrderEvents, Kind: messaging.KindFanout},
			{Name: ExchangeTopic, Kind: messaging.KindTopic},
			{Name: ExchangeRPC, Kind: messaging.KindDirect},
		},
		Queues: []messaging.Queue{
			{Name: QueueInventory, Bindings: []messaging.Binding{fanout}},
			{Name: QueueEmail, Bindings: []messaging.Binding{fanout, topic("order.*.confirmed"), topic("order.*.rejected")}},
			{Name: QueueSMS, Bindings: sms, Retired: []messaging.Binding{fanout}},
			{Name: QueueAnalytics, Bindings: []messaging.Binding{fanout, topic("#")}},
			{Name: QueueOrder, Bindings: []messaging.Binding{topic("inventory.*.reserved"), topic("inventory.*.out_of_stock")}},
			{Name: QueueStockQuery, Bindings: []messaging.Binding{{Exchange: ExchangeRPC, Key: RoutingKeyStockQuery}}},
		},
	}
}

// DefaultSMSRegions are the regions sms texts by default.
var DefaultSMSRegions = []Region{RegionEurope, RegionAmericas}
