package chaos

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/warrenhq/warren/shared/events"
)

// One consumer stays away while the rest of the load is placed: analytics is stopped, its
// queue behind the order.events fanout and the topic exchange grows, and nothing else may
// notice. Every other order is confirmed, mailed and texted as usual, and the publishes
// into the fanout are never refused (a work queue has no length limit, see
// shared/messaging's "Queue limits"), so no other queue receives a message twice. Once
// analytics is back it works through its backlog, and the reconciliation checks its totals
// exactly, every event counted once.
func TestConsumerAwayBacklogBehindTheFanout(t *testing.T) {
	sc := newScenario(t, "consumer-away-backlog")
	sc.startLoad()
	sc.fault("analytics stopped until the rest of the load is placed and settled, then started", func(ctx context.Context) error {
		if err := sc.sys.StopContainer(ctx, "analytics", 10*time.Second); err != nil {
			return err
		}
		sc.run.WaitStarted(ctx, sc.load.Orders)
		// The other consumers keep up meanwhile: their queues drain while analytics' grows.
		if err := poll(ctx, sc.load.Deadline, func() error {
			queues, err := sc.broker.Queues(ctx)
			if err != nil {
				return err
			}
			for _, name := range []string{events.QueueInventory, events.QueueEmail, events.QueueSMS, events.QueueOrder} {
				if q := queues[name]; q.Ready+q.Unacked > 0 {
					return fmt.Errorf("%s still holds %d+%d while analytics is away", name, q.Ready, q.Unacked)
				}
			}
			if q := queues[events.QueueAnalytics]; q.Ready < sc.load.Orders {
				return fmt.Errorf("analytics' queue holds %d, want at least one message per order (%d)", q.Ready, sc.load.Orders)
			}
			return nil
		}); err != nil {
			return err
		}
		t.Logf("analytics away, the others drained: %s", sc.backlog())
		if err := sc.sys.StartContainer(ctx, "analytics"); err != nil {
			return err
		}
		return sc.waitReady(ctx, "analytics")
	})
	sc.finish()
}
