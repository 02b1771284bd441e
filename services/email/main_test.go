package main

import (
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warrenhq/warren/services/email/internal/mailing"
	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/messaging"
	"github.com/warrenhq/warren/shared/testkit"
)

func TestMain(m *testing.M) { os.Exit(testkit.Run(m)) }

var (
	ada = events.Customer{Name: "Ada", Email: "ada@example.com", Phone: "+441234567"}
	bo  = events.Customer{Name: "Bo", Email: "bo@example.com", Phone: "+15550100"}
)

func placed(orderID string, c events.Customer) events.OrderPlaced {
	return events.OrderPlaced{OrderID: orderID, Customer: c, Region: events.RegionEurope, TotalCents: 1250,
		Items: []events.Item{{SKU: "carrot-seeds", Quantity: 2, UnitPriceCents: 625}}, PlacedAt: time.Now().UTC()}
}

func confirmed(orderID string, c events.Customer) events.OrderConfirmed {
	return events.OrderConfirmed{OrderID: orderID, Region: events.RegionEurope, Customer: c, TotalCents: 1250}
}

// startEmail starts the service with an SMTP sink and returns both.
func startEmail(t *testing.T) (*harness, *smtpSink) {
	sink, addr := startSMTPSink(t, "127.0.0.1:0")
	return startService(t, "email", events.Topology(events.DefaultSMSRegions), map[string]string{"SMTP_ADDR": addr}), sink
}

// sentEmails is GET /emails.
func (h *harness) sentEmails(orderID string) []mailing.SentEmail {
	var body struct{ Emails []mailing.SentEmail }
	h.GetJSON("/emails?order_id="+orderID, &body)
	return body.Emails
}

// waitSent waits until GET /emails lists n mails for orderID. A mail is listed only once
// the SMTP server accepted it, so the sink has it by then.
func (h *harness) waitSent(orderID string, n int) []mailing.SentEmail {
	h.T.Helper()
	var sent []mailing.SentEmail
	testkit.Eventually(h.T, 30*time.Second, func() string {
		sent = h.sentEmails(orderID)
		if len(sent) != n {
			return fmt.Sprintf("%d mails sent for %q, want %d: %+v", len(sent), orderID, n, sent)
		}
		return ""
	})
	return sent
}

func TestMailPerOrderEvent(t *testing.T) {
	h, sink := startEmail(t)
	ids := map[string]string{"placed": "m-placed", "confirmed": "m-confirmed", "rejected": "m-rejected", "cancelled": "m-cancelled"}
	h.PublishFanout(events.TypeOrderPlaced, ids["placed"], placed("o-1", ada))
	h.Publish(events.ExchangeTopic, events.OrderConfirmedKey(events.RegionEurope), events.TypeOrderConfirmed, ids["confirmed"], confirmed("o-1", ada))
	h.Publish(events.ExchangeTopic, events.OrderRejectedKey(events.RegionAsia), events.TypeOrderRejected, ids["rejected"],
		events.OrderRejected{OrderID: "o-2", Region: events.RegionAsia, Customer: bo, Reason: "rare-orchid is out of stock"})
	h.PublishFanout(events.TypeOrderCancelled, ids["cancelled"],
		events.OrderCancelled{OrderID: "o-1", Region: events.RegionEurope, Customer: ada, Reason: "changed my mind"})

	kinds := func(sent []mailing.SentEmail) []mailing.Kind {
		var out []mailing.Kind
		for _, s := range sent {
			out = append(out, s.Kind)
		}
		slices.Sort(out)
		return out
	}
	if got, want := kinds(h.waitSent("o-1", 3)), []mailing.Kind{mailing.KindCancelled, mailing.KindConfirmed, mailing.KindReceived}; !slices.Equal(got, want) {
		t.Errorf("o-1 mail kinds = %v, want %v", got, want)
	}
	if sent := h.waitSent("o-2", 1); sent[0].Kind != mailing.KindRejected || sent[0].Recipient != bo.Email {
		t.Errorf("o-2 mail = %+v, want a rejection to %s", sent[0], bo.Email)
	}

	want := map[string]struct{ to, subject string }{
		ids["placed"]:    {ada.Email, "We received your order o-1"},
		ids["confirmed"]: {ada.Email, "Your order o-1 is confirmed"},
		ids["rejected"]:  {bo.Email, "Your order o-2 could not be fulfilled"},
		ids["cancelled"]: {ada.Email, "Your order o-1 was cancelled"},
	}
	mails := sink.received()
	if len(mails) != len(want) {
		t.Fatalf("sink received %d mails, want %d", len(mails), len(want))
	}
	for _, m := range mails {
		id := strings.TrimSuffix(strings.TrimPrefix(m.Header.Get("Message-Id"), "<"), "@warren.example>")
		w, ok := want[id]
		if !ok {
			t.Errorf("unexpected mail with Message-ID %q", m.Header.Get("Message-Id"))
			continue
		}
		delete(want, id)
		if !slices.Equal(m.To, []string{w.to}) || m.Header.Get("Subject") != w.subject {
			t.Errorf("mail %s: to %v subject %q; want to %s subject %q", id, m.To, m.Header.Get("Subject"), w.to, w.subject)
		}
		if m.From != "orders@warren.example" {
			t.Errorf("mail %s: envelope from %q", id, m.From)
		}
	}
	if rejected := mailBody(mails, "could not be fulfilled"); !strings.Contains(rejected, "Reason: rare-orchid is out of stock") {
		t.Errorf("rejection mail lacks its reason:\n%s", rejected)
	}
}

func TestRedeliveredEventSendsOneMail(t *testing.T) {
	h, sink := startEmail(t)
	h.Publish(events.ExchangeTopic, events.OrderConfirmedKey(events.RegionEurope), events.TypeOrderConfirmed, "m-dup", confirmed("o-1", ada))
	h.Publish(events.ExchangeTopic, events.OrderConfirmedKey(events.RegionEurope), events.TypeOrderConfirmed, "m-dup", confirmed("o-1", ada))
	// The queue has one consumer, so once a later message is handled both copies were.
	h.Publish(events.ExchangeTopic, events.OrderConfirmedKey(events.RegionEurope), events.TypeOrderConfirmed, "m-barrier", confirmed("o-2", bo))
	h.waitSent("o-2", 1)

	h.waitSent("o-1", 1)
	if n := len(sink.received()); n != 2 {
		t.Errorf("sink received %d mails, want 2 (one per distinct message)", n)
	}
}

func TestSMTPOutageIsRiddenOut(t *testing.T) {
	addr := freeAddr(t) // nothing listens: connections are refused
	h := startService(t, "email", events.Topology(events.DefaultSMSRegions), map[string]string{
		"SMTP_ADDR": addr, "SMTP_RETRIES": "20", "SMTP_RETRY_MAX_INTERVAL": "500ms",
	})
	h.Publish(events.ExchangeTopic, events.OrderConfirmedKey(events.RegionEurope), events.TypeOrderConfirmed, "m-1", confirmed("o-1", ada))

	// Stay down for more failed attempts than the router's default of 3 retries allows:
	// the email service's own retry budget must carry the mail through.
	testkit.Eventually(t, 20*time.Second, func() string {
		if n := failedAttempts(h.GetText("/metrics")); n < 5 {
			return fmt.Sprintf("%d failed send attempts so far, want 5", n)
		}
		return ""
	})
	if sent := h.sentEmails("o-1"); len(sent) != 0 {
		t.Fatalf("mail recorded as sent while the server is down: %+v", sent)
	}

	sink, _ := startSMTPSink(t, addr)
	h.waitSent("o-1", 1)
	if n := len(sink.received()); n != 1 {
		t.Errorf("sink received %d mails, want 1", n)
	}
	if n := testkit.Depth(t, h.Ch, messaging.DeadLetterQueueName(events.QueueEmail)); n != 0 {
		t.Errorf("%d messages dead-lettered, want none", n)
	}
}

func TestMalformedEventIsDeadLettered(t *testing.T) {
	h, sink := startEmail(t)
	h.PublishRaw(events.ExchangeOrderEvents, "", events.TypeOrderPlaced, "m-bad", []byte(`{"order_id": "o-1", `))
	h.Publish(events.ExchangeTopic, events.OrderConfirmedKey(events.RegionEurope), events.TypeOrderConfirmed, "m-good", confirmed("o-2", bo))
	h.waitSent("o-2", 1)

	dead := testkit.Get(t, h.Ch, messaging.DeadLetterQueueName(events.QueueEmail), 10*time.Second)
	reason, _ := dead.Headers[messaging.HeaderDeadLetterReason].(string)
	if dead.MessageId != "m-bad" || !strings.Contains(reason, "decode") {
		t.Errorf("dead letter %q with reason %q; want m-bad with a decode error", dead.MessageId, reason)
	}
	if n := len(sink.received()); n != 1 {
		t.Errorf("sink received %d mails, want 1", n)
	}
	if sent := h.sentEmails("o-1"); len(sent) != 0 {
		t.Errorf("mail sent for the malformed event: %+v", sent)
	}
}

func mailBody(mails []sunkMail, subjectPart string) string {
	for _, m := range mails {
		if strings.Contains(m.Header.Get("Subject"), subjectPart) {
			return m.Body
		}
	}
	return ""
}

// failedAttempts reads the failed-attempt counter of the email queue from /metrics.
func failedAttempts(metrics string) int {
	prefix := `warren_messages_failed_total{queue="order.events.email",type="order.confirmed.v1"} `
	for line := range strings.Lines(metrics) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), prefix); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return 0
}

// freeAddr returns a local address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
