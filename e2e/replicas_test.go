package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/warrenhq/warren/shared/events"
)

// Two email replicas consume one queue as competing consumers: both do work, and no mail
// is sent twice.
func TestEmailReplicasShareTheQueue(t *testing.T) {
	s := system(t)
	before := make([]float64, len(s.Email))
	for i, e := range s.Email {
		before[i] = e.Processed(t)
	}

	const n = 8
	orders := make([]OrderRequest, n)
	for i := range orders {
		orders[i] = OrderRequest{Customer: customer(t, i), Region: events.Regions[i%len(events.Regions)],
			Items: []Line{{SKU: "carrot-seeds", Quantity: 1}}}
	}
	ids := placeAll(t, s, orders, n)
	for i, id := range ids {
		if o := s.Order.Settled(t, id); o.Status != StatusConfirmed {
			t.Fatalf("order %s is %s, want confirmed", id, o.Status)
		}
		s.Mailpit.WaitFor(t, orders[i].Customer.Email, MailReceived, MailConfirmed)
	}

	// Each order's two events were handled (exactly-once is Mailpit's count below; the
	// counter would also count a redelivery the ledger recognised). It moves after the
	// mail is sent, so it may trail Mailpit briefly.
	const want = 2 * n
	deltas := make([]float64, len(s.Email))
	Eventually(t, 10*time.Second, "email handled every message once", func() error {
		var sum float64
		for i, e := range s.Email {
			deltas[i] = e.Processed(t) - before[i]
			sum += deltas[i]
		}
		if sum < want {
			return fmt.Errorf("replicas handled %v messages, want %d in all", deltas, want)
		}
		return nil
	})
	for i, e := range s.Email {
		if deltas[i] == 0 {
			t.Errorf("%s handled none of the %d messages: the replicas do not share the queue", e.Name, want)
		}
	}
	for i, id := range ids {
		mails, err := s.Mailpit.To(t.Context(), orders[i].Customer.Email)
		if err != nil {
			t.Fatal(err)
		}
		checkMails(t, id, mails, MailReceived, MailConfirmed)
	}
	checkNoResend(t, s)
	t.Logf("email replicas: %s handled %v and %s %v of %d messages; no mail duplicated",
		s.Email[0].Name, deltas[0], s.Email[1].Name, deltas[1], want)
}
