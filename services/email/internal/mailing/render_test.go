package mailing

import (
	"strings"
	"testing"

	"github.com/warrenhq/warren/shared/events"
)

func TestRender(t *testing.T) {
	ada := events.Customer{Name: "Ada", Email: "ada@example.com", Phone: "+4420000000"}
	tests := []struct {
		name        string
		mail        Mail
		kind        Kind
		subject     string
		bodyHas     []string
		bodyHasNone []string
	}{{
		name: "placed",
		mail: Received(events.OrderPlaced{OrderID: "o-1", Customer: ada, Region: events.RegionEurope, TotalCents: 1250,
			Items: []events.Item{{SKU: "carrot-seeds", Quantity: 2}, {SKU: "watering-can", Quantity: 1}}}),
		kind:    KindReceived,
		subject: "We received your order o-1",
		bodyHas: []string{"Hello Ada,", "2 x carrot-seeds", "1 x watering-can", "Total: 12.50"},
	}, {
		name:    "confirmed",
		mail:    Confirmed(events.OrderConfirmed{OrderID: "o-2", Customer: ada, TotalCents: 7}),
		kind:    KindConfirmed,
		subject: "Your order o-2 is confirmed",
		bodyHas: []string{"is confirmed", "Total: 0.07"},
	}, {
		name:    "rejected with reason",
		mail:    Rejected(events.OrderRejected{OrderID: "o-3", Customer: ada, Reason: "rare-orchid is out of stock"}),
		kind:    KindRejected,
		subject: "Your order o-3 could not be fulfilled",
		bodyHas: []string{"Reason: rare-orchid is out of stock", "not been charged"},
	}, {
		name:        "cancelled without reason",
		mail:        Cancelled(events.OrderCancelled{OrderID: "o-4", Customer: events.Customer{Email: "bo@example.com"}}),
		kind:        KindCancelled,
		subject:     "Your order o-4 was cancelled",
		bodyHas:     []string{"Hello there,", "has been cancelled"},
		bodyHasNone: []string{"Reason:"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.mail.Kind != tt.kind || tt.mail.Subject != tt.subject {
				t.Errorf("kind, subject = %q, %q; want %q, %q", tt.mail.Kind, tt.mail.Subject, tt.kind, tt.subject)
			}
			for _, s := range tt.bodyHas {
				if !strings.Contains(tt.mail.Body, s) {
					t.Errorf("body lacks %q:\n%s", s, tt.mail.Body)
				}
			}
			for _, s := range tt.bodyHasNone {
				if strings.Contains(tt.mail.Body, s) {
					t.Errorf("body has %q:\n%s", s, tt.mail.Body)
				}
			}
			if tt.mail.To == "" || tt.mail.OrderID == "" {
				t.Errorf("recipient or order id missing: %+v", tt.mail)
			}
		})
	}
}

func TestMoney(t *testing.T) {
	for cents, want := range map[int64]string{0: "0.00", 5: "0.05", 1999: "19.99", 100000: "1000.00", -250: "-2.50"} {
		if got := money(cents); got != want {
			t.Errorf("money(%d) = %q, want %q", cents, got, want)
		}
	}
}
