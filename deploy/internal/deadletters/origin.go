package deadletters

import (
	"errors"
	"fmt"
	"strings"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenhq/warren/deploy/internal/brokeraccess"
	"github.com/warrenhq/warren/shared/messaging"
)

// ErrUnverified is returned (wrapped) by Origins.Verify for a dead letter whose origin what
// the broker itself recorded does not bear out: Replay leaves such a message where it is
// and reports why.
var ErrUnverified = errors.New("refused: origin not verified")

// Origins decides where a dead letter may be replayed to from what the broker recorded,
// never from what its headers claim, which whoever wrote the message wrote:
//
//   - the exchange a message reached its queue through (basic.deliver, x-death), which
//     RabbitMQ sets;
//   - the user-id property, which RabbitMQ refuses unless it is the publishing
//     connection's user, and which Warren's publishers always set;
//   - the topology's guarantee (brokeraccess) that only the broker and the service that
//     consumes a queue can write into "<queue>.dlq" (through "<queue>.dlx"), and only the
//     broker into the archive and the unroutable queue.
//
// A replay never lets a service inject an event anywhere it could not publish to itself:
// --to queue sends a dead letter back only to the queue whose dead letters it sits in,
// which only its writer consumes; --to original sends it to an exchange only when the
// broker vouches for a publisher that may publish there.
type Origins struct {
	topology messaging.Topology
	access   map[string]brokeraccess.Access // by service (and user) name
}

// NewOrigins returns the Origins of topology, which must bind every region
// (events.Topology(events.Regions)), with brokeraccess's services.
func NewOrigins(topology messaging.Topology) (Origins, error) {
	o := Origins{topology: topology, access: map[string]brokeraccess.Access{}}
	for _, s := range brokeraccess.Services() {
		a, err := brokeraccess.For(topology, s)
		if err != nil {
			return Origins{}, fmt.Errorf("origins: %w", err)
		}
		o.access[s.Name] = a
	}
	return o, nil
}

// Verify returns where d, taken from queue (one of Queues), goes in mode, or an error
// wrapping ErrUnverified (the broker's records contradict the message, or vouch for no one
// who could have sent it there) or ErrNotReplayable (nothing says where it would go).
func (o Origins) Verify(queue string, d amqp.Delivery, mode Mode) (Destination, error) {
	m := Describe(d)
	switch {
	case queue == messaging.UnroutableQueue:
		return o.unroutable(d, mode)
	case queue == messaging.ArchiveQueue:
		// Only the broker writes here, archiving what outlived a .dlq: its newest x-death
		// entry names that queue, and the exchange the dead letter had reached it through.
		if d.Exchange != messaging.ArchiveExchange {
			return Destination{}, fmt.Errorf("%w: it reached %s through %s, but only the broker archives, through %s",
				ErrUnverified, queue, exchangeName(d.Exchange), messaging.ArchiveExchange)
		}
		if len(m.Deaths) == 0 || !strings.HasSuffix(m.Deaths[0].Queue, ".dlq") {
			return Destination{}, fmt.Errorf("%w: no x-death entry names the dead-letter queue it was archived from", ErrUnverified)
		}
		last := m.Deaths[0]
		return o.deadLetter(strings.TrimSuffix(last.Queue, ".dlq"), last.Exchange, d, m, mode)
	default:
		return o.deadLetter(strings.TrimSuffix(queue, ".dlq"), d.Exchange, d, m, mode)
	}
}

// deadLetter verifies a dead letter of the work queue source, which reached source's .dlq
// through the exchange arrived.
func (o Origins) deadLetter(source, arrived string, d amqp.Delivery, m Message, mode Mode) (Destination, error) {
	owner, ok := brokeraccess.Owner(source)
	if _, inTopology := o.topology.Queue(source); !ok || !inTopology {
		return Destination{}, fmt.Errorf("%w: %s is no Warren work queue", ErrNotReplayable, source)
	}
	dlq, dlx := messaging.DeadLetterQueueName(source), messaging.DeadLetterExchangeName(source)
	if arrived != dlx {
		return Destination{}, fmt.Errorf("%w: it reached %s through %s, not %s, which only the broker and %s write to",
			ErrUnverified, dlq, exchangeName(arrived), dlx, owner.Name)
	}
	if m.Queue != source {
		return Destination{}, fmt.Errorf("%w: it says it failed in %s, but it sits in the dead letters of %s, which only %s writes",
			ErrUnverified, m.Queue, source, owner.Name)
	}
	if m.DeadLetteredBy == ByBroker {
		// The broker dead-lettered it from source (or source's consumer made it look so,
		// which only sends it back to that consumer --to queue): the message is as it was
		// published, user-id included.
		if mode != ToOriginal {
			return Destination{RoutingKey: source}, nil
		}
		first, _ := firstDeath(d.Headers, m.Deaths)
		dest := Destination{Exchange: first.Exchange}
		if len(first.RoutingKeys) > 0 {
			dest.RoutingKey = first.RoutingKeys[0]
		}
		if _, ok := o.topology.Exchange(dest.Exchange); !ok || isInfrastructure(dest.Exchange) || dest.Exchange == "" {
			return Destination{}, fmt.Errorf("%w: no original exchange recorded", ErrNotReplayable)
		}
		return dest, o.vouchedFor(d.UserId, dest)
	}
	// The consumer's dead letter (or one with no record at all): the body and the headers
	// are the word of whoever wrote it, and the broker vouches for the writer.
	writer, isService := o.access[d.UserId]
	switch {
	case d.UserId == "":
		return Destination{}, fmt.Errorf("%w: it has no user-id, so the broker vouches for no writer (%s's consumer always sets it)",
			ErrUnverified, source)
	case isService && d.UserId != owner.Name:
		return Destination{}, fmt.Errorf("%w: it was written by %s, but only %s writes the dead letters of %s",
			ErrUnverified, d.UserId, owner.Name, source)
	}
	if mode != ToOriginal {
		return Destination{RoutingKey: source}, nil
	}
	if m.Original == nil {
		return Destination{}, fmt.Errorf("%w: no original exchange recorded", ErrNotReplayable)
	}
	if isService && !writer.MayPublish(m.Original.Exchange, m.Original.RoutingKey) {
		return Destination{}, fmt.Errorf("%w: a consumer's dead letter is its consumer's word, and %s may not publish to %s itself (replay it --to queue)",
			ErrUnverified, d.UserId, m.Original)
	}
	return *m.Original, nil
}

// unroutable verifies a message of the unroutable queue: the alternate exchange keeps the
// exchange and routing key it was published with, and the broker checked then that its
// publisher may publish there.
func (o Origins) unroutable(d amqp.Delivery, mode Mode) (Destination, error) {
	if mode != ToOriginal {
		return Destination{}, fmt.Errorf("%w: it never reached a queue", ErrNotReplayable)
	}
	e, ok := o.topology.Exchange(d.Exchange)
	if !ok || isInfrastructure(e.Name) || strings.HasSuffix(e.Name, ".dlx") {
		return Destination{}, fmt.Errorf("%w: it reached %s through %s, but only the broker puts messages there, from one of Warren's exchanges",
			ErrUnverified, messaging.UnroutableQueue, exchangeName(d.Exchange))
	}
	dest := Destination{Exchange: d.Exchange, RoutingKey: d.RoutingKey}
	if d.UserId == "" {
		return dest, nil // the broker checked the publish to dest itself
	}
	return dest, o.vouchedFor(d.UserId, dest)
}

// vouchedFor returns nil when user, the broker-checked publisher of a message, may publish
// to dest. A user that is none of the services is an operator's: only an administrator
// can have written such a user-id where only the broker and one service write.
func (o Origins) vouchedFor(user string, dest Destination) error {
	if user == "" {
		return fmt.Errorf("%w: it has no user-id, so the broker vouches for no publisher, and it would go to %s", ErrUnverified, dest)
	}
	a, isService := o.access[user]
	if isService && !a.MayPublish(dest.Exchange, dest.RoutingKey) {
		return fmt.Errorf("%w: it was published by %s, which may not publish to %s", ErrUnverified, user, dest)
	}
	return nil
}

func exchangeName(e string) string {
	if e == "" {
		return "the default exchange"
	}
	return e
}
