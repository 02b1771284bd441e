package messaging_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/messaging"
	"github.com/warrenhq/warren/shared/testkit"
)

// A publisher that makes up a new type header for every message (or one that is not even
// UTF-8) must not add a time series per message: every such type is counted as "unknown",
// and the known one under its own name.
func TestMetricLabelsStayBoundedWhateverTypeHeadersArrive(t *testing.T) {
	const (
		queue  = events.QueueAnalytics
		forged = 40
		known  = 3
	)
	e := newEnv(t)
	reg := prometheus.NewRegistry()
	router, err := e.broker.NewRouter(messaging.RouterConfig{
		Logger:       e.logger,
		Metrics:      messaging.NewMetrics(reg, events.Types...),
		CloseTimeout: 10 * time.Second,
	}, messaging.Consumer{Queue: queue, Handler: messaging.Dispatcher{
		events.TypeOrderPlaced: func(*message.Message) error { return nil },
	}.Handle})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = router.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	<-router.Running()

	publish := func(id, typ string) {
		e.publishRaw(events.ExchangeOrderEvents, "", amqp.Publishing{MessageId: id, Type: typ, Body: []byte(`{}`)})
	}
	for i := range forged {
		publish(fmt.Sprintf("forged-%d", i), fmt.Sprintf("forged.type.%d", i))
	}
	publish("not-utf8", "order.\xff\xfe.v1")
	for i := range known {
		publish(fmt.Sprintf("known-%d", i), events.TypeOrderPlaced)
	}

	unknownTypes := forged + 1
	testkit.Eventually(t, 30*time.Second, func() string {
		dead := counterValue(t, reg, "warren_messages_dead_lettered_total", queue, messaging.UnknownType)
		ok := counterValue(t, reg, "warren_messages_processed_total", queue, events.TypeOrderPlaced)
		if dead != float64(unknownTypes) || ok != known {
			return fmt.Sprintf("dead-lettered as unknown %v (want %d), processed %v (want %d)", dead, unknownTypes, ok, known)
		}
		return ""
	})
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "type" && l.GetValue() != events.TypeOrderPlaced && l.GetValue() != messaging.UnknownType {
					t.Errorf("%s has a series for type %q, a value taken from a message", f.GetName(), l.GetValue())
				}
			}
		}
	}
}

// counterValue reads a counter's value for one queue and type from reg; 0 when it has none.
func counterValue(t *testing.T, reg *prometheus.Registry, name, queue, typ string) float64 {
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
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["queue"] == queue && labels["type"] == typ {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
