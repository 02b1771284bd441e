package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/loadgen"
)

// TestLoadGeneratorSettlesAsItsMixSays runs the load generator (shared/loadgen, the engine
// of warren-load) against the system: 60 orders at 10/s as ten load-test customers, 20%
// out of stock, 10% cancelled once confirmed, regions 50/30/20. Then it asks the APIs,
// not the generator, what became of every order: each is there, owned by the customer who
// placed it, in the region and status its kind asks for, and the counts equal the
// generator's summary; inventory's stock went down by the confirmed orders alone (the
// rejected ones took nothing, the cancelled ones gave theirs back).
func TestLoadGeneratorSettlesAsItsMixSays(t *testing.T) {
	s := system(t)
	ctx := t.Context()
	inStock := []string{"carrot-seeds", "garden-trowel"}
	before := s.Inventory.StockOf(t, inStock...)
	for sku, n := range before {
		if n < 60 {
			t.Fatalf("%s has %d in stock, too few for the run: the suite's earlier tests should leave more", sku, n)
		}
	}
	customers := make([]string, 10)
	for i := range customers {
		customers[i] = LoadCustomer(i + 1)
	}
	const orders = 60
	res, err := loadgen.Run(ctx, loadgen.Config{
		OrderURL: s.Order.URL(), InventoryURL: s.Inventory.URL(),
		Customers: customers, Token: s.Identity.Token,
		Rate: 10, Count: orders, Duration: time.Minute,
		OutOfStock: 0.2, Cancel: 0.1, StockQueries: 0.5,
		Regions: []loadgen.RegionWeight{
			{Region: events.RegionEurope, Weight: 50}, {Region: events.RegionAmericas, Weight: 30}, {Region: events.RegionAsia, Weight: 20}},
		InStockSKUs: inStock, OutOfStockSKU: "rare-orchid",
		Progress: 2 * time.Second,
		Report:   func(st loadgen.Stats) { t.Log("progress:", st) },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Log("summary:", res.Stats)

	// The generator's own account: every order placed and settled as its kind says, at
	// about the rate asked for (its pacing catches up a late tick, so the rate holds).
	if res.Failed() || res.Placed != orders || res.Abandoned != 0 {
		t.Errorf("summary %s: want %d placed, no errors, nothing unsettled, unexpected or abandoned", res.Stats, orders)
	}
	if res.Confirmed != 42 || res.Rejected != 12 || res.Cancelled != 6 {
		t.Errorf("summary: confirmed %d, rejected %d, cancelled %d; want exactly 42, 12 and 6 of 60 (70/20/10)",
			res.Confirmed, res.Rejected, res.Cancelled)
	}
	if res.StockQueries != orders/2 {
		t.Errorf("summary: %d stock queries, want %d (0.5 per order)", res.StockQueries, orders/2)
	}
	if res.Rate < 7 || res.Rate > 12 {
		t.Errorf("placed %.1f orders/s, want about 10", res.Rate)
	}

	// The system's account, order by order, as each customer sees their own.
	statuses := map[string]int{}
	regions := map[events.Region]int{}
	confirmedOf := map[string]int{}
	for _, o := range res.Orders {
		if o.ID == "" {
			t.Errorf("order %d (%s) was never placed", o.N, o.Kind)
			continue
		}
		token, err := s.Identity.Token(ctx, o.Customer)
		if err != nil {
			t.Fatal(err)
		}
		got := s.Order.As(token).Get(t, o.ID)
		if got.Status != o.Kind.Want() || got.Status != o.Status {
			t.Errorf("order %d (%s, %s): the API says %s (%s), the generator %s; want %s",
				o.N, o.Kind, o.ID, got.Status, got.Reason, o.Status, o.Kind.Want())
		}
		if got.Region != o.Region || len(got.Items) != 1 || got.Items[0].SKU != o.SKU || got.Items[0].Quantity != 1 {
			t.Errorf("order %d: region %s items %+v, want %s and one %s", o.N, got.Region, got.Items, o.Region, o.SKU)
		}
		statuses[got.Status]++
		regions[got.Region]++
		if got.Status == StatusConfirmed {
			confirmedOf[o.SKU]++
		}
	}
	if statuses[StatusConfirmed] != res.Confirmed || statuses[StatusRejected] != res.Rejected ||
		statuses[StatusCancelled] != res.Cancelled {
		t.Errorf("the API counts %v; the generator's summary confirmed %d, rejected %d, cancelled %d",
			statuses, res.Confirmed, res.Rejected, res.Cancelled)
	}
	if regions[events.RegionEurope] != 30 || regions[events.RegionAmericas] != 18 || regions[events.RegionAsia] != 12 {
		t.Errorf("regions %v, want europe 30, americas 18, asia 12 (50/30/20 of 60)", regions)
	}

	// Inventory releases a cancelled order's stock on its OrderCancelled, a moment after
	// the cancel answered.
	Eventually(t, 30*time.Second, "stock down by the confirmed orders alone", func() error {
		after := s.Inventory.StockOf(t, inStock...)
		for _, sku := range inStock {
			if want := before[sku] - confirmedOf[sku]; after[sku] != want {
				return fmt.Errorf("%s: %d in stock, want %d (%d before, %d confirmed and not cancelled)",
					sku, after[sku], want, before[sku], confirmedOf[sku])
			}
		}
		return nil
	})
	if n := s.Inventory.Stock(t, "rare-orchid"); n != 0 {
		t.Errorf("rare-orchid: %d in stock after the rejected orders, want 0", n)
	}
}
