package events

// Exchange names. The topology that binds queues to them lives in the messaging package
// (see messaging.WarrenTopology) and in deploy/rabbitmq/definitions.json.
const (
	// ExchangeOrderEvents is the fanout every interested service gets a copy of
	// OrderPlaced and OrderCancelled from.
	ExchangeOrderEvents = "order.events"
	// ExchangeTopic carries region-routed outcomes: inventory.<region>.<outcome> and
	// order.<region>.<outcome>.
	ExchangeTopic = "events.topic"
	// ExchangeRPC is the direct exchange request/reply queries are sent to.
	ExchangeRPC = "rpc"
)

// Routing keys of the RPC exchange.
const (
	RoutingKeyStockQuery = "inventory.stock"
)

// InventoryReservedKey is the topic routing key of a StockReserved event.
func InventoryReservedKey(r Region) string { return "inventory." + string(r) + ".reserved" }

// InventoryOutOfStockKey is the topic routing key of a StockOutOfStock event.
func InventoryOutOfStockKey(r Region) string { return "inventory." + string(r) + ".out_of_stock" }

// InventoryReleasedKey is the topic routing key of a StockReleased event.
func InventoryReleasedKey(r Region) string { return "inventory." + string(r) + ".released" }

// OrderConfirmedKey is the topic routing key of an OrderConfirmed event.
func OrderConfirmedKey(r Region) string { return "order." + string(r) + ".confirmed" }

// OrderRejectedKey is the topic routing key of an OrderRejected event.
func OrderRejectedKey(r Region) string { return "order." + string(r) + ".rejected" }
