package chaos

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// The broker raises its memory alarm mid-load (its high watermark set below what it
// uses), so it blocks every connection that publishes (connection.blocked) for 20 s, then
// lowers it again. Orders are still accepted meanwhile (their events wait in the
// services' outboxes), publishes and request/reply give up within their timeouts instead
// of hanging, and everything flows once the alarm clears, nothing lost or doubled.
func TestBrokerMemoryAlarm(t *testing.T) {
	sc := newScenario(t, "rabbitmq-memory-alarm")
	sc.startLoad()
	sc.fault("rabbitmq memory alarm for 20 s", func(ctx context.Context) error {
		if _, err := sc.sys.Exec(ctx, "rabbitmq", "rabbitmqctl", "set_vm_memory_high_watermark", "absolute", "1"); err != nil {
			return err
		}
		before := sc.run.Counts().Accepted
		sleep(ctx, 20*time.Second)
		during := sc.run.Counts().Accepted - before
		// RabbitMQ 4.0's default watermark: 0.6 of the memory it sees.
		if _, err := sc.sys.Exec(ctx, "rabbitmq", "rabbitmqctl", "set_vm_memory_high_watermark", "0.6"); err != nil {
			return err
		}
		if during == 0 {
			return fmt.Errorf("no order was accepted during the alarm: the order API must keep taking orders into its outbox")
		}
		t.Logf("%d orders accepted during the alarm", during)
		return sc.waitReady(ctx, allServices...)
	})
	sc.finish()
}
