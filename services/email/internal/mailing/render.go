// Package mailing is the email service's business: it turns order events into mails to the
// customer, sends them over SMTP exactly once per event (give or take the window described
// on Handlers), and keeps a record of what was sent.
package mailing

import (
	"fmt"
	"strings"

	"github.com/warrenhq/warren/shared/events"
)

// Kind says which event a mail answers. It is stored with every sent mail.
type Kind string

// The mails the service sends.
const (
	KindReceived  Kind = "received"
	KindConfirmed Kind = "confirmed"
	KindRejected  Kind = "rejected"
	KindCancelled Kind = "cancelled"
)

// Mail is a rendered mail, ready to send.
type Mail struct {
	Kind    Kind
	OrderID string
	// To is the customer's address; Name is used in the greeting and the To header.
	To, Name string
	Subject  string
	Body     string
}

// Received renders the "order received" mail for an OrderPlaced.
func Received(e events.OrderPlaced) Mail {
	var b strings.Builder
	greet(&b, e.Customer.Name)
	fmt.Fprintf(&b, "Thank you for your order %s. We are checking our stock and will write again once it is confirmed.\n\n", e.OrderID)
	for _, it := range e.Items {
		fmt.Fprintf(&b, "  %d x %s\n", it.Quantity, it.SKU)
	}
	fmt.Fprintf(&b, "\nTotal: %s\n", money(e.TotalCents))
	return mail(KindReceived, e.OrderID, e.Customer, "We received your order "+e.OrderID, &b)
}

// Confirmed renders the "order confirmed" mail for an OrderConfirmed.
func Confirmed(e events.OrderConfirmed) Mail {
	var b strings.Builder
	greet(&b, e.Customer.Name)
	fmt.Fprintf(&b, "Good news: your order %s is confirmed and will ship soon.\n\nTotal: %s\n", e.OrderID, money(e.TotalCents))
	return mail(KindConfirmed, e.OrderID, e.Customer, "Your order "+e.OrderID+" is confirmed", &b)
}

// Rejected renders the "order rejected" mail for an OrderRejected, with its reason.
func Rejected(e events.OrderRejected) Mail {
	var b strings.Builder
	greet(&b, e.Customer.Name)
	fmt.Fprintf(&b, "We are sorry: we could not fulfil your order %s.\n", e.OrderID)
	if e.Reason != "" {
		fmt.Fprintf(&b, "Reason: %s\n", e.Reason)
	}
	b.WriteString("\nYou have not been charged.\n")
	return mail(KindRejected, e.OrderID, e.Customer, "Your order "+e.OrderID+" could not be fulfilled", &b)
}

// Cancelled renders the "order cancelled" mail for an OrderCancelled.
func Cancelled(e events.OrderCancelled) Mail {
	var b strings.Builder
	greet(&b, e.Customer.Name)
	fmt.Fprintf(&b, "Your order %s has been cancelled.\n", e.OrderID)
	if e.Reason != "" {
		fmt.Fprintf(&b, "Reason: %s\n", e.Reason)
	}
	return mail(KindCancelled, e.OrderID, e.Customer, "Your order "+e.OrderID+" was cancelled", &b)
}

func mail(kind Kind, orderID string, c events.Customer, subject string, body *strings.Builder) Mail {
	body.WriteString("\nThe Warren team\n")
	return Mail{Kind: kind, OrderID: orderID, To: c.Email, Name: c.Name, Subject: subject, Body: body.String()}
}

func greet(b *strings.Builder, name string) {
	if name == "" {
		name = "there"
	}
	fmt.Fprintf(b, "Hello %s,\n\n", name)
}

// money renders cents as units with two decimals. The contracts carry no currency: the
// shop has one.
func money(cents int64) string {
	sign := ""
	if cents < 0 {
		sign, cents = "-", -cents
	}
	return fmt.Sprintf("%s%d.%02d", sign, cents/100, cents%100)
}
