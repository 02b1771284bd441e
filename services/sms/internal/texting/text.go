// Package texting is the sms service's business: it texts customers when their order is
// confirmed, for the regions it is configured to serve.
package texting

import (
	"time"

	"github.com/warrenhq/warren/shared/events"
)

// Text is one SMS to a customer.
type Text struct {
	// MessageID is the id of the event the text answers: one text per event.
	MessageID string    `json:"message_id"`
	OrderID   string    `json:"order_id"`
	To        string    `json:"to"`
	Body      string    `json:"body"`
	SentAt    time.Time `json:"sent_at"`
}

// Confirmation is the text for an OrderConfirmed, answering the message messageID.
func Confirmation(messageID string, e events.OrderConfirmed) Text {
	return Text{
		MessageID: messageID,
		OrderID:   e.OrderID,
		To:        e.Customer.Phone,
		Body:      "Warren: your order " + e.OrderID + " is confirmed",
	}
}
