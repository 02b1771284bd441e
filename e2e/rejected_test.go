package e2e

import (
	"testing"

	"github.com/warrenhq/warren/shared/events"
)

// An order inventory cannot fill is rejected as a whole: nothing is reserved, not even the
// items in stock, and the customer is told why.
func TestOutOfStockOrderIsRejected(t *testing.T) {
	s := system(t)
	skus := []string{"rare-orchid", "carrot-seeds"}
	before := s.Inventory.StockOf(t, skus...)
	if before["rare-orchid"] != 0 {
		t.Fatalf("rare-orchid has stock %d; the demo catalogue has none", before["rare-orchid"])
	}

	c := customer(t, 1)
	id := s.Order.Place(t, OrderRequest{Customer: c, Region: events.RegionEurope,
		Items: []Line{{SKU: "carrot-seeds", Quantity: 1}, {SKU: "rare-orchid", Quantity: 1}}}, nil)
	o := s.Order.Settled(t, id)
	if o.Status != StatusRejected || o.Reason == "" {
		t.Fatalf("order %s is %s (reason %q), want rejected with a reason", id, o.Status, o.Reason)
	}

	mails := s.Mailpit.WaitFor(t, c.Email, MailReceived, MailRejected)
	if after := s.Inventory.StockOf(t, skus...); after["rare-orchid"] != 0 || after["carrot-seeds"] != before["carrot-seeds"] {
		t.Errorf("stock went from %v to %v; a rejected order reserves nothing", before, after)
	}
	if texts := s.SMS.Texts(t, id); len(texts) != 0 {
		t.Errorf("rejected order %s was texted: %+v", id, texts)
	}
	checkMails(t, id, mails, MailReceived, MailRejected)
	t.Logf("out of stock: order %s rejected (%q), received+rejected mails, stock unchanged %v", id, o.Reason, before)
}
