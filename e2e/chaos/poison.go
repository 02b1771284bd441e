package chaos

import (
	"encoding/json"
	"fmt"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenhq/warren/shared/events"
)

// FailingSKU is a SKU no store can keep: PostgreSQL text cannot hold a NUL byte. The event
// contract rejects it (events.ValidSKU), so inventory dead-letters such an OrderPlaced at
// once, without retrying. (Before that check, the database's refusal was retried as if it
// were transient — found by this suite.) The order service never lets such a SKU in, so
// the test publishes the OrderPlaced straight to inventory's queue.
const FailingSKU = "poison\x00sku"

// Poison is a message no consumer can handle, published straight to a work queue.
type Poison struct {
	Queue string
	// Reason is a part of the dead-letter reason it must be given.
	Reason string
	// Attempts is how many handler attempts it must have had ("" when not checked).
	Attempts string
	Msg      amqp.Publishing
}

// FailSKUSetting is inventory's fault-injection setting (INVENTORY_FAIL_SKUS): an order
// holding one of its SKUs fails as if the warehouse system were down, is retried, then
// dead-lettered. Images from before it ignore it; poisonMaker leaves that kind out then.
const FailSKUSetting = "INVENTORY_FAIL_SKUS"

// InjectedFailSKU is the SKU the poison scenario gives inventory in FailSKUSetting.
const InjectedFailSKU = "chaos-failing-sku"

// poisonMaker makes the poison messages of a run, a kind at a time in turn: malformed
// JSON for three queues, an unknown event type for two, an OrderPlaced naming FailingSKU
// and, when inventory has FailSKUSetting, one naming InjectedFailSKU.
type poisonMaker struct {
	runID    string
	failSKUs bool
}

func (m poisonMaker) kinds() int {
	if m.failSKUs {
		return 7
	}
	return 6
}

// make returns the n-th poison message.
func (m poisonMaker) make(n int) Poison {
	id := fmt.Sprintf("poison-%s-%d", m.runID, n)
	msg := func(typ, body string) amqp.Publishing {
		return amqp.Publishing{MessageId: id, Type: typ, ContentType: "application/json",
			DeliveryMode: amqp.Persistent, Body: []byte(body)}
	}
	placed := func(sku string) string {
		body, _ := json.Marshal(events.OrderPlaced{
			OrderID: id, Region: events.RegionEurope, Customer: events.Customer{Name: "Poison", Email: "poison@chaos.example"},
			Items: []events.Item{{SKU: sku, Quantity: 1, UnitPriceCents: 100}}, TotalCents: 100,
		})
		return string(body)
	}
	const broken = `{"order_id": "poison", "items": [{"sku": "carrot-`
	switch n % m.kinds() {
	case 0:
		return Poison{Queue: events.QueueEmail, Reason: "decode", Attempts: "1", Msg: msg(events.TypeOrderPlaced, broken)}
	case 1:
		return Poison{Queue: events.QueueOrder, Reason: "decode", Attempts: "1", Msg: msg(events.TypeStockReserved, broken)}
	case 2:
		return Poison{Queue: events.QueueSMS, Reason: "decode", Attempts: "1", Msg: msg(events.TypeOrderConfirmed, broken)}
	case 3:
		return Poison{Queue: events.QueueAnalytics, Reason: "unknown message type", Attempts: "1", Msg: msg("order.teleported.v1", `{}`)}
	case 4:
		return Poison{Queue: events.QueueInventory, Reason: "unknown message type", Attempts: "1", Msg: msg("order.teleported.v1", `{}`)}
	case 5:
		return Poison{Queue: events.QueueInventory, Reason: "items[0].sku: must be", Attempts: "1", Msg: msg(events.TypeOrderPlaced, placed(FailingSKU))}
	default:
		// 1 attempt + 3 retries (messaging.RetryConfig's default), then dead-lettered.
		return Poison{Queue: events.QueueInventory, Reason: "warehouse system unavailable", Attempts: "4", Msg: msg(events.TypeOrderPlaced, placed(InjectedFailSKU))}
	}
}
