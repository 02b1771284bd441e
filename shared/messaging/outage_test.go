package messaging_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/messaging"
	"github.com/warrenhq/warren/shared/testkit"
)

// outageHandler fails every message with a "database down" error while down is set, and
// records every call and every success by message id.
type outageHandler struct {
	down atomic.Bool

	mu              sync.Mutex
	calledWhileDown map[string]int
	succeeded       map[string]int
}

var errConnRefused = errors.New("dial tcp 127.0.0.1:5432: connect: connection refused")

func newOutageHandler() *outageHandler {
	h := &outageHandler{calledWhileDown: map[string]int{}, succeeded: map[string]int{}}
	h.down.Store(true)
	return h
}

func (h *outageHandler) handle(msg *message.Message) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.down.Load() {
		h.calledWhileDown[msg.UUID]++
		return fmt.Errorf("store %s: %w", msg.UUID, errConnRefused)
	}
	h.succeeded[msg.UUID]++
	return nil
}

func (h *outageHandler) snapshot() (calledWhileDown, succeeded map[string]int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	calledWhileDown, succeeded = map[string]int{}, map[string]int{}
	for id, n := range h.calledWhileDown {
		calledWhileDown[id] = n
	}
	for id, n := range h.succeeded {
		succeeded[id] = n
	}
	return calledWhileDown, succeeded
}

// gaugeValue reads a gauge's value for one queue from reg; -1 when it has none.
func gaugeValue(t *testing.T, reg *prometheus.Registry, name, queue string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "queue" && l.GetValue() == queue {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return -1
}

// startOutageRouter runs a router for queue with a handler that fails as a down database
// does, quick retries (the window that dead-lettered messages before), and metrics.
func startOutageRouter(t *testing.T, e *env, queue string, concurrency int, h *outageHandler) (*prometheus.Registry, func()) {
	t.Helper()
	reg := prometheus.NewRegistry()
	router, err := e.broker.NewRouter(messaging.RouterConfig{
		Logger:  e.logger,
		Metrics: messaging.NewMetrics(reg, events.Types...),
		Retry:   messaging.RetryConfig{MaxRetries: 2, InitialInterval: 10 * time.Millisecond, MaxInterval: 50 * time.Millisecond},
		Dependencies: []messaging.Dependency{
			{Name: "postgres", Unavailable: func(err error) bool { return errors.Is(err, errConnRefused) }},
		},
		CloseTimeout: 10 * time.Second,
	}, messaging.Consumer{Queue: queue, Handler: h.handle, Concurrency: concurrency})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = router.Run(ctx) }()
	stop := sync.OnceFunc(func() { cancel(); <-done })
	t.Cleanup(stop)
	select {
	case <-router.Running():
	case <-time.After(30 * time.Second):
		t.Fatal("router did not start")
	}
	return reg, stop
}

func publishOrders(t *testing.T, e *env, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		e.publish(messaging.Topic(events.ExchangeOrderEvents, ""), placed(t, fmt.Sprintf("o-%d", i), "carrot-seeds"))
	}
}

// A dependency down for far longer than any retry window (Retry's attempts here take well
// under a second): the consumer pauses at the first message that finds it down instead of
// failing message after message, hands out nothing more although it has free handler
// slots, says so in readiness and warren_consumer_paused, and once the dependency answers
// handles every message exactly once, none dead-lettered.
func TestDependencyOutagePausesTheConsumerAndNothingIsDeadLettered(t *testing.T) {
	const (
		queue       = events.QueueInventory
		orders      = 20
		concurrency = 4
		outage      = 20 * time.Second
	)
	e := newEnv(t)
	h := newOutageHandler()
	reg, _ := startOutageRouter(t, e, queue, concurrency, h)
	publishOrders(t, e, 0, 1) // the first finds the database down
	testkit.Eventually(t, 10*time.Second, func() string {
		if v := gaugeValue(t, reg, "warren_consumer_paused", queue); v != 1 {
			return fmt.Sprintf("warren_consumer_paused{queue=%q} = %v, want 1", queue, v)
		}
		return ""
	})
	err := e.broker.Check(context.Background())
	if err == nil || !strings.Contains(err.Error(), queue) || !strings.Contains(err.Error(), "postgres") {
		t.Errorf("readiness while paused: %v; want a failure naming %s and postgres", err, queue)
	}
	publishOrders(t, e, 1, orders) // the rest arrive during the outage

	time.Sleep(outage)
	calledWhileDown, _ := h.snapshot()
	if len(calledWhileDown) != 1 {
		t.Errorf("%d different messages handed out during the outage, want only the held one: %v",
			len(calledWhileDown), calledWhileDown)
	}
	calls := 0
	for _, n := range calledWhileDown {
		calls += n
	}
	// Probes back off to one every 5 s: a few dozen calls at most, not a spin.
	if calls < 2 || calls > 15 {
		t.Errorf("%d handler calls during a %s outage; want a few probes of the held messages", calls, outage)
	}
	if n := e.depth(messaging.DeadLetterQueueName(queue)); n != 0 {
		t.Fatalf("%d messages dead-lettered during the outage, want none", n)
	}

	h.down.Store(false)
	testkit.Eventually(t, 20*time.Second, func() string {
		if _, succeeded := h.snapshot(); len(succeeded) != orders {
			return fmt.Sprintf("%d of %d messages handled after the outage", len(succeeded), orders)
		}
		return ""
	})
	testkit.Eventually(t, 10*time.Second, func() string {
		if n := e.depth(queue); n != 0 {
			return fmt.Sprintf("%d messages still in %s", n, queue)
		}
		return ""
	})
	_, succeeded := h.snapshot()
	for id, n := range succeeded {
		if n != 1 {
			t.Errorf("message %s handled %d times after the outage, want once", id, n)
		}
	}
	if n := e.depth(messaging.DeadLetterQueueName(queue)); n != 0 {
		t.Errorf("%d messages dead-lettered, want none", n)
	}
	if v := gaugeValue(t, reg, "warren_consumer_paused", queue); v != 0 {
		t.Errorf("warren_consumer_paused = %v after recovery, want 0", v)
	}
	if err := e.broker.Check(context.Background()); err != nil {
		t.Errorf("readiness after recovery: %v", err)
	}
}

// Shutting down while paused returns every message to the queue at once: the held ones do
// not wait for the outage to end.
func TestShutdownWhilePausedReturnsEveryMessage(t *testing.T) {
	const (
		queue  = events.QueueInventory
		orders = 10
	)
	e := newEnv(t)
	h := newOutageHandler()
	reg, stop := startOutageRouter(t, e, queue, 2, h)
	publishOrders(t, e, 0, orders)
	testkit.Eventually(t, 10*time.Second, func() string {
		if v := gaugeValue(t, reg, "warren_consumer_paused", queue); v != 1 {
			return fmt.Sprintf("warren_consumer_paused = %v, want 1", v)
		}
		return ""
	})

	start := time.Now()
	stop()
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("shutdown while paused took %s, want it prompt", took)
	}
	testkit.Eventually(t, 10*time.Second, func() string {
		if n := e.depth(queue); n != orders {
			return fmt.Sprintf("%d of %d messages back in %s", n, orders, queue)
		}
		return ""
	})
	if n := e.depth(messaging.DeadLetterQueueName(queue)); n != 0 {
		t.Errorf("%d messages dead-lettered, want none", n)
	}
}
