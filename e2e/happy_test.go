package e2e

import (
	"fmt"
	"maps"
	"reflect"
	"testing"
	"time"

	"github.com/warrenhq/warren/shared/events"
)

// A batch of orders across the three regions: each is confirmed, mailed twice (received,
// confirmed), texted once where sms serves its region, and the stock and the running
// totals move by exactly what was ordered.
func TestHappyPath(t *testing.T) {
	s := system(t)
	stockBefore := s.Inventory.StockOf(t, inStock...)
	statsBefore := s.Analytics.QuietStats(t)

	orders := make([]OrderRequest, 12)
	for i := range orders {
		items := []Line{{SKU: inStock[i%len(inStock)], Quantity: 1 + i%3}}
		if i%3 == 2 && items[0].SKU != "carrot-seeds" {
			items = append(items, Line{SKU: "carrot-seeds", Quantity: 5})
		}
		orders[i] = OrderRequest{Customer: customer(t, i), Region: events.Regions[i%len(events.Regions)], Items: items}
	}
	start := time.Now()
	ids := placeAll(t, s, orders, 4)
	var revenue int64
	for _, id := range ids {
		o := s.Order.Settled(t, id)
		if o.Status != StatusConfirmed {
			t.Fatalf("order %s is %s (%s), want confirmed", id, o.Status, o.Reason)
		}
		revenue += o.TotalCents
	}
	settled := time.Since(start)

	// Mails: received and confirmed, for every order.
	for i := range ids {
		s.Mailpit.WaitFor(t, orders[i].Customer.Email, MailReceived, MailConfirmed)
	}
	// Texts: one confirmation where sms serves the region; none for asia, checked last so
	// that a stray text would have had the time of the others to arrive.
	texted := 0
	for _, asia := range []bool{false, true} {
		for i, id := range ids {
			if (orders[i].Region == events.RegionAsia) != asia {
				continue
			}
			want := 1
			if asia {
				want = 0
			}
			texted += want
			var texts []Text
			Eventually(t, 30*time.Second, fmt.Sprintf("%d text(s) for %s order %s", want, orders[i].Region, id), func() error {
				if texts = s.SMS.Texts(t, id); len(texts) < want {
					return fmt.Errorf("%d texts", len(texts))
				}
				return nil
			})
			if len(texts) != want {
				t.Errorf("%s order %s: %d texts, want %d", orders[i].Region, id, len(texts), want)
			}
			// sms texts the number as the contract normalises it, "+442079460958".
			number, err := orders[i].Customer.TextNumber()
			for _, tx := range texts {
				if err != nil || tx.To != number {
					t.Errorf("order %s texted to %q, want %q (%v)", id, tx.To, number, err)
				}
			}
		}
	}

	// Stock: down by exactly what was ordered.
	ordered := quantities(orders)
	stockAfter := s.Inventory.StockOf(t, inStock...)
	for _, sku := range inStock {
		if want := stockBefore[sku] - ordered[sku]; stockAfter[sku] != want {
			t.Errorf("%s: stock %d, want %d (%d - %d ordered)", sku, stockAfter[sku], want, stockBefore[sku], ordered[sku])
		}
	}
	// The order service's view of stock (request/reply to inventory) agrees.
	if got := s.Order.Stock(t, "carrot-seeds"); got != stockAfter["carrot-seeds"] {
		t.Errorf("GET /stock/carrot-seeds on order: %d, inventory says %d", got, stockAfter["carrot-seeds"])
	}

	// Running totals: up by exactly this batch.
	checkStats(t, s, statsBefore, orders, revenue)

	// Last, so that a late duplicate had time to arrive: each mail exactly once.
	for i, id := range ids {
		mails, err := s.Mailpit.To(t.Context(), orders[i].Customer.Email)
		if err != nil {
			t.Fatal(err)
		}
		checkMails(t, id, mails, MailReceived, MailConfirmed)
	}
	checkNoResend(t, s)
	t.Logf("happy path: %d orders confirmed in %s; %d mails, %d texts; stock %v down by %v; stats exact",
		len(ids), settled.Round(100*time.Millisecond), 2*len(ids), texted, stockBefore, ordered)
}

// checkStats waits until analytics' totals are before plus the batch of confirmed orders,
// and fails if they settle anywhere else.
func checkStats(t *testing.T, s *System, before Stats, orders []OrderRequest, revenue int64) {
	t.Helper()
	want := Stats{Orders: map[events.Region]map[string]int64{}, RevenueCents: before.RevenueCents + revenue, Events: map[string]int64{}}
	for region, byStatus := range before.Orders {
		want.Orders[region] = maps.Clone(byStatus)
	}
	maps.Copy(want.Events, before.Events)
	for _, o := range orders {
		if want.Orders[o.Region] == nil {
			want.Orders[o.Region] = map[string]int64{}
		}
		want.Orders[o.Region][StatusConfirmed]++
	}
	n := int64(len(orders))
	want.Events[events.TypeOrderPlaced] += n
	want.Events[events.TypeStockReserved] += n
	want.Events[events.TypeOrderConfirmed] += n

	var got Stats
	Eventually(t, 30*time.Second, "analytics totals", func() error {
		got = s.Analytics.Stats(t)
		if !reflect.DeepEqual(got, want) {
			return fmt.Errorf("\n got %+v\nwant %+v", got, want)
		}
		return nil
	})
}
