package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenhq/warren/e2e"
	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/messaging"
)

// CrashSKUSetting is inventory's crash injection (INVENTORY_CRASH_SKUS): the process exits
// while it handles an order holding one of these SKUs.
const CrashSKUSetting = "INVENTORY_CRASH_SKUS"

// injectedCrashSKU is the SKU the crash-loop scenario gives inventory in CrashSKUSetting,
// and inventoryCrashExit the status it then exits with (stock.CrashExitCode).
const (
	injectedCrashSKU   = "chaos-crash-sku"
	inventoryCrashExit = 70
)

// One message kills its consumer every time: an OrderPlaced that makes inventory exit on
// the spot while the load flows. The scenario restarts inventory whenever it exits, as a
// restart policy would, until the broker's delivery limit dead-letters that message. Each
// crash returns everything inventory held unacknowledged to the queue and counts a
// delivery against each of those messages; a restarted consumer takes one message at a
// time until it has handled one never delivered before, so the poison is retried alone and
// dead-lettered alone: every other order is reserved, confirmed and mailed as usual.
func TestConsumerCrashLoop(t *testing.T) {
	sc := newScenario(t, "consumer-crash-loop", e2e.WithServiceEnv("inventory", map[string]string{CrashSKUSetting: injectedCrashSKU}))
	sc.startLoad()
	crashes := 0
	sc.fault("an OrderPlaced that crashes inventory every time; inventory restarted after each crash", func(ctx context.Context) error {
		id := fmt.Sprintf("poison-crash-%d", time.Now().UnixNano())
		body, err := json.Marshal(events.OrderPlaced{
			OrderID: id, Region: events.RegionEurope, Customer: events.Customer{Name: "Poison", Email: "poison@chaos.example"},
			Items: []events.Item{{SKU: injectedCrashSKU, Quantity: 1, UnitPriceCents: 100}}, TotalCents: 100,
		})
		if err != nil {
			return err
		}
		p := Poison{Queue: events.QueueInventory, Reason: "broker: delivery_limit", Msg: amqp.Publishing{
			MessageId: id, CorrelationId: id, Type: events.TypeOrderPlaced, ContentType: "application/json",
			DeliveryMode: amqp.Persistent, Body: body,
		}}
		if err := sc.broker.Publish(ctx, p.Queue, p.Msg); err != nil {
			return err
		}
		sc.poison = append(sc.poison, p)
		// The queue's delivery limit is 10: the eleventh crash dead-letters the poison.
		dlq := messaging.DeadLetterQueueName(events.QueueInventory)
		return poll(ctx, 4*time.Minute, func() error {
			exited, code, err := sc.sys.Exited(ctx, "inventory")
			if err != nil {
				return err
			}
			if exited {
				if code != inventoryCrashExit {
					return fmt.Errorf("inventory exited with %d, not the injected crash's %d", code, inventoryCrashExit)
				}
				crashes++
				if crashes > messaging.DefaultDeliveryLimit+3 {
					return fmt.Errorf("inventory crashed %d times and the poison is not dead-lettered yet", crashes)
				}
				if err := sc.sys.StartContainer(ctx, "inventory"); err != nil {
					return err
				}
				return fmt.Errorf("inventory crashed (%d so far)", crashes)
			}
			queues, err := sc.broker.Queues(ctx)
			if err != nil {
				return err
			}
			if queues[dlq].Ready == 0 {
				return fmt.Errorf("%s empty after %d crashes", dlq, crashes)
			}
			return sc.waitReady(ctx, "inventory")
		})
	})
	t.Logf("inventory crashed %d times on the poison", crashes)
	if crashes <= messaging.DefaultDeliveryLimit {
		t.Errorf("inventory crashed %d times: the broker dead-letters a message after %d deliveries; the scenario did not loop", crashes, messaging.DefaultDeliveryLimit)
	}
	sc.finish()
}
