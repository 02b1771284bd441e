package chaos

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warrenhq/warren/e2e"
)

// How long the partitioned node stays cut off: well past the 11-19 s a net_ticktime of 15 s
// takes to call it down (deploy/rabbitmq/rabbitmq.conf), so that pause_minority pauses it
// and the heal is a real one, and past the 30 s the flow has to resume in.
const partitionFor = 45 * time.Second

// resumeWithin is how soon after the cut an order placed at once must be settled.
const resumeWithin = 30 * time.Second

// One node of a three-node cluster, the one leading most work queues, is cut off from the
// two others and from every client for 45 s, then reconnected. The majority elects new
// queue leaders and carries on; the services connected to the lost node reconnect to the
// majority (the node left Docker's DNS with the network); the lost node pauses
// (pause_minority) and, once it sees the others again, rejoins by itself: no partition is
// left listed, and nothing is lost.
func TestRabbitMQClusterPartitioned(t *testing.T) {
	sc := newScenario(t, "rabbitmq-cluster-partitioned", e2e.WithRabbitMQCluster(3))
	ctx := t.Context()
	victim, survivor := leadingNode(t, sc)
	sc.startLoad()
	var resumed time.Duration
	sc.fault(fmt.Sprintf("%s cut off from the cluster and the clients for %s, then reconnected", victim, partitionFor), func(ctx context.Context) error {
		if err := sc.sys.Disconnect(ctx, victim); err != nil {
			return err
		}
		cut := time.Now()
		var err error
		if sc.broker, err = nodeBroker(ctx, sc.sys, survivor); err != nil {
			return err
		}
		if resumed, err = sc.run.Probe(ctx); err != nil {
			return fmt.Errorf("an order placed right after the cut: %w", err)
		}
		t.Logf("an order placed right after the cut settled in %s", resumed.Round(100*time.Millisecond))
		sleep(ctx, time.Until(cut.Add(partitionFor)))
		if err := sc.sys.Reconnect(ctx, victim); err != nil {
			return err
		}
		return waitForNodes(ctx, sc.broker, sc.sys.BrokerNodes)
	})
	if resumed > resumeWithin {
		t.Errorf("the flow resumed %s after the cut, want within %s", resumed.Round(100*time.Millisecond), resumeWithin)
	}
	sc.finish()
	nodes, err := sc.broker.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if !n.Running || len(n.Partitions) > 0 {
			t.Errorf("after the heal, %s: running %v, partitioned from %v; want running with no partition", n.Name, n.Running, n.Partitions)
		}
	}
	conns, err := sc.broker.ConnectionsByNode(ctx)
	t.Logf("after: client connections %v (%v)", conns, err)
}

// leadingNode returns the cluster node that leads the most work queues (the one whose loss
// moves the most work) and another node to watch the broker through meanwhile. It fails t
// unless every work queue has a replica on every node: losing a node would prove nothing.
func leadingNode(t *testing.T, sc *scenario) (victim, survivor string) {
	t.Helper()
	queues, err := sc.broker.Queues(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	leads := map[string]int{}
	for _, name := range workQueues {
		q := queues[name]
		if len(q.Members) != len(sc.sys.BrokerNodes) {
			t.Fatalf("queue %s has replicas on %v, want all %d nodes: the scenario would prove nothing", name, q.Members, len(sc.sys.BrokerNodes))
		}
		leads[q.Leader]++
	}
	victim = "rabbit@" + sc.sys.BrokerNodes[0]
	for node, n := range leads {
		if n > leads[victim] {
			victim = node
		}
	}
	victim = strings.TrimPrefix(victim, "rabbit@")
	survivor = sc.sys.BrokerNodes[(slices.Index(sc.sys.BrokerNodes, victim)+1)%len(sc.sys.BrokerNodes)]
	conns, err := sc.broker.ConnectionsByNode(t.Context())
	t.Logf("queue leaders %v, client connections %v (%v); the victim is %s", leads, conns, err, victim)
	return victim, survivor
}

// Node is a cluster node as the management API reports it.
type Node struct {
	Name    string `json:"name"`
	Running bool   `json:"running"`
	// Partitions lists the nodes this one saw on the other side of a partition that has
	// not been resolved: empty once a partition healed.
	Partitions []string `json:"partitions"`
}

// Nodes returns the cluster's nodes. During a partition the answer waits until the node
// asked has called the unreachable ones down.
func (b Broker) Nodes(ctx context.Context) ([]Node, error) {
	var nodes []Node
	if err := call(ctx, "", http.MethodGet, b.API+"/api/nodes?columns=name,running,partitions", nil, http.StatusOK, &nodes); err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	return nodes, nil
}

// waitForNodes waits until b lists every one of names as a running node.
func waitForNodes(ctx context.Context, b Broker, names []string) error {
	return poll(ctx, 2*time.Minute, func() error {
		nodes, err := b.Nodes(ctx)
		if err != nil {
			return err
		}
		var running []string
		for _, n := range nodes {
			if n.Running {
				running = append(running, strings.TrimPrefix(n.Name, "rabbit@"))
			}
		}
		slices.Sort(running)
		if !slices.Equal(running, names) {
			return fmt.Errorf("running nodes %v, want %v", running, names)
		}
		return nil
	})
}
