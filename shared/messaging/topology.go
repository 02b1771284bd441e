package messaging

import (
	"fmt"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// The sinks every Warren broker has, whatever the services on it. Only the broker writes
// to them (through the policies in policies.go) and only an administrator declares them
// (DeclareInfrastructure, the definitions file): no service user may configure, delete,
// read or publish to any of them, so nothing in them was put there by a service's hand
// (see the README's security notes). The queues are named differently from their exchanges
// on purpose: broker permissions are granted by name.
const (
	// UnroutableExchange is the alternate exchange of every exchange Warren publishes to: a
	// message no binding matched lands in UnroutableQueue instead of being dropped.
	UnroutableExchange = "warren.unroutable"
	UnroutableQueue    = "warren.unroutable-messages"
	// ArchiveExchange receives dead letters that outlived DeadLetterRetention, so that even
	// an expired dead letter is kept (in ArchiveQueue) until an operator purges it.
	ArchiveExchange = "warren.dlq-archive"
	ArchiveQueue    = "warren.dead-letter-archive"
)

// DeadLetterExchangeName is the dead-letter exchange of one work queue, "<queue>.dlx"
// (direct): it routes a given-up message, with the queue's name as routing key, to
// "<queue>.dlq" and nowhere else, whether the consumer dead-lettered the message itself
// (with a reason) or the broker did (delivery limit, reject). One exchange per queue, not
// one shared by all, because RabbitMQ grants publishing per exchange, not per routing
// key: only the queue's own service may write to it, so no service can put a dead letter
// in another's queue.
func DeadLetterExchangeName(queue string) string { return queue + ".dlx" }

// Queue limits. Work queues have none: a work queue is fed through a fanout or a topic
// exchange, and when one of several queues a message is routed to refuses it (x-max-length
// with reject-publish), the broker nacks the publish although the other queues enqueued
// it, so the outbox's retry would enqueue it in those again, for as long as the slow
// consumer stays away; dropping the oldest instead (drop-head) would dead-letter valid work
// at most once. A consumer that falls behind therefore costs broker disk, never another
// consumer's work; RabbitMQ's disk alarm is the hard bound, and it blocks every publisher
// alike (see the README's reliability section). Dead-letter queues are fed by one route
// each, so their limit pushes back on the one consumer that dead-letters.
const (
	DefaultDeliveryLimit = 10
	DeadLetterRetention  = 7 * 24 * time.Hour
	// DeadLetterMaxLength bounds each "<queue>.dlq": the seed guide's 100,000 messages.
	DeadLetterMaxLength = 100_000
	ArchiveMaxLength    = 1_000_000
)

// ExchangeKind is an AMQP exchange type.
type ExchangeKind string

// The exchange kinds Warren uses.
const (
	KindFanout ExchangeKind = "fanout"
	KindTopic  ExchangeKind = "topic"
	KindDirect ExchangeKind = "direct"
)

// Exchange is a durable exchange. Every one of them gets UnroutableExchange as its alternate
// exchange, from a policy (see Policies).
type Exchange struct {
	Name string
	Kind ExchangeKind
}

// Binding routes messages from Exchange to a queue when the routing key matches Key
// (ignored by a fanout).
type Binding struct {
	Exchange string
	Key      string
}

// Queue is a durable quorum work queue with its own dead-letter exchange, "<Name>.dlx", and
// dead-letter queue, "<Name>.dlq".
type Queue struct {
	Name     string
	Bindings []Binding
	// Retired are bindings an earlier version of the topology declared and this one no
	// longer wants. Declaring a queue only ever adds bindings, so DeclareQueue removes these
	// after declaring the rest: a broker upgraded in place stops routing through them when
	// the consuming service starts. The definitions file leaves them out (a new broker never
	// has them). Keep an entry for as long as a broker of a release that declared it may
	// still be upgraded.
	Retired []Binding
	// DeliveryLimit overrides DefaultDeliveryLimit when set: how many times the broker
	// delivers a message that was never acked (a crashing consumer) before dead-lettering it.
	DeliveryLimit int
}

// DeadLetterQueueName is the name of the queue a work queue's rejects end up in.
func DeadLetterQueueName(queue string) string { return queue + ".dlq" }

// Topology is the declarative description of exchanges, queues and bindings. Declaring it
// is idempotent; declaring it again with different arguments fails with
// PRECONDITION_FAILED, which is why all arguments come from here and nowhere else.
type Topology struct {
	Exchanges []Exchange
	Queues    []Queue
}

// Queue returns the queue named name.
func (t Topology) Queue(name string) (Queue, bool) {
	for _, q := range t.Queues {
		if q.Name == name {
			return q, true
		}
	}
	return Queue{}, false
}

// Exchange returns the exchange named name: one of t's, a queue's dead-letter exchange, or
// an infrastructure exchange.
func (t Topology) Exchange(name string) (Exchange, bool) {
	for _, e := range append(infrastructureExchanges(), t.Exchanges...) {
		if e.Name == name {
			return e, true
		}
	}
	for _, q := range t.Queues {
		if dlx := deadLetterExchange(q); dlx.Name == name {
			return dlx, true
		}
	}
	return Exchange{}, false
}

func deadLetterExchange(q Queue) Exchange {
	return Exchange{Name: DeadLetterExchangeName(q.Name), Kind: KindDirect}
}

func infrastructureExchanges() []Exchange {
	return []Exchange{
		{Name: UnroutableExchange, Kind: KindFanout},
		{Name: ArchiveExchange, Kind: KindFanout},
	}
}

// WorkQueueArgs are the arguments of a work queue: quorum, an explicit delivery limit (4.0
// has a default of 20, 3.x none, so never leave it to the version), and at-least-once
// dead-lettering to its own dead-letter queue. That strategy requires the reject-publish
// overflow; with no length limit (see "Queue limits" above) it never rejects.
func WorkQueueArgs(q Queue) amqp.Table {
	limit := q.DeliveryLimit
	if limit == 0 {
		limit = DefaultDeliveryLimit
	}
	return amqp.Table{
		"x-queue-type":              "quorum",
		"x-delivery-limit":          int64(limit),
		"x-overflow":                "reject-publish",
		"x-dead-letter-exchange":    DeadLetterExchangeName(q.Name),
		"x-dead-letter-routing-key": q.Name,
		"x-dead-letter-strategy":    "at-least-once",
	}
}

// DeadLetterQueueArgs are the arguments of a "<queue>.dlq": quorum, dead letters kept for
// DeadLetterRetention. Archiving them rather than dropping them is the policy's part (see
// Policies): as an argument, x-dead-letter-exchange would make every service that declares
// its .dlq need write access to ArchiveExchange, and so the means to publish into the
// shared archive.
func DeadLetterQueueArgs() amqp.Table {
	return amqp.Table{
		"x-queue-type": "quorum",
		// Nobody consumes a dead-letter queue; operators look at messages and put them
		// back (warrenctl dlq inspect). On 4.0 every such return counts towards the
		// delivery limit (default 20), which would quietly move looked-at dead letters on.
		"x-delivery-limit": int64(-1),
		"x-message-ttl":    DeadLetterRetention.Milliseconds(),
		"x-max-length":     int64(DeadLetterMaxLength),
		"x-overflow":       "reject-publish",
	}
}

// sinkQueueArgs are the arguments of the last-resort queues (unroutable, archive): nothing
// leaves them but an operator.
func sinkQueueArgs() amqp.Table {
	return amqp.Table{
		"x-queue-type":     "quorum",
		"x-delivery-limit": int64(-1), // as for dead-letter queues: looking must not drop
		"x-max-length":     int64(ArchiveMaxLength),
		"x-overflow":       "reject-publish",
	}
}

// DeclareInfrastructure declares the unroutable and archive exchanges and queues. It takes
// an administrator (broker setup, tests): no service user may.
func DeclareInfrastructure(ch *amqp.Channel) error {
	for _, e := range infrastructureExchanges() {
		if err := declareExchange(ch, e); err != nil {
			return err
		}
	}
	for _, sink := range []struct{ queue, exchange string }{
		{UnroutableQueue, UnroutableExchange},
		{ArchiveQueue, ArchiveExchange},
	} {
		if _, err := ch.QueueDeclare(sink.queue, true, false, false, false, sinkQueueArgs()); err != nil {
			return fmt.Errorf("declare queue %s: %w", sink.queue, err)
		}
		if err := ch.QueueBind(sink.queue, "", sink.exchange, false, nil); err != nil {
			return fmt.Errorf("bind queue %s: %w", sink.queue, err)
		}
	}
	return nil
}

// DeclareExchange declares the exchange named name as the topology describes it.
func (t Topology) DeclareExchange(ch *amqp.Channel, name string) error {
	e, ok := t.Exchange(name)
	if !ok {
		return fmt.Errorf("declare exchange %s: not in the topology", name)
	}
	return declareExchange(ch, e)
}

// declareExchange declares e with no arguments: the alternate exchange comes from a policy,
// because as an argument it would make every service that declares an exchange need write
// access to UnroutableExchange, and so the means to publish into the unroutable queue.
func declareExchange(ch *amqp.Channel, e Exchange) error {
	if err := ch.ExchangeDeclare(e.Name, string(e.Kind), true, false, false, false, nil); err != nil {
		return fmt.Errorf("declare exchange %s: %w", e.Name, err)
	}
	return nil
}

// DeclareQueue declares the queue named name, its dead-letter exchange and queue, the
// exchanges it is bound to and its bindings, and removes its Retired bindings: what its
// consuming service may declare.
func (t Topology) DeclareQueue(ch *amqp.Channel, name string) error {
	q, ok := t.Queue(name)
	if !ok {
		return fmt.Errorf("declare queue %s: not in the topology", name)
	}
	dlx := deadLetterExchange(q)
	if err := declareExchange(ch, dlx); err != nil {
		return err
	}
	dlq := DeadLetterQueueName(q.Name)
	if _, err := ch.QueueDeclare(dlq, true, false, false, false, DeadLetterQueueArgs()); err != nil {
		return fmt.Errorf("declare queue %s: %w", dlq, err)
	}
	if err := ch.QueueBind(dlq, q.Name, dlx.Name, false, nil); err != nil {
		return fmt.Errorf("bind queue %s: %w", dlq, err)
	}
	if _, err := ch.QueueDeclare(q.Name, true, false, false, false, WorkQueueArgs(q)); err != nil {
		return fmt.Errorf("declare queue %s: %w", q.Name, err)
	}
	for _, b := range q.Bindings {
		if err := t.DeclareExchange(ch, b.Exchange); err != nil {
			return err
		}
		if err := ch.QueueBind(q.Name, b.Key, b.Exchange, false, nil); err != nil {
			return fmt.Errorf("bind queue %s to %s with %q: %w", q.Name, b.Exchange, b.Key, err)
		}
	}
	for _, b := range q.Retired {
		// Unbinding a binding that does not exist is not an error; from an exchange that
		// does not exist it is (NOT_FOUND), hence the declaration first.
		if err := t.DeclareExchange(ch, b.Exchange); err != nil {
			return err
		}
		if err := ch.QueueUnbind(q.Name, b.Key, b.Exchange, nil); err != nil {
			return fmt.Errorf("unbind retired binding of queue %s to %s with %q: %w", q.Name, b.Exchange, b.Key, err)
		}
	}
	return nil
}

// DeclareAll declares the whole topology. Tests and the definitions file use it; a service
// declares only what it publishes to and consumes from.
func (t Topology) DeclareAll(ch *amqp.Channel) error {
	if err := DeclareInfrastructure(ch); err != nil {
		return err
	}
	for _, e := range t.Exchanges {
		if err := declareExchange(ch, e); err != nil {
			return err
		}
	}
	for _, q := range t.Queues {
		if err := t.DeclareQueue(ch, q.Name); err != nil {
			return err
		}
	}
	return nil
}
