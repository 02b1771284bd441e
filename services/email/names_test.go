package main

import (
	"fmt"
	netmail "net/mail"
	"strings"
	"testing"
	"time"

	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/messaging"
	"github.com/warrenhq/warren/shared/testkit"
)

// TestNamesAreMailedAsTyped replays issue 10: the mails of a customer named
// `Dwayne "The Rock` or `Back\slash\` were dead-lettered ("recipient rejected") and the
// customer never heard of the order. Each must reach the SMTP server with the To header's
// display name as typed, and nothing may be dead-lettered.
func TestNamesAreMailedAsTyped(t *testing.T) {
	h, sink := startEmail(t)
	names := []string{`Dwayne "The Rock`, `Back\slash\`, `"`, `Zoë (née Smith), "Z"`,
		"O'Brien <admin@evil.example>", strings.Repeat("Long Name ", 9) + "End"}
	for i, name := range names {
		c := events.Customer{Name: name, Email: fmt.Sprintf("c%d@example.com", i), Phone: "+44 20 7946 0958"}
		h.Publish(events.ExchangeTopic, events.OrderConfirmedKey(events.RegionEurope), events.TypeOrderConfirmed,
			fmt.Sprintf("m-%d", i), confirmed(fmt.Sprintf("o-%d", i), c))
	}
	for i := range names {
		h.waitSent(fmt.Sprintf("o-%d", i), 1)
	}

	got := map[string]string{} // address -> display name, as the SMTP server received them
	for _, m := range sink.received() {
		to, err := netmail.ParseAddress(m.Header.Get("To"))
		if err != nil {
			t.Errorf("To header %q does not parse: %v", m.Header.Get("To"), err)
			continue
		}
		if len(m.To) != 1 || m.To[0] != to.Address {
			t.Errorf("envelope recipients %v, To header %s", m.To, to.Address)
		}
		got[to.Address] = to.Name
	}
	for i, name := range names {
		if addr := fmt.Sprintf("c%d@example.com", i); got[addr] != name {
			t.Errorf("mail to %s has display name %q, want %q", addr, got[addr], name)
		}
	}
	if n := testkit.Depth(t, h.Ch, messaging.DeadLetterQueueName(events.QueueEmail)); n != 0 {
		t.Errorf("%d mails dead-lettered, want none", n)
	}
}

// TestUnmailableNameIsDeadLetteredAsMalformed: an event from elsewhere whose name cannot
// be written in a header (POST /orders refuses it) is dead-lettered at once, as malformed,
// and never reaches the SMTP server.
func TestUnmailableNameIsDeadLetteredAsMalformed(t *testing.T) {
	h, sink := startEmail(t)
	bad := events.Customer{Name: "Eve\r\nBcc: victim@example.com", Email: "eve@example.com", Phone: "+44 20 7946 0958"}
	h.Publish(events.ExchangeTopic, events.OrderConfirmedKey(events.RegionEurope), events.TypeOrderConfirmed, "m-bad", confirmed("o-bad", bad))
	h.Publish(events.ExchangeTopic, events.OrderConfirmedKey(events.RegionEurope), events.TypeOrderConfirmed, "m-good", confirmed("o-good", bo))
	h.waitSent("o-good", 1)

	dead := testkit.Get(t, h.Ch, messaging.DeadLetterQueueName(events.QueueEmail), 10*time.Second)
	reason, _ := dead.Headers[messaging.HeaderDeadLetterReason].(string)
	if dead.MessageId != "m-bad" || !strings.Contains(reason, "customer.name") {
		t.Errorf("dead letter %q with reason %q; want m-bad naming customer.name", dead.MessageId, reason)
	}
	if n := len(sink.received()); n != 1 {
		t.Errorf("sink received %d mails, want only the good one", n)
	}
}
