package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sync/errgroup"

	"github.com/warrenhq/warren/shared/events"
)

// The demo catalogue's SKUs with stock (rare-orchid has none).
var inStock = []string{"carrot-seeds", "garden-trowel", "watering-can", "burrow-lamp"}

// customer is a customer with an address of their own: mails are matched by recipient.
func customer(t *testing.T, n int) events.Customer {
	name := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	return events.Customer{
		Name:  fmt.Sprintf("Ada %d", n),
		Email: fmt.Sprintf("%s.%d.%s@example.com", name, n, sys.runID),
		Phone: "+44 20 7946 0958",
	}
}

// placeAll places the orders, parallel at a time, and returns their ids in order.
func placeAll(t *testing.T, s *System, orders []OrderRequest, parallel int) []string {
	t.Helper()
	ids := make([]string, len(orders))
	var g errgroup.Group
	g.SetLimit(parallel)
	for i, o := range orders {
		g.Go(func() (err error) {
			ids[i], err = s.Order.place(t.Context(), o, nil)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	return ids
}

// quantities sums the quantity ordered of each SKU.
func quantities(orders []OrderRequest) map[string]int {
	out := map[string]int{}
	for _, o := range orders {
		for _, l := range o.Items {
			out[l.SKU] += l.Quantity
		}
	}
	return out
}

// checkMails checks that mails are exactly one of each kind in want and all about order id.
func checkMails(t *testing.T, id string, mails []Mail, want ...string) {
	t.Helper()
	var got []string
	for _, m := range mails {
		got = append(got, MailKind(m.Subject))
		if !strings.Contains(m.Subject, id) {
			t.Errorf("order %s: mail %q does not name the order", id, m.Subject)
		}
	}
	slices.Sort(got)
	want = slices.Clone(want)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("order %s: mails %v, want exactly %v", id, got, want)
	}
}

// checkNoResend fails the test if the email service delivered any mail twice over SMTP.
// The mailbox keeps one mail per Message-ID, so a resend would not show in the counts of
// checkMails; without faults the email service must not resend at all.
func checkNoResend(t *testing.T, s *System) {
	t.Helper()
	resent, err := s.Mailpit.Resent(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if resent != 0 {
		t.Errorf("the email service delivered %d mails twice over SMTP (Mailpit dropped them by Message-ID)", resent)
	}
}
