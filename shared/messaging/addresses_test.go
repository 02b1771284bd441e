package messaging_test

import (
	"context"
	"log/slog"
	"net/url"
	"testing"
	"time"

	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/messaging"
	"github.com/warrenhq/warren/shared/testkit"
)

// With the node of its URL down, a broker listing every node's address connects to the one
// that is up; when that one goes down in turn and the first is back, it reconnects there.
// Two separate brokers stand for two nodes of a cluster: what counts is where the
// connection lands.
func TestConnectionTriesEveryAddressAndReconnectsToTheLiveOne(t *testing.T) {
	first, second := testkit.OwnRabbitMQ(t), testkit.OwnRabbitMQ(t)
	first.Stop(t)
	broker, err := messaging.Connect(context.Background(), messaging.Config{
		URL:            first.URL,
		Addresses:      []string{hostPort(t, first.URL), hostPort(t, second.URL)},
		ConnectTimeout: 30 * time.Second,
	}, topology, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("connect with %s down: %v", hostPort(t, first.URL), err)
	}
	t.Cleanup(func() { broker.Close() })
	publishAndReceive(t, broker, second.URL, "on-second")

	first.Start(t)
	second.Stop(t)
	publishAndReceive(t, broker, first.URL, "back-on-first")
}

// publishAndReceive publishes an OrderPlaced through broker, retrying while it reconnects,
// and waits for it in the inventory queue of the broker at nodeURL.
func publishAndReceive(t *testing.T, broker *messaging.Broker, nodeURL, orderID string) {
	t.Helper()
	ch := testkit.DeclareTopology(t, nodeURL, topology)
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := broker.Publisher().Publish(messaging.Topic(events.ExchangeOrderEvents, ""), placed(t, orderID, "carrot-seeds"))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("publish %s: still failing after 60 s: %v", orderID, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if d := testkit.Get(t, ch, events.QueueInventory, 20*time.Second); d.CorrelationId != orderID {
		t.Errorf("%s's inventory queue holds %q, want %q", nodeURL, d.CorrelationId, orderID)
	}
}

func hostPort(t *testing.T, amqpURL string) string {
	t.Helper()
	u, err := url.Parse(amqpURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}
