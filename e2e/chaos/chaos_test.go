package chaos

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/warrenhq/warren/e2e"
	"github.com/warrenhq/warren/shared/events"
)

// The broker goes away for a while: the services lose both connections, orders are still
// accepted (the outbox keeps their events), and everything flows again once it is back.
func TestRabbitMQRestart(t *testing.T) {
	sc := newScenario(t, "rabbitmq-restart")
	sc.startLoad()
	sc.fault("rabbitmq stopped, down 5 s, started", func(ctx context.Context) error {
		if err := sc.sys.StopContainer(ctx, "rabbitmq", 10*time.Second); err != nil {
			return err
		}
		sleep(ctx, 5*time.Second)
		if err := sc.sys.StartContainer(ctx, "rabbitmq"); err != nil {
			return err
		}
		return waitBroker(ctx, sc.broker)
	})
	sc.finish()
}

// Consumers die without warning, messages in flight: inventory, then one email replica.
// Their unacknowledged deliveries go back to the queue and are handled once.
//
// Unavoidable: a mail the SMTP server took from email-1 just before the kill, whose
// confirm had not committed, is sent again (same Message-ID): at most the CONSUMER_CONCURRENCY
// (8) mails email-1 was sending.
func TestConsumerKilled(t *testing.T) {
	sc := newScenario(t, "consumer-killed")
	sc.unavoidable.resentMails = 8
	sc.startLoad()
	sc.fault("SIGKILL inventory, down 3 s; later SIGKILL email-1, down 3 s", func(ctx context.Context) error {
		for i, name := range []string{"inventory", "email-1"} {
			if i > 0 {
				sc.run.WaitStarted(ctx, faultAfter+300)
			}
			if err := sc.sys.KillContainer(ctx, name); err != nil {
				return err
			}
			sleep(ctx, 3*time.Second)
			if err := sc.sys.StartContainer(ctx, name); err != nil {
				return err
			}
			if err := sc.waitReady(ctx, name); err != nil {
				return err
			}
		}
		return nil
	})
	sc.finish()
}

// The database goes away for a while: order answers 5xx (retried by the load), consumers'
// transactions fail and are retried or redelivered, the outbox relays catch up after.
func TestPostgresRestart(t *testing.T) {
	sc := newScenario(t, "postgres-restart")
	sc.startLoad()
	sc.fault("postgres stopped, down 5 s, started", func(ctx context.Context) error {
		if err := sc.sys.StopContainer(ctx, "postgres", 10*time.Second); err != nil {
			return err
		}
		sleep(ctx, 5*time.Second)
		if err := sc.sys.StartContainer(ctx, "postgres"); err != nil {
			return err
		}
		return sc.waitReady(ctx, allServices...)
	})
	sc.finish()
}

// Inventory is cut off the network (broker and database) long enough for the broker to
// declare its connections dead (two missed 5 s heartbeats, AMQP_HEARTBEAT), then reconnected.
func TestNetworkPartition(t *testing.T) {
	sc := newScenario(t, "inventory-partitioned")
	sc.startLoad()
	sc.fault("inventory disconnected from the network for 30 s", func(ctx context.Context) error {
		if err := sc.sys.Disconnect(ctx, "inventory"); err != nil {
			return err
		}
		sleep(ctx, 30*time.Second)
		if err := sc.sys.Reconnect(ctx, "inventory"); err != nil {
			return err
		}
		return sc.waitReady(ctx, "inventory")
	})
	sc.finish()
}

// Poison is mixed into the load: malformed JSON, unknown types and an invalid SKU straight
// into work queues (dead-lettered at once), and orders of a SKU whose handler always fails
// (INVENTORY_FAIL_SKUS: retried, then dead-lettered).
// Each lands in its queue's dead-letter queue once, with its reason, and nothing else does.
func TestPoisonMessages(t *testing.T) {
	sc := newScenario(t, "poison", e2e.WithServiceEnv("inventory", map[string]string{FailSKUSetting: InjectedFailSKU}))
	config, err := sc.sys.Logs(t.Context(), "inventory")
	if err != nil {
		t.Fatal(err)
	}
	maker := poisonMaker{runID: fmt.Sprint(time.Now().UnixNano()), failSKUs: strings.Contains(config, `"`+FailSKUSetting+`"`)}
	if !maker.failSKUs {
		t.Logf("inventory's image has no %s setting (see services/inventory/config.go): "+
			"poison naming %s left out; the one naming FailingSKU still fails inventory's handler every time", FailSKUSetting, InjectedFailSKU)
	}
	sc.startLoad()
	sc.fault(fmt.Sprintf("35 poison messages of %d kinds, one every 20 orders", maker.kinds()), func(ctx context.Context) error {
		for n := range 35 {
			sc.run.WaitStarted(ctx, faultAfter+20*n)
			p := maker.make(n)
			if err := sc.broker.Publish(ctx, p.Queue, p.Msg); err != nil {
				return err
			}
			sc.poison = append(sc.poison, p)
		}
		return nil
	})
	sc.finish()
}

// One node of a three-node cluster stops for good, the one leading most work queues:
// quorum queues elect new leaders on the two others, the services connected to it
// reconnect to another node (every node answers to the name in their AMQP_URL), and the
// flow goes on with nothing lost.
func TestRabbitMQClusterNodeStopped(t *testing.T) {
	sc := newScenario(t, "rabbitmq-cluster-node-stopped", e2e.WithRabbitMQCluster(3))
	ctx := t.Context()
	victim, survivor := leadingNode(t, sc)
	sc.startLoad()
	sc.fault("stop "+victim+" for good", func(ctx context.Context) error {
		if err := sc.sys.StopContainer(ctx, victim, 10*time.Second); err != nil {
			return err
		}
		var err error
		sc.broker, err = nodeBroker(ctx, sc.sys, survivor)
		return err
	})
	sc.finish()
	conns, err := sc.broker.ConnectionsByNode(ctx)
	t.Logf("after: client connections %v (%v)", conns, err)
	if queues, err := sc.broker.Queues(ctx); err == nil {
		for _, name := range []string{events.QueueInventory, events.QueueOrder} {
			t.Logf("after: %s led by %s, online %v", name, queues[name].Leader, queues[name].Online)
		}
	}
}
