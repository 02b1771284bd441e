package main

import (
	"fmt"
	"net/http"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/warrenhq/warren/services/analytics/internal/stats"
	"github.com/warrenhq/warren/shared/auth"
	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/messaging"
	"github.com/warrenhq/warren/shared/testkit"
)

func TestMain(m *testing.M) { os.Exit(testkit.Run(m)) }

func placed(orderID string, r events.Region, total int64) events.OrderPlaced {
	return events.OrderPlaced{OrderID: orderID, Region: r, TotalCents: total, PlacedAt: time.Now().UTC(),
		Items: []events.Item{{SKU: "carrot-seeds", Quantity: 1, UnitPriceCents: total}}}
}

// waitStats waits until the service has handled n events in all and returns /stats.
func (h *harness) waitStats(n int64) stats.Stats {
	h.T.Helper()
	var st stats.Stats
	testkit.Eventually(h.T, 30*time.Second, func() string {
		st = stats.Stats{}
		h.GetJSON("/stats", &st)
		var handled int64
		for _, c := range st.Events {
			handled += c
		}
		if handled != n {
			return fmt.Sprintf("%d events counted, want %d: %+v", handled, n, st.Events)
		}
		return ""
	})
	return st
}

// orders builds the expected orders table: every region and status, zero unless given.
func orders(counts map[events.Region]map[stats.Status]int64) map[events.Region]map[stats.Status]int64 {
	out := map[events.Region]map[stats.Status]int64{}
	for _, r := range events.Regions {
		out[r] = map[stats.Status]int64{}
		for _, s := range stats.Statuses {
			out[r][s] = counts[r][s]
		}
	}
	return out
}

func TestScriptedSequence(t *testing.T) {
	h := startService(t, "analytics", events.Topology(events.DefaultSMSRegions), nil)
	topic := func(key, typ, id string, e any) { h.Publish(events.ExchangeTopic, key, typ, id, e) }
	eu, asia, am := events.RegionEurope, events.RegionAsia, events.RegionAmericas

	h.PublishFanout(events.TypeOrderPlaced, "m-1", placed("o-1", eu, 1000))
	h.PublishFanout(events.TypeOrderPlaced, "m-2", placed("o-2", eu, 2500))
	h.PublishFanout(events.TypeOrderPlaced, "m-3", placed("o-3", asia, 4000))
	topic(events.InventoryReservedKey(eu), events.TypeStockReserved, "m-4", events.StockReserved{OrderID: "o-1", Region: eu})
	topic(events.OrderConfirmedKey(eu), events.TypeOrderConfirmed, "m-5", events.OrderConfirmed{OrderID: "o-1", Region: eu, TotalCents: 1000})
	topic(events.OrderRejectedKey(eu), events.TypeOrderRejected, "m-6", events.OrderRejected{OrderID: "o-2", Region: eu, Reason: "out of stock"})
	h.PublishFanout(events.TypeOrderCancelled, "m-7", events.OrderCancelled{OrderID: "o-3", Region: asia})
	// Out of order: o-4's confirmation (without a total) overtakes its OrderPlaced. The
	// late "pending" must not undo it, and the total comes from the OrderPlaced.
	topic(events.OrderConfirmedKey(am), events.TypeOrderConfirmed, "m-8", events.OrderConfirmed{OrderID: "o-4", Region: am})
	h.PublishFanout(events.TypeOrderPlaced, "m-9", placed("o-4", am, 700))

	want := stats.Stats{
		Orders: orders(map[events.Region]map[stats.Status]int64{
			eu:   {stats.StatusConfirmed: 1, stats.StatusRejected: 1},
			asia: {stats.StatusCancelled: 1},
			am:   {stats.StatusConfirmed: 1},
		}),
		RevenueCents: 1000 + 700,
		Events: map[string]int64{
			events.TypeOrderPlaced:    4,
			events.TypeStockReserved:  1,
			events.TypeOrderConfirmed: 2,
			events.TypeOrderRejected:  1,
			events.TypeOrderCancelled: 1,
		},
	}
	if got := h.waitStats(9); !reflect.DeepEqual(got, want) {
		t.Errorf("stats:\n got %+v\nwant %+v", got, want)
	}

	// A cancellation after the confirmation takes the order out of the revenue.
	h.PublishFanout(events.TypeOrderCancelled, "m-10", events.OrderCancelled{OrderID: "o-1", Region: eu})
	want.Orders[eu][stats.StatusConfirmed], want.Orders[eu][stats.StatusCancelled] = 0, 1
	want.RevenueCents = 700
	want.Events[events.TypeOrderCancelled] = 2
	if got := h.waitStats(10); !reflect.DeepEqual(got, want) {
		t.Errorf("stats after cancelling o-1:\n got %+v\nwant %+v", got, want)
	}
}

func TestRedeliveryCountsOnce(t *testing.T) {
	h := startService(t, "analytics", events.Topology(events.DefaultSMSRegions), nil)
	eu := events.RegionEurope
	for range 2 {
		h.PublishFanout(events.TypeOrderPlaced, "m-1", placed("o-1", eu, 1000))
		h.Publish(events.ExchangeTopic, events.OrderConfirmedKey(eu), events.TypeOrderConfirmed, "m-2",
			events.OrderConfirmed{OrderID: "o-1", Region: eu, TotalCents: 1000})
		h.Publish(events.ExchangeTopic, events.InventoryOutOfStockKey(eu), events.TypeStockOutOfStock, "m-3",
			events.StockOutOfStock{OrderID: "o-2", Region: eu, MissingSKU: []string{"rare-orchid"}})
	}
	// A last, distinct event: once it is counted, every duplicate before it was handled.
	h.Publish(events.ExchangeTopic, events.InventoryReleasedKey(eu), events.TypeStockReleased, "m-4",
		events.StockReleased{OrderID: "o-3", Region: eu})

	want := stats.Stats{
		Orders:       orders(map[events.Region]map[stats.Status]int64{eu: {stats.StatusConfirmed: 1}}),
		RevenueCents: 1000,
		Events: map[string]int64{
			events.TypeOrderPlaced:     1,
			events.TypeOrderConfirmed:  1,
			events.TypeStockOutOfStock: 1,
			events.TypeStockReleased:   1,
		},
	}
	got := h.waitStats(4)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("stats:\n got %+v\nwant %+v", got, want)
	}
	if n := testkit.Depth(t, h.Ch, messaging.DeadLetterQueueName(events.QueueAnalytics)); n != 0 {
		t.Errorf("%d messages dead-lettered, want none", n)
	}
}

// GET /stats is for staff: no token is a 401, a customer's token a 403.
func TestStatsIsForStaff(t *testing.T) {
	h := startService(t, "analytics", events.Topology(events.DefaultSMSRegions), nil)
	customer := h.Hydra.Token(t, "alice", auth.RoleCustomer)
	for _, c := range []struct {
		who, token string
		want       int
	}{{"nobody", "", http.StatusUnauthorized}, {"a customer", customer, http.StatusForbidden}, {"staff", h.Token, http.StatusOK}} {
		if got := h.StatusAs(http.MethodGet, "/stats", c.token); got != c.want {
			t.Errorf("GET /stats as %s = %d, want %d", c.who, got, c.want)
		}
	}
}
