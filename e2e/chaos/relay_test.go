package chaos

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/warrenhq/warren/e2e"
)

// standbyWithin is how soon after the leader is cut off the standby relay must have
// published an order's event: the 15 s (a 10 s lease, renewed every 2 s).
const standbyWithin = 15 * time.Second

// Two order replicas share one database; the one whose outbox relay leads is cut off the
// network (docker network disconnect: no FIN or RST reaches PostgreSQL or RabbitMQ, its
// sessions there just go silent, as when a VM is lost). The load places its orders
// through the other replica all along. The standby's relay takes the lease once it expires
// and publishes within 15 s: an order placed right after the cut is settled within that.
// Reconnected after 30 s, the former leader finds its lease taken and stands by. Nothing
// is lost, and no effect happens twice (an event the cut-off leader had published but not
// yet marked goes out again; the consumers' ledgers take it once).
func TestRelayLeaderCutOff(t *testing.T) {
	sc := newScenario(t, "relay-leader-cut-off", e2e.WithOrderReplicas(2))
	ctx := t.Context()
	leader, err := sc.relayLeader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	standby := "order-1"
	if leader == standby {
		standby = "order-2"
	}
	t.Logf("the order relay's leader is %s; the load goes through %s", leader, standby)
	sc.sys.Order = sc.sys.OrderReplicas[standby]
	sc.startLoad()
	var relayed time.Duration
	sc.fault(leader+" cut off the network for 30 s, then reconnected", func(ctx context.Context) error {
		if err := sc.sys.Disconnect(ctx, leader); err != nil {
			return err
		}
		cut := time.Now()
		if relayed, err = sc.run.Probe(ctx); err != nil {
			return fmt.Errorf("an order placed right after the cut: %w", err)
		}
		t.Logf("an order placed through %s right after the cut settled in %s", standby, relayed.Round(100*time.Millisecond))
		sleep(ctx, time.Until(cut.Add(30*time.Second)))
		if err := sc.sys.Reconnect(ctx, leader); err != nil {
			return err
		}
		return sc.waitReady(ctx, leader)
	})
	if relayed > standbyWithin {
		t.Errorf("the standby relayed %s after the cut, want within %s", relayed.Round(100*time.Millisecond), standbyWithin)
	}
	sc.finish()
	if now, err := sc.relayLeader(ctx); err != nil || now != standby {
		t.Errorf("after the heal the relay's leader is %q (%v), want %s: the former leader must stand by", now, err, standby)
	}
}

// relayLeader returns which order replica holds the outbox relay's lease, from the
// lease's holder ("<host name>/<pid>/<random>"; e2e gives each container its alias as
// host name). It waits for a lease to be held.
func (sc *scenario) relayLeader(ctx context.Context) (string, error) {
	var leader string
	err := poll(ctx, 30*time.Second, func() error {
		out, err := sc.sys.Exec(ctx, "postgres", "psql", "-U", "warren", "-d", "order", "-tAc",
			"SELECT holder FROM outbox_relay_lease WHERE expires_at > now()")
		if err != nil {
			return err
		}
		host, _, ok := strings.Cut(strings.TrimSpace(out), "/")
		if _, known := sc.sys.OrderReplicas[host]; !ok || !known {
			return fmt.Errorf("lease holder %q is no order replica", strings.TrimSpace(out))
		}
		leader = host
		return nil
	})
	return leader, err
}
