package messaging

import (
	"regexp"
	"strings"
)

// Policy names. Policies carry what, as a declaration argument, would make every service
// that declares the object need write access to a shared sink (see declareExchange and
// DeadLetterQueueArgs), plus the delivery limit of the queues nobody consumes.
const (
	PolicyAlternateExchange = "warren-alternate-exchange"
	PolicyDeadLetterQueues  = "warren-dead-letters"
	PolicySinkQueues        = "warren-sinks"
)

// PolicyPriority is the priority of Warren's policies: RabbitMQ applies only the
// highest-priority policy that matches an object, and an operator's own policy at the
// default 0 must not switch the sinks off.
const PolicyPriority = 10

// PolicyDefinition is one policy in a definitions file (and the management API's body for
// PUT /api/policies/{vhost}/{name}).
type PolicyDefinition struct {
	Name       string         `json:"name"`
	VHost      string         `json:"vhost"`
	Pattern    string         `json:"pattern"`
	ApplyTo    string         `json:"apply-to"`
	Definition map[string]any `json:"definition"`
	Priority   int            `json:"priority"`
}

// Policies are the policies a broker running t needs, for vhost:
//
//   - every exchange of t has UnroutableExchange as its alternate exchange, so that a
//     message no binding matches is kept rather than dropped;
//   - every "<queue>.dlq" archives what outlives DeadLetterRetention (or overflows) into
//     ArchiveExchange, at least once;
//   - no dead-letter or sink queue has a delivery limit: nobody consumes them, and up to
//     RabbitMQ 4.2 every look at a message (warrenctl dlq inspect returns it) counts as a
//     delivery, so a quorum queue's default limit of 20 would move a looked-at dead letter
//     on, out of the archive into nothing.
//
// Patterns list the names one by one, anchored and quoted, so a policy touches nothing
// else in the vhost.
func (t Topology) Policies(vhost string) []PolicyDefinition {
	var exchanges, dlqs []string
	for _, e := range t.Exchanges {
		exchanges = append(exchanges, e.Name)
	}
	for _, q := range t.Queues {
		dlqs = append(dlqs, DeadLetterQueueName(q.Name))
	}
	policy := func(name, applyTo string, names []string, definition map[string]any) PolicyDefinition {
		return PolicyDefinition{Name: name, VHost: vhost, Pattern: namePattern(names), ApplyTo: applyTo,
			Definition: definition, Priority: PolicyPriority}
	}
	return []PolicyDefinition{
		policy(PolicyAlternateExchange, "exchanges", exchanges, map[string]any{"alternate-exchange": UnroutableExchange}),
		policy(PolicyDeadLetterQueues, "queues", dlqs, map[string]any{
			"delivery-limit":       -1,
			"dead-letter-exchange": ArchiveExchange,
			"dead-letter-strategy": "at-least-once",
		}),
		policy(PolicySinkQueues, "queues", []string{UnroutableQueue, ArchiveQueue}, map[string]any{"delivery-limit": -1}),
	}
}

// namePattern matches exactly the given names.
func namePattern(names []string) string {
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = regexp.QuoteMeta(n)
	}
	return "^(" + strings.Join(quoted, "|") + ")$"
}
