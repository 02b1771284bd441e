package messaging

import (
	"errors"
	"fmt"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	amqp "github.com/rabbitmq/amqp091-go"
)

func TestMarshalerRoundTripKeepsPropertiesAndHeaders(t *testing.T) {
	msg := message.NewMessage("id-1", []byte(`{"a":1}`))
	msg.Metadata.Set(HeaderType, "order.placed.v1")
	msg.Metadata.Set(HeaderCorrelationID, "order-9")
	msg.Metadata.Set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")

	p, err := Marshaler{}.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	if p.MessageId != "id-1" || p.Type != "order.placed.v1" || p.CorrelationId != "order-9" ||
		p.DeliveryMode != amqp.Persistent || p.ContentType != "application/json" {
		t.Errorf("publishing properties: %+v", p)
	}
	if _, dup := p.Headers[HeaderType]; dup {
		t.Error("type travels as a property, not also as a header")
	}

	got, err := Marshaler{}.Unmarshal(amqp.Delivery{
		MessageId: p.MessageId, Type: p.Type, CorrelationId: p.CorrelationId, Headers: p.Headers,
		Body: p.Body, Exchange: "order.events", RoutingKey: "", Redelivered: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		HeaderType: "order.placed.v1", HeaderCorrelationID: "order-9", HeaderExchange: "order.events",
		HeaderRedelivered: "true", "traceparent": msg.Metadata.Get("traceparent"),
	} {
		if got.Metadata.Get(k) != want {
			t.Errorf("metadata %s = %q, want %q", k, got.Metadata.Get(k), want)
		}
	}
	if got.UUID != "id-1" || string(got.Payload) != `{"a":1}` {
		t.Errorf("got %s %s", got.UUID, got.Payload)
	}
}

func TestUnmarshalNeverFailsOnBrokerHeaders(t *testing.T) {
	d := amqp.Delivery{MessageId: "m", Headers: amqp.Table{
		"x-death":          []any{amqp.Table{"count": int64(2), "reason": "rejected"}},
		"x-delivery-count": int64(4),
		"flag":             true,
		"raw":              []byte("bytes"),
	}}
	msg, err := Marshaler{}.Unmarshal(d)
	if err != nil {
		t.Fatalf("unmarshal failed: %v", err)
	}
	for k, want := range map[string]string{
		"x-death": `[{"count":2,"reason":"rejected"}]`, "x-delivery-count": "4", "flag": "true", "raw": "bytes",
	} {
		if got := msg.Metadata.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
}

func TestTopicSplitsIntoExchangeAndRoutingKey(t *testing.T) {
	for _, tc := range []struct{ topic, exchange, key string }{
		{Topic("events.topic", "order.europe.confirmed"), "events.topic", "order.europe.confirmed"},
		{Topic("order.events", ""), "order.events", ""},
		{Topic("", "some-queue"), "", "some-queue"},
		{"bare-exchange", "bare-exchange", ""},
	} {
		if e, k := SplitTopic(tc.topic); e != tc.exchange || k != tc.key {
			t.Errorf("SplitTopic(%q) = %q, %q", tc.topic, e, k)
		}
	}
}

func TestPermanentErrorsAreRecognisedThroughWrapping(t *testing.T) {
	base := errors.New("bad payload")
	err := fmt.Errorf("handle: %w", Permanent(base))
	if !IsPermanent(err) || !errors.Is(err, base) {
		t.Errorf("IsPermanent=%v Is(base)=%v", IsPermanent(err), errors.Is(err, base))
	}
	if IsPermanent(errors.New("timeout")) || Permanent(nil) != nil {
		t.Error("plain errors must be retried; Permanent(nil) must be nil")
	}
}

func TestWorkQueuesDeadLetterAtLeastOnceAndHaveNoLengthLimit(t *testing.T) {
	args := WorkQueueArgs(Queue{Name: "q"})
	for k, want := range map[string]any{
		"x-queue-type": "quorum", "x-overflow": "reject-publish", "x-dead-letter-exchange": "q.dlx",
		"x-dead-letter-routing-key": "q", "x-dead-letter-strategy": "at-least-once",
		"x-delivery-limit": int64(DefaultDeliveryLimit),
	} {
		if args[k] != want {
			t.Errorf("%s = %v, want %v", k, args[k], want)
		}
	}
	// A limit on a queue behind a fanout nacks publishes the other queues took (see the
	// "Queue limits" comment and shared/events' TestAStoppedConsumerNeitherStopsNorFloodsTheOthers).
	for _, k := range []string{"x-max-length", "x-max-length-bytes"} {
		if v, ok := args[k]; ok {
			t.Errorf("work queue has %s = %v", k, v)
		}
	}
	dlq := DeadLetterQueueArgs()
	if _, ok := dlq["x-dead-letter-exchange"]; ok || dlq["x-overflow"] != "reject-publish" {
		t.Errorf("dead-letter queue args %v: want reject-publish, and the archive from the policy only", dlq)
	}
	var archives bool
	for _, p := range (Topology{Queues: []Queue{{Name: "q"}}}).Policies("/") {
		if p.Definition["dead-letter-exchange"] == ArchiveExchange && p.Pattern == `^(q\.dlq)$` {
			archives = p.Definition["dead-letter-strategy"] == "at-least-once"
		}
	}
	if !archives {
		t.Error("no policy archives q.dlq at least once: an expired or overflowing dead letter must not be dropped")
	}
}
