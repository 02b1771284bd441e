package deadletters

import (
	"errors"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/messaging"
)

const traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

// consumerDeadLetter is what the DeadLetter middleware puts in order.events.email.dlq.
func consumerDeadLetter() amqp.Delivery {
	return amqp.Delivery{
		Exchange: messaging.DeadLetterExchangeName("order.events.email"), RoutingKey: "order.events.email",
		MessageId: "m-1", Type: "order.placed.v1", CorrelationId: "o-1", UserId: "order",
		DeliveryMode: amqp.Persistent, ContentType: "application/json", Body: []byte(`{"order_id":"o-1"}`),
		Headers: amqp.Table{
			messaging.HeaderDeadLetterReason: "permanent: decode: unexpected EOF",
			messaging.HeaderDeadLetterQueue:  "order.events.email",
			messaging.HeaderDeadLetterAt:     "2025-03-01T10:00:00.5Z",
			messaging.HeaderDeadLetterTries:  "1",
			messaging.HeaderExchange:         "order.events",
			messaging.HeaderRoutingKey:       "",
			messaging.HeaderRedelivered:      "true",
			"traceparent":                    traceparent,
			"tracestate":                     "vendor=1",
			"occurred_at":                    "2025-03-01T09:59:59Z",
			"x-delivery-count":               int64(2),
		},
	}
}

// brokerDeadLetter is a message the broker dead-lettered from inventory.events.order (a
// reject without requeue), then expired from its .dlq into the archive.
func brokerDeadLetter(archived bool) amqp.Delivery {
	at := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	rejected := amqp.Table{"queue": "inventory.events.order", "reason": "rejected", "count": int64(1),
		"exchange": "events.topic", "routing-keys": []any{"inventory.europe.reserved"}, "time": at}
	d := amqp.Delivery{
		Exchange: messaging.DeadLetterExchangeName("inventory.events.order"), RoutingKey: "inventory.events.order",
		MessageId: "m-2", Headers: amqp.Table{
			"x-death":                []any{rejected},
			"x-first-death-queue":    "inventory.events.order",
			"x-first-death-reason":   "rejected",
			"x-first-death-exchange": "events.topic",
			"traceparent":            traceparent,
		},
	}
	if archived {
		expired := amqp.Table{"queue": "inventory.events.order.dlq", "reason": "expired", "count": int64(1),
			"exchange": messaging.DeadLetterExchangeName("inventory.events.order"), "routing-keys": []any{"inventory.events.order"}, "time": at.Add(time.Hour)}
		d.Exchange = messaging.ArchiveExchange
		d.Headers["x-death"] = []any{expired, rejected}
		d.Headers["x-last-death-queue"] = "inventory.events.order.dlq"
	}
	return d
}

func TestDescribeConsumerDeadLetter(t *testing.T) {
	m := Describe(consumerDeadLetter())
	if m.DeadLetteredBy != ByConsumer || m.Reason != "permanent: decode: unexpected EOF" || m.Attempts != 1 {
		t.Errorf("by %q reason %q attempts %d", m.DeadLetteredBy, m.Reason, m.Attempts)
	}
	if m.Queue != "order.events.email" || m.Original == nil || *m.Original != (Destination{"order.events", ""}) {
		t.Errorf("queue %q original %+v", m.Queue, m.Original)
	}
	if m.TraceID != "0af7651916cd43dd8448eb211c80319c" || !m.DeadLetteredAt.Equal(time.Date(2025, 3, 1, 10, 0, 0, 5e8, time.UTC)) {
		t.Errorf("trace %q at %v", m.TraceID, m.DeadLetteredAt)
	}
}

func TestDescribeBrokerDeadLetterFromItsFirstDeath(t *testing.T) {
	for _, archived := range []bool{false, true} {
		m := Describe(brokerDeadLetter(archived))
		if m.DeadLetteredBy != ByBroker || m.Reason != "rejected in inventory.events.order (x-death count 1)" {
			t.Errorf("archived=%v: by %q reason %q", archived, m.DeadLetteredBy, m.Reason)
		}
		if m.Queue != "inventory.events.order" || m.Original == nil ||
			*m.Original != (Destination{"events.topic", "inventory.europe.reserved"}) {
			t.Errorf("archived=%v: queue %q original %+v", archived, m.Queue, m.Original)
		}
		if m.DeadLetteredAt.IsZero() || len(m.Deaths) != map[bool]int{false: 1, true: 2}[archived] {
			t.Errorf("archived=%v: at %v deaths %+v", archived, m.DeadLetteredAt, m.Deaths)
		}
	}
}

func TestDescribeUnroutableAndUnknown(t *testing.T) {
	m := Describe(amqp.Delivery{Exchange: "rpc", RoutingKey: "nobody.listens", MessageId: "m-3"})
	if m.DeadLetteredBy != ByNobody || m.Queue != "" || m.Original == nil || *m.Original != (Destination{"rpc", "nobody.listens"}) {
		t.Errorf("unroutable: %+v", m)
	}
	origins, err := NewOrigins(events.Topology(events.Regions))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := origins.Verify(messaging.UnroutableQueue, amqp.Delivery{Exchange: "rpc", RoutingKey: "nobody.listens"}, ToQueue); !errors.Is(err, ErrNotReplayable) {
		t.Errorf("unroutable --to queue: %v, want not replayable", err)
	}

	// Published straight to a .dlx: the routing key still names the source queue, but
	// nothing says where it was first published.
	d := amqp.Delivery{Exchange: messaging.DeadLetterExchangeName("order.events.sms"), RoutingKey: "order.events.sms", MessageId: "m-4", UserId: "sms"}
	m = Describe(d)
	if m.DeadLetteredBy != ByUnknown || m.Queue != "order.events.sms" || m.Original != nil {
		t.Errorf("unknown: %+v", m)
	}
	if _, err := origins.Verify("order.events.sms.dlq", d, ToOriginal); !errors.Is(err, ErrNotReplayable) {
		t.Errorf("unknown --to original: %v, want not replayable", err)
	}
	if to, err := origins.Verify("order.events.sms.dlq", d, ToQueue); err != nil || to != (Destination{"", "order.events.sms"}) {
		t.Errorf("unknown --to queue: %v %v", to, err)
	}
	d.UserId = ""
	if _, err := origins.Verify("order.events.sms.dlq", d, ToQueue); !errors.Is(err, ErrUnverified) {
		t.Errorf("unknown with no user-id --to queue: %v, want unverified", err)
	}
}

func TestRepublishKeepsIdentityAndTraceAndDropsTheFailure(t *testing.T) {
	d := consumerDeadLetter()
	now := time.Date(2025, 3, 2, 0, 0, 0, 0, time.UTC)
	p := republish(d, now)
	if p.MessageId != "m-1" || p.Type != d.Type || p.CorrelationId != "o-1" || p.DeliveryMode != amqp.Persistent ||
		p.ContentType != "application/json" || string(p.Body) != string(d.Body) {
		t.Errorf("properties changed: %+v", p)
	}
	if p.UserId != "" {
		t.Errorf("user-id %q kept: the broker refuses another user's id", p.UserId)
	}
	for _, h := range replayStripped {
		if _, ok := p.Headers[h]; ok {
			t.Errorf("header %s kept", h)
		}
	}
	for h, want := range map[string]string{"traceparent": traceparent, "tracestate": "vendor=1",
		"occurred_at": "2025-03-01T09:59:59Z", HeaderReplayCount: "1", HeaderReplayedAt: "2025-03-02T00:00:00Z"} {
		if p.Headers[h] != want {
			t.Errorf("header %s = %v, want %s", h, p.Headers[h], want)
		}
	}
	if _, ok := d.Headers[messaging.HeaderDeadLetterReason]; !ok {
		t.Error("republish changed the delivery's headers")
	}

	d.Headers = p.Headers // replayed, failed again, dead-lettered again
	if got := republish(d, now).Headers[HeaderReplayCount]; got != "2" {
		t.Errorf("second replay count %v, want 2", got)
	}
}

func TestTraceIDIgnoresWhatIsNotATraceparent(t *testing.T) {
	for _, tp := range []string{"", "garbage", "00-00000000000000000000000000000000-b7ad6b7169203331-01", "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01"} {
		if id := traceID(tp); id != "" {
			t.Errorf("traceID(%q) = %q", tp, id)
		}
	}
}
