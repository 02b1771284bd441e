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
// published the events stored meanwhile: 15 s (the lease lasts 10 s and a standby tries
// to take it every 2 s, see shared/outbox).
const standbyWithin = 15 * time.Second

// Two order replicas share one database; the one whose outbox relay leads is cut off the
// network (docker network disconnect: no FIN or RST reaches PostgreSQL or RabbitMQ, its
// sessions there just go silent, as when a VM is lost). The load places its orders
// through the other replica all along. The standby's relay takes the lease once it expires
// and publishes within 15 s: every event stored in the first second after the cut has left
// the outbox by then.
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
		if relayed, err = sc.outboxDrained(ctx, cut, cut.Add(time.Second)); err != nil {
			return err
		}
		t.Logf("the events stored in the first second after the cut were relayed %s after it", relayed.Round(100*time.Millisecond))
		settled, err := sc.run.Probe(ctx)
		if err != nil {
			return fmt.Errorf("an order placed after that: %w", err)
		}
		t.Logf("an order placed through %s then settled in %s", standby, settled.Round(100*time.Millisecond))
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

// outboxDrained waits until order's outbox holds no event stored up to until, and returns
// how long after cut that was. It fails when none was waiting at until: the load stores
// about 60 orders a second, so some must have been, or the scenario proves nothing.
func (sc *scenario) outboxDrained(ctx context.Context, cut, until time.Time) (time.Duration, error) {
	sleep(ctx, time.Until(until))
	query := fmt.Sprintf("SELECT count(*) FROM outbox_messages WHERE created_at <= to_timestamp(%f)", float64(until.UnixMicro())/1e6)
	readings := 0
	err := poll(ctx, time.Minute, func() error {
		out, err := sc.orderSQL(ctx, query)
		if err != nil {
			return err
		}
		readings++
		if waiting := strings.TrimSpace(out); waiting != "0" {
			return fmt.Errorf("%s events stored by %s still in the outbox", waiting, until.Format(time.TimeOnly))
		}
		return nil
	})
	if err == nil && readings == 1 {
		err = fmt.Errorf("no event stored in the first second after the cut was waiting for the standby")
	}
	return time.Since(cut), err
}

// relayLeader returns which order replica holds the outbox relay's lease, from the
// lease's holder ("<host name>/<pid>/<random>"; e2e gives each container its alias as
// host name). It waits for a lease to be held.
func (sc *scenario) relayLeader(ctx context.Context) (string, error) {
	var leader string
	err := poll(ctx, 30*time.Second, func() error {
		out, err := sc.orderSQL(ctx, "SELECT holder FROM outbox_relay_lease WHERE expires_at > now()")
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

// orderSQL runs one query in order's database, as the database's superuser, and returns
// its rows as psql prints them unaligned (one value per line for one column).
func (sc *scenario) orderSQL(ctx context.Context, query string) (string, error) {
	return sc.sys.Exec(ctx, "postgres", "psql", "-U", "warren", "-d", "order", "-tAc", query)
}
