package deadletters

import (
	"regexp"
	"strings"

	"github.com/warrenhq/warren/deploy/internal/rabbitmgmt"
	"github.com/warrenhq/warren/shared/messaging"
)

// PolicyName names the policy Policy describes.
const PolicyName = "warren-dead-letters"

// Policy is the policy warrenctl broker setup applies so that looking at a dead letter
// never moves it: it lifts the delivery limit ("delivery-limit": -1) of every queue Queues
// lists.
//
// Those are quorum queues, whose delivery limit is 20 when none is set, and up to RabbitMQ
// 4.2 every message Peek returns to its queue counts as a delivery: the 21st look at a dead
// letter would make the broker dead-letter it again, out of its .dlq into the archive, and
// out of the archive or the unroutable queue into nothing (they have no dead-letter
// exchange). The limit protects a queue from a consumer that fails and requeues forever;
// these queues have no consumer at all. Their names are listed one by one, anchored and
// quoted, as brokeraccess writes permissions, so the policy touches no other queue.
func Policy(topology messaging.Topology) rabbitmgmt.Policy {
	queues := Queues(topology)
	for i, q := range queues {
		queues[i] = regexp.QuoteMeta(q)
	}
	return rabbitmgmt.Policy{
		Pattern:    "^(" + strings.Join(queues, "|") + ")$",
		ApplyTo:    "queues",
		Definition: map[string]any{"delivery-limit": -1},
	}
}
