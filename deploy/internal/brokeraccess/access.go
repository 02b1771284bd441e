package brokeraccess

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/warrenhq/warren/deploy/internal/rabbitmgmt"
	"github.com/warrenhq/warren/shared/messaging"
)

// Names of the broker's own resources that the AMQP operations check.
const (
	// DefaultExchange is how permissions name the exchange without a name, which replies
	// are published to.
	DefaultExchange = "amq.default"
	// DirectReplyTo is the pseudo-queue requesters consume replies from.
	DirectReplyTo = "amq.rabbitmq.reply-to"
)

// Access is what one service's user may touch: resource names for each kind of right (a
// name stands for an exchange or a queue, RabbitMQ's permissions do not tell them apart),
// and routing keys on topic exchanges.
type Access struct {
	User                   string
	Configure, Write, Read []string
	Topics                 []TopicAccess
}

// TopicAccess is the routing keys a user may publish with (Write) and bind with (Read) on
// one topic exchange.
type TopicAccess struct {
	Exchange    string
	Write, Read []string
}

// For works out s's access from what it does and the topology t. Each right is there
// because an AMQP operation the service performs checks it:
//
//	exchange.declare  configure on it (declared with no arguments: the alternate exchange
//	                  is a policy's, see messaging.Policies)
//	queue.declare     configure on it; with a dead-letter exchange, also read on it and
//	                  write on the dead-letter exchange (the queue's own "<queue>.dlx")
//	queue.bind        write on the queue, read on the exchange (and topic read on the key);
//	queue.unbind      the same (DeclareQueue removes a queue's Retired bindings)
//	basic.publish     write on the exchange (and topic write on the key); the default
//	                  exchange is amq.default
//	basic.consume     read on the queue
//
// No service gets any right on the shared sinks (warren.unroutable, warren.dlq-archive and
// their queues): the broker's policies route into them, and only an administrator declares
// them. And only the service that consumes a queue may write to its "<queue>.dlx", so no
// one else can put a dead letter in its "<queue>.dlq".
//
// Pass a topology with every region bound (events.Topology(events.Regions)), so that any
// sms configuration's bindings are allowed.
func For(t messaging.Topology, s Service) (Access, error) {
	a := access{topics: map[string]*TopicAccess{}}
	for _, name := range s.Consumes {
		q, ok := t.Queue(name)
		if !ok {
			return Access{}, fmt.Errorf("access for %s: queue %s is not in the topology", s.Name, name)
		}
		if err := a.consume(t, q); err != nil {
			return Access{}, fmt.Errorf("access for %s: %w", s.Name, err)
		}
	}
	for _, p := range s.Publishes {
		if err := a.publish(t, p); err != nil {
			return Access{}, fmt.Errorf("access for %s: %w", s.Name, err)
		}
	}
	if s.Requests {
		// RabbitMQ 4.0 does not check this one when consuming direct reply-to (the tests
		// pass without it), but it is the resource the operation names: granting it keeps
		// request/reply working on a version that does, and lets nothing else through.
		a.read = append(a.read, DirectReplyTo)
	}
	if s.Replies {
		a.write = append(a.write, DefaultExchange)
	}
	return a.result(s.Name), nil
}

// access accumulates names; result sorts and deduplicates them.
type access struct {
	configure, write, read []string
	topics                 map[string]*TopicAccess
}

func (a *access) consume(t messaging.Topology, q messaging.Queue) error {
	dlq, dlx := messaging.DeadLetterQueueName(q.Name), messaging.DeadLetterExchangeName(q.Name)
	a.configure = append(a.configure, q.Name, dlq, dlx)
	// Bindings (the queues); declaring q with its dead-letter exchange and publishing dead
	// letters (dlx).
	a.write = append(a.write, q.Name, dlq, dlx)
	a.read = append(a.read, q.Name, dlq, dlx) // consume; declaring with a dead-letter exchange; binding dlq
	// Removing a retired binding (queue.unbind) checks what binding does.
	for _, b := range slices.Concat(q.Bindings, q.Retired) {
		e, ok := t.Exchange(b.Exchange)
		if !ok {
			return fmt.Errorf("queue %s: exchange %s is not in the topology", q.Name, b.Exchange)
		}
		a.configure = append(a.configure, e.Name) // DeclareQueue declares it
		a.read = append(a.read, e.Name)           // bind from it
		if e.Kind == messaging.KindTopic {
			a.topic(e.Name).Read = append(a.topic(e.Name).Read, b.Key)
		}
	}
	return nil
}

func (a *access) publish(t messaging.Topology, p Publication) error {
	e, ok := t.Exchange(p.Exchange)
	if !ok {
		return fmt.Errorf("exchange %s is not in the topology", p.Exchange)
	}
	a.configure = append(a.configure, e.Name) // the publisher declares it
	a.write = append(a.write, e.Name)
	if e.Kind == messaging.KindTopic {
		if len(p.Keys) == 0 {
			return fmt.Errorf("publication to topic exchange %s lists no routing keys", e.Name)
		}
		a.topic(e.Name).Write = append(a.topic(e.Name).Write, p.Keys...)
	}
	return nil
}

func (a *access) topic(exchange string) *TopicAccess {
	if a.topics[exchange] == nil {
		a.topics[exchange] = &TopicAccess{Exchange: exchange}
	}
	return a.topics[exchange]
}

func (a *access) result(user string) Access {
	out := Access{User: user, Configure: set(a.configure), Write: set(a.write), Read: set(a.read)}
	for _, t := range a.topics {
		out.Topics = append(out.Topics, TopicAccess{Exchange: t.Exchange, Write: set(t.Write), Read: set(t.Read)})
	}
	slices.SortFunc(out.Topics, func(x, y TopicAccess) int { return strings.Compare(x.Exchange, y.Exchange) })
	return out
}

func set(names []string) []string {
	out := slices.Clone(names)
	slices.Sort(out)
	return slices.Compact(out)
}

// MayPublish reports whether a lets its user publish to exchange with key: write on the
// exchange and, on a topic exchange, a topic permission for the key (Warren's publishers
// use exact keys, never patterns).
func (a Access) MayPublish(exchange, key string) bool {
	if exchange == "" {
		exchange = DefaultExchange
	}
	if !slices.Contains(a.Write, exchange) {
		return false
	}
	for _, t := range a.Topics {
		if t.Exchange == exchange {
			return slices.Contains(t.Write, key)
		}
	}
	return true
}

// Permissions renders a's names as the anchored regular expressions RabbitMQ matches
// resource names against (unanchored, a pattern would also match "order.events.sms" when
// meant for "order.events").
func (a Access) Permissions() rabbitmgmt.Permissions {
	return rabbitmgmt.Permissions{Configure: Pattern(a.Configure), Write: Pattern(a.Write), Read: Pattern(a.Read)}
}

// TopicPermissions renders a's topic access as RabbitMQ topic permissions.
func (a Access) TopicPermissions() []rabbitmgmt.TopicPermissions {
	var out []rabbitmgmt.TopicPermissions
	for _, t := range a.Topics {
		out = append(out, rabbitmgmt.TopicPermissions{Exchange: t.Exchange, Write: Pattern(t.Write), Read: Pattern(t.Read)})
	}
	return out
}

// Pattern is a regular expression matching exactly the given names: "^(a|b)$" with every
// name quoted, or "^$" (nothing) for none. Go's and RabbitMQ's (PCRE) syntax agree on it.
func Pattern(names []string) string {
	if len(names) == 0 {
		return "^$"
	}
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = regexp.QuoteMeta(n)
	}
	return "^(" + strings.Join(quoted, "|") + ")$"
}
