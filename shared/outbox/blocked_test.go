package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/messaging"
	"github.com/warrenhq/warren/shared/outbox"
	"github.com/warrenhq/warren/shared/testkit"
)

// While a memory alarm makes the broker block publishing, the relay keeps every stored
// event (it deletes only what the broker confirmed, and the broker confirms nothing), and
// once the alarm clears it publishes each of them exactly once.
func TestRelayWaitsOutABlockedBroker(t *testing.T) {
	rabbit := testkit.OwnRabbitMQ(t)
	e := newEnv(t, rabbit.URL)
	ctx := context.Background()
	// A short batch timeout, so that the publish the alarm holds up gives up during the
	// test and the relay goes on trying (failing fast) while the broker blocks it.
	e.start(t, outbox.Config{BatchTimeout: 2 * time.Second})
	e.store(ctx, t, true, "before")
	e.receive(t, 1, 20*time.Second)

	rabbit.Exec(t, "rabbitmqctl", "set_vm_memory_high_watermark", "absolute", "1")
	// The broker blocks a connection when it publishes during the alarm: this event's
	// publish does that. The broker took it, so it may go out twice (see Relay).
	e.store(ctx, t, true, "trigger")
	deadline := time.Now().Add(30 * time.Second)
	for !errors.Is(e.broker.Check(ctx), messaging.ErrBlocked) {
		if time.Now().After(deadline) {
			t.Fatalf("readiness 30 s into the alarm: %v, want the block reported", e.broker.Check(ctx))
		}
		time.Sleep(50 * time.Millisecond)
	}
	var blocked []string
	for i := range 20 {
		batch := seq(fmt.Sprintf("blocked-%d-", i), 0, 5)
		e.store(ctx, t, true, batch...)
		blocked = append(blocked, batch...)
	}
	time.Sleep(5 * time.Second) // the relay tries, and must delete nothing
	var waiting int
	if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM outbox_messages`).Scan(&waiting); err != nil {
		t.Fatal(err)
	}
	if waiting < len(blocked) {
		t.Errorf("%d events in the outbox during the alarm, want at least the %d stored while blocked", waiting, len(blocked))
	}

	rabbit.Exec(t, "rabbitmqctl", "set_vm_memory_high_watermark", "0.4")
	e.store(ctx, t, true, "sentinel")
	got := map[string]int{}
	for got["sentinel"] == 0 {
		got[testkit.Get(t, e.ch, events.QueueInventory, 60*time.Second).CorrelationId]++
	}
	for _, label := range blocked {
		if got[label] != 1 {
			t.Errorf("%s published %d times, want once", label, got[label])
		}
	}
	if got["trigger"] == 0 {
		t.Error("the event whose publish met the alarm was never published")
	}
}
