package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/warrenhq/warren/shared/events"
)

// Cancelling a confirmed order puts its stock back and tells the customer.
func TestCancelReleasesStock(t *testing.T) {
	s := system(t)
	const sku, qty = "watering-can", 2
	before := s.Inventory.Stock(t, sku)

	c := customer(t, 1)
	id := s.Order.Place(t, OrderRequest{Customer: c, Region: events.RegionAmericas,
		Items: []Line{{SKU: sku, Quantity: qty}}}, nil)
	if o := s.Order.Settled(t, id); o.Status != StatusConfirmed {
		t.Fatalf("order %s is %s (%s), want confirmed", id, o.Status, o.Reason)
	}
	// Stock is reserved before the order is confirmed.
	if got := s.Inventory.Stock(t, sku); got != before-qty {
		t.Fatalf("%s: stock %d after the order, want %d", sku, got, before-qty)
	}

	if o := s.Order.Cancel(t, id); o.Status != StatusCancelled {
		t.Fatalf("POST /orders/%s/cancel answered status %s, want cancelled", id, o.Status)
	}
	Eventually(t, 30*time.Second, sku+" stock released", func() error {
		if got := s.Inventory.Stock(t, sku); got != before {
			return fmt.Errorf("stock %d, want %d", got, before)
		}
		return nil
	})
	mails := s.Mailpit.WaitFor(t, c.Email, MailReceived, MailConfirmed, MailCancelled)
	if o := s.Order.Get(t, id); o.Status != StatusCancelled {
		t.Errorf("order %s is %s after cancelling, want cancelled", id, o.Status)
	}
	checkMails(t, id, mails, MailReceived, MailConfirmed, MailCancelled)
	t.Logf("cancel: order %s confirmed then cancelled, %s back at %d, 3 mails", id, sku, before)
}
